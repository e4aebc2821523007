"""The copying memory task (Arjovsky, Shah & Bengio 2016, "Unitary evolution RNNs").

Alphabet of 10 tokens: 0 blank, 1..8 data symbols, 9 marker. Each input sequence is 10 random
data symbols, ``delay - 1`` blanks, the marker and 10 blanks (T = delay + 20); the target is
blank for the first delay + 10 steps, then the 10 symbols. A model that remembers nothing can at
best output blanks at the right steps and guess uniformly among the 8 symbols at the last 10, which
costs 10 ln 8 / T of cross-entropy per step: the memoryless baseline.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch.utils.data import TensorDataset

from qrnn.tasks.base import GeneratedTask, accuracy, check_int, cross_entropy, sizes_text

BLANK = 0
MARKER = 9
N_SYMBOLS = 8  # data symbols are 1..8
N_RECALL = 10  # symbols to remember


class CopyingTask(GeneratedTask):
    """Copying memory: recall 10 symbols after ``delay`` steps, on cue of a marker token.

    Args:
        delay: the marker comes ``delay`` steps after the last data symbol (>= 1); T = delay + 20.
        n_train: training sequences.
        n_valid: validation sequences.
        n_test: test sequences.
        seed: fixes the generated data; each split has its own stream.
    """

    name: ClassVar[str] = "copying"
    target: ClassVar[str] = "step"
    input_kind: ClassVar[str] = "tokens"
    primary_metric: ClassVar[str] = "loss"
    higher_is_better: ClassVar[bool] = False

    def __init__(
        self,
        *,
        delay: int = 10,
        n_train: int = 10000,
        n_valid: int = 1000,
        n_test: int = 1000,
        seed: int = 0,
    ) -> None:
        self.delay = check_int("delay", delay, minimum=1)
        super().__init__(
            n_train=n_train, n_valid=n_valid, n_test=n_test, seed=seed, delay=self.delay
        )
        self.n_inputs = 10
        self.n_outputs = 10
        self.seq_len = self.delay + 2 * N_RECALL

    def generate(self, n: int, generator: torch.Generator) -> TensorDataset:
        symbols = torch.randint(1, N_SYMBOLS + 1, (n, N_RECALL), generator=generator)  # (N, 10)
        inputs = torch.full((n, self.seq_len), BLANK, dtype=torch.long)  # (N, T)
        inputs[:, :N_RECALL] = symbols
        inputs[:, N_RECALL + self.delay - 1] = MARKER
        targets = torch.full((n, self.seq_len), BLANK, dtype=torch.long)  # (N, T)
        targets[:, -N_RECALL:] = symbols
        return TensorDataset(inputs, targets)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy averaged over all B * T steps; logits (B, T, 10), targets (B, T)."""
        return cross_entropy(logits, targets)

    def metrics(self, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """``loss`` over all steps and ``accuracy`` on the 10 recalled symbols only."""
        with torch.no_grad():
            return {
                "loss": self.loss(logits, targets).item(),
                "accuracy": accuracy(logits[:, -N_RECALL:], targets[:, -N_RECALL:]),
            }

    def reference(self) -> dict[str, float]:
        """``memoryless_loss`` = 10 ln 8 / T: blanks known, the 8 symbols guessed uniformly."""
        return {"memoryless_loss": N_RECALL * math.log(N_SYMBOLS) / self.seq_len}

    def describe(self) -> str:
        return (
            f"copying memory, generated with seed {self.seed}: delay {self.delay}, "
            f"T={self.seq_len}, {sizes_text(*self.sizes.values())}"
        )
