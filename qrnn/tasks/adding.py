"""The adding problem (Hochreiter & Schmidhuber 1997; the form of Arjovsky et al. 2016).

Each step carries two features: a value drawn uniformly from [0, 1] and a 0/1 marker. Exactly two
steps are marked, one in each half of the sequence; the regression target is the sum of the two
marked values.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from qrnn.errors import QRNNError
from qrnn.tasks.base import GeneratedTask, check_int, sizes_text

# The target is U1 + U2 with U1, U2 independent and uniform on [0, 1]: mean 1, variance
# 2 * Var(U) = 2 * (1/12) = 1/6. Always predicting the mean 1 therefore has MSE = 1/6 ≈ 0.1667,
# the "0.167" baseline of Arjovsky et al. 2016.
BASELINE_MSE = 1.0 / 6.0


class AddingTask(GeneratedTask):
    """The adding problem: regress the sum of the two marked values of a real sequence.

    Args:
        seq_len: T (>= 2); one marker falls in steps [0, T//2), the other in [T//2, T).
        n_train: training sequences.
        n_valid: validation sequences.
        n_test: test sequences.
        seed: fixes the generated data; each split has its own stream.
    """

    name: ClassVar[str] = "adding"
    target: ClassVar[str] = "sequence"
    input_kind: ClassVar[str] = "real"
    primary_metric: ClassVar[str] = "loss"
    higher_is_better: ClassVar[bool] = False

    def __init__(
        self,
        *,
        seq_len: int = 50,
        n_train: int = 10000,
        n_valid: int = 1000,
        n_test: int = 1000,
        seed: int = 0,
    ) -> None:
        self.seq_len = check_int("seq_len", seq_len, minimum=2)
        super().__init__(
            n_train=n_train, n_valid=n_valid, n_test=n_test, seed=seed, seq_len=self.seq_len
        )
        self.n_inputs = 2
        self.n_outputs = 1

    def generate(self, n: int, generator: torch.Generator) -> TensorDataset:
        t, half = self.seq_len, self.seq_len // 2
        values = torch.rand(n, t, generator=generator)  # (N, T)
        rows = torch.arange(n)
        first = torch.randint(0, half, (n,), generator=generator)
        second = torch.randint(half, t, (n,), generator=generator)
        markers = torch.zeros(n, t)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        inputs = torch.stack([values, markers], dim=-1)  # (N, T, 2)
        targets = values[rows, first] + values[rows, second]  # (N,)
        return TensorDataset(inputs, targets)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean squared error of predictions (B, 1) (or (B,)) against targets (B,)."""
        if logits.dim() == 2 and logits.shape[1] == 1:
            logits = logits[:, 0]
        if logits.shape != targets.shape:
            raise QRNNError(
                f"adding: expected predictions of shape {(*targets.shape, 1)} for targets of "
                f"shape {tuple(targets.shape)}, got {tuple(logits.shape)}"
            )
        return F.mse_loss(logits, targets)

    def metrics(self, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """``loss``: the mean squared error."""
        with torch.no_grad():
            return {"loss": self.loss(logits, targets).item()}

    def reference(self) -> dict[str, float]:
        """``baseline_mse`` = 1/6: the MSE of always predicting the expected sum, 1."""
        return {"baseline_mse": BASELINE_MSE}

    def describe(self) -> str:
        return (
            f"adding problem, generated with seed {self.seed}: T={self.seq_len}, "
            f"{sizes_text(*self.sizes.values())}"
        )
