"""Classical recurrent cores for baselines: RNN (tanh), LSTM, GRU and scoRNN.

The paper compares its QRNN with RNN, LSTM and scoRNN at similar parameter counts. Every core here
follows the :class:`RecurrentCore` protocol (inputs (B, T, E) -> features (B, T, F) and a final
state), so one model wrapper (embedding -> core -> head) serves the QRNN and every baseline, and
:func:`match_hidden_size` picks the width that gives a baseline the QRNN's parameter count.
"""

from __future__ import annotations

import abc
import logging
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from qrnn.errors import InvalidInputError, QRNNError

logger = logging.getLogger(__name__)

BASELINE_KINDS = ("rnn", "lstm", "gru", "scornn")

_TORCH_RNNS: dict[str, Callable[..., nn.RNNBase]] = {
    "rnn": lambda **kw: nn.RNN(nonlinearity="tanh", **kw),
    "lstm": nn.LSTM,
    "gru": nn.GRU,
}

State = Any  # what a core's recurrence carries: a tensor, or a tuple of tensors (LSTM)


class RecurrentCore(nn.Module, abc.ABC):
    """The protocol every recurrent core follows, the QRNN core included.

    Attributes:
        feature_size: F, the size of the per-step features fed to the head.
    """

    feature_size: int

    def __init__(self, feature_size: int) -> None:
        super().__init__()
        self.feature_size = feature_size

    @abc.abstractmethod
    def forward(self, inputs: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        """Run the recurrence over a batch of sequences.

        Args:
            inputs: (B, T, E) float tensor, the embedded inputs.
            state: the initial state, or None for the core's default.

        Returns:
            (features (B, T, F), final state), the state in the form ``state`` takes.
        """


def _check_inputs(inputs: torch.Tensor, input_size: int) -> None:
    """Raise InvalidInputError unless ``inputs`` is a (B, T, input_size) float tensor, T >= 1."""
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3:
        got = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise InvalidInputError(f"expected inputs of shape (B, T, {input_size}), got {got}")
    if inputs.shape[-1] != input_size:
        raise InvalidInputError(
            f"expected inputs of shape (B, T, {input_size}), got {tuple(inputs.shape)}"
        )
    if inputs.shape[1] == 0:
        raise InvalidInputError("expected at least one time step, got T = 0")
    if not inputs.is_floating_point():
        raise InvalidInputError(f"expected a floating-point inputs tensor, got {inputs.dtype}")


def _check_positive_int(name: str, value: int) -> None:
    """Raise QRNNError unless ``value`` is an int >= 1 (bools excluded)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise QRNNError(f"{name} must be a positive integer, got {value!r}")


class ClassicalCore(RecurrentCore):
    """A single-layer ``torch.nn.RNN`` (tanh), ``LSTM`` or ``GRU`` with batch-first inputs.

    Args:
        kind: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        input_size: E, the size of each input vector.
        hidden_size: H, the hidden width; also the feature size.
        dropout: probability of dropping a feature on its way to the head. torch's own
            ``dropout`` argument acts only between stacked layers, so it is applied to the
            outputs here instead; the returned final state is never dropped.
    """

    def __init__(self, kind: str, input_size: int, hidden_size: int, dropout: float = 0.0) -> None:
        if kind not in _TORCH_RNNS:
            raise QRNNError(f"expected a classical core kind in {tuple(_TORCH_RNNS)}, got {kind!r}")
        _check_positive_int("input_size", input_size)
        _check_positive_int("hidden_size", hidden_size)
        super().__init__(feature_size=hidden_size)
        self.kind = kind
        self.input_size = input_size
        self.rnn = _TORCH_RNNS[kind](
            input_size=input_size, hidden_size=hidden_size, batch_first=True
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, inputs: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        """Run the torch module.

        Args:
            inputs: (B, T, E) float tensor.
            state: None (zeros), h0 of shape (1, B, H), or for the LSTM (h0, c0).

        Returns:
            (features (B, T, H), final state in the form torch returns it: h_T or (h_T, c_T)).
        """
        _check_inputs(inputs, self.input_size)
        outputs, final = self.rnn(inputs, state)
        return self.dropout(outputs), final


class ModReLU(nn.Module):
    """modReLU for real inputs: σ(z) = sign(z) · relu(|z| + b), with a trainable bias b per unit.

    Arjovsky et al. (2016) introduced it for complex units; scoRNN uses its real form, which keeps
    negative activations (unlike ReLU) and so suits an orthogonal recurrence.

    Args:
        features: the number of units (the size of the last axis of the input).
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(features))  # zero, as in the scoRNN reference code

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Apply σ elementwise; ``z`` is (..., features)."""
        return torch.sign(z) * torch.relu(z.abs() + self.bias)


def _henaff_skew_entries(hidden_size: int) -> torch.Tensor:
    """Strictly upper-triangular entries of a block-diagonal skew-symmetric initial A.

    Henaff et al. (2016) style, as scoRNN initialises A: 2x2 blocks [[0, s], [-s, 0]] with
    s = -sqrt((1 - cos t) / (1 + cos t)) = -tan(t/2), t ~ U[0, π/2], so that the Cayley transform
    of each block is a rotation by ±t. With an odd width the last unit gets no block.
    Returns the (n(n-1)/2,) entries in ``torch.triu_indices(n, n, 1)`` order.
    """
    n_blocks = hidden_size // 2
    angles = torch.rand(n_blocks) * (math.pi / 2)
    dense = torch.zeros(hidden_size, hidden_size)
    block = torch.arange(n_blocks)
    dense[2 * block, 2 * block + 1] = -torch.tan(angles / 2)
    rows, cols = torch.triu_indices(hidden_size, hidden_size, offset=1)
    return dense[rows, cols]


class SCORNNCore(RecurrentCore):
    """scoRNN: the scaled-Cayley orthogonal RNN of Helfrich, Willmott & Ye (ICML 2018).

    h_t = σ(U x_t + W h_{t-1}) with the orthogonal recurrent matrix W = (I + A)^{-1} (I - A) D,
    where A is skew-symmetric (trainable, stored as its n(n-1)/2 strictly upper-triangular
    entries), D is a fixed diagonal of ±1 with ``n_negative`` entries -1 (the scaling that lets
    the Cayley transform reach orthogonal matrices with eigenvalue -1), U is the input matrix
    and σ is :class:`ModReLU` with a trainable bias. h_0 = 0 unless a state is given.

    Here W comes from autograd through the Cayley transform, so any torch optimiser trains A
    directly and W stays orthogonal by construction. (The authors instead update A with their
    closed-form gradient V^T - V, with its own learning rate; it is the same gradient.)

    Initialisation follows the authors' reference code: A as in :func:`_henaff_skew_entries`,
    U ~ U(-0.01, 0.01), modReLU bias 0.

    The number of -1 entries, ρ, is a tuned hyperparameter in the paper; the authors' released
    experiment scripts (github.com/SpartinStuff/scoRNN) use ρ = n/2 on the copying and adding
    problems (n = 190 and 170) and ρ = n/10 on pixel-by-pixel MNIST (n = 170). The default here
    is n // 2.

    Args:
        input_size: E, the size of each input vector.
        hidden_size: n, the hidden width; also the feature size.
        n_negative: ρ, the number of -1 entries on D's diagonal (default ``hidden_size // 2``).
        dropout: probability of dropping a feature on its way to the head (the state is kept).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        n_negative: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        _check_positive_int("input_size", input_size)
        _check_positive_int("hidden_size", hidden_size)
        if n_negative is None:
            n_negative = hidden_size // 2
        if not isinstance(n_negative, int) or not 0 <= n_negative <= hidden_size:
            raise QRNNError(
                f"n_negative must be an integer in [0, hidden_size={hidden_size}], "
                f"got {n_negative!r}"
            )
        super().__init__(feature_size=hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.n_negative = n_negative
        self.input_weight = nn.Parameter(torch.empty(hidden_size, input_size).uniform_(-0.01, 0.01))
        self.skew_entries = nn.Parameter(_henaff_skew_entries(hidden_size))
        # D's diagonal: +1 then ρ entries -1, as in the reference code. (n,)
        scaling = torch.ones(hidden_size)
        scaling[hidden_size - n_negative :] = -1.0
        self.register_buffer("scaling", scaling)
        rows, cols = torch.triu_indices(hidden_size, hidden_size, offset=1)
        self.register_buffer("_rows", rows, persistent=False)
        self.register_buffer("_cols", cols, persistent=False)
        self.activation = ModReLU(hidden_size)
        self.dropout = nn.Dropout(dropout)

    def skew_matrix(self) -> torch.Tensor:
        """A, the (n, n) skew-symmetric matrix built from the trainable upper-triangular entries."""
        upper = self.skew_entries.new_zeros(self.hidden_size, self.hidden_size)
        upper = upper.index_put((self._rows, self._cols), self.skew_entries)
        return upper - upper.T

    def recurrent_matrix(self) -> torch.Tensor:
        """W = (I + A)^{-1} (I - A) D, (n, n) and orthogonal. I + A is invertible for any skew A."""
        skew = self.skew_matrix()
        eye = torch.eye(self.hidden_size, dtype=skew.dtype, device=skew.device)
        return torch.linalg.solve(eye + skew, eye - skew) * self.scaling  # D scales the columns

    def forward(
        self, inputs: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the recurrence; W is computed once per call.

        Args:
            inputs: (B, T, E) float tensor.
            state: None (zeros) or h_0 of shape (B, n).

        Returns:
            (features (B, T, n), h_T of shape (B, n)).
        """
        _check_inputs(inputs, self.input_size)
        batch = inputs.shape[0]
        if state is None:
            state = inputs.new_zeros(batch, self.hidden_size)
        elif state.shape != (batch, self.hidden_size):
            raise InvalidInputError(
                f"expected a state of shape ({batch}, {self.hidden_size}), got {tuple(state.shape)}"
            )
        driven = inputs @ self.input_weight.T  # U x_t for every step at once, (B, T, n)
        recurrent_t = self.recurrent_matrix().T  # rows are states: h W^T = (W h)^T, (n, n)
        hidden = state
        outputs = []
        for step in range(inputs.shape[1]):
            hidden = self.activation(torch.addmm(driven[:, step], hidden, recurrent_t))
            outputs.append(hidden)
        return self.dropout(torch.stack(outputs, dim=1)), hidden


def build_core(kind: str, input_size: int, hidden_size: int, **options: Any) -> RecurrentCore:
    """Build a baseline recurrent core by name.

    Args:
        kind: one of :data:`BASELINE_KINDS`.
        input_size: E, the size of each input vector.
        hidden_size: the hidden width.
        **options: passed to the core (``dropout`` for all; ``n_negative`` for ``"scornn"``).

    Returns:
        The core, a :class:`RecurrentCore`.

    Raises:
        QRNNError: ``kind`` is not a known baseline.
    """
    if kind == "scornn":
        return SCORNNCore(input_size, hidden_size, **options)
    if kind in _TORCH_RNNS:
        return ClassicalCore(kind, input_size, hidden_size, **options)
    raise QRNNError(f"unknown baseline kind {kind!r}; expected one of {', '.join(BASELINE_KINDS)}")


def count_parameters(module: nn.Module) -> int:
    """The number of trainable scalars in ``module`` (parameters with ``requires_grad``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def match_hidden_size(
    make: Callable[[int], nn.Module], target: int, low: int = 1, high: int = 4096
) -> int:
    """The width whose model has the parameter count closest to ``target``.

    Parameter counts grow monotonically with width, so a doubling search followed by a binary
    search finds the smallest width that reaches the target (building only models up to about
    twice that width); the answer is it or its smaller neighbour, whichever is closer (ties go
    to the smaller width).

    Args:
        make: builds a model of a given width, e.g. ``lambda h: build_core("lstm", 16, h)``.
        target: the parameter count to match.
        low: the smallest width to consider.
        high: the largest width to consider.

    Returns:
        The width in [low, high] that minimises |count_parameters(make(width)) - target|.

    Raises:
        QRNNError: the bounds are invalid, ``low`` already gives more than twice the target, or
            ``high`` gives fewer parameters than the target.
    """
    _check_positive_int("target", target)
    _check_positive_int("low", low)
    _check_positive_int("high", high)
    if low > high:
        raise QRNNError(f"expected low <= high, got low={low}, high={high}")

    counts: dict[int, int] = {}

    def count(width: int) -> int:
        if width not in counts:
            counts[width] = count_parameters(make(width))
        return counts[width]

    if count(low) > 2 * target:
        raise QRNNError(
            f"cannot match {target} parameters: the smallest width {low} already has "
            f"{count(low)}, more than twice the target"
        )
    # Gallop up from low, doubling, so no model far wider than the answer is ever built; then
    # binary-search (lo, hi] for the smallest width whose count reaches the target.
    lo, hi = low - 1, low
    while count(hi) < target:
        if hi == high:
            raise QRNNError(
                f"cannot match {target} parameters: the largest width {high} has only "
                f"{count(high)}; raise high"
            )
        lo, hi = hi, min(2 * hi, high)
    while hi - lo > 1:  # invariant: count(lo) < target <= count(hi), or lo = low - 1
        mid = (lo + hi) // 2
        if count(mid) >= target:
            hi = mid
        else:
            lo = mid
    best = hi
    if hi > low and abs(count(hi - 1) - target) <= abs(count(hi) - target):
        best = hi - 1
    logger.debug("width %d gives %d parameters (target %d)", best, count(best), target)
    return best
