"""The QRNN of Xu, "Hybrid Quantum-Classical Recurrent Neural Networks" (arXiv 2510.25557).

Per timestep (DESIGN.md):

    e_t   = Embed(x_t)
    h_t   = act(W1 [e_t ; z_{t-1}] + b1)      # classical controller
    θ_t   = W2 h_t + b2                        # P angles
    |ψ_t⟩ = U(θ_t) |ψ_{t-1}⟩                   # the backend's program
    z_t   = readouts of |ψ_t⟩                  # K Pauli expectations (or shot estimates)
    y     = Head(z_t) or Head([z_t ; h_t])

``QRNNCore`` is the recurrence; ``SequenceModel`` wraps any recurrent core (the QRNN or a
classical baseline from :mod:`qrnn.baselines`) with an input embedding and a task head.

Padded batches carry a (B, T) bool mask, False at padded steps: a padded step leaves the state
as it was (:func:`run_core`), and pooling and losses skip it, so a padded batch gives each
sequence the outputs it would get alone.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import torch
from torch import nn

import qrnn
from qrnn import baselines
from qrnn.baselines import RecurrentCore, count_parameters
from qrnn.errors import InvalidInputError, QRNNError
from qrnn.ir import Cell

ACTIVATIONS = ("relu", "gelu", "glu", "linear")
MODEL_KINDS = ("qrnn", "rnn", "lstm", "gru", "scornn")
POOLINGS = ("last", "mean")
ATTENTION_SCORES = ("dot", "general", "additive")  # seq2seq attention (qrnn.seq2seq)


def _one_of(choices):
    def check(_instance, attribute, value):
        if value not in choices:
            raise QRNNError(f"'{attribute.name}' must be one of {choices} (got {value!r})")

    return check


def _positive(_instance, attribute, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise QRNNError(f"'{attribute.name}' must be a positive int (got {value!r})")


@attrs.frozen
class ModelConfig:
    """Every knob of a sequence model; the same config builds the QRNN and the baselines."""

    model: str = attrs.field(default="qrnn", validator=_one_of(MODEL_KINDS))  # recurrent core
    embed_dim: int = attrs.field(default=8, validator=_positive)  # E, input embedding width
    pooling: str = attrs.field(default="last", validator=_one_of(POOLINGS))  # sequence targets
    # -- the QRNN --
    n_qubits: int = attrs.field(default=8, validator=_positive)  # n
    n_layers: int = attrs.field(default=2, validator=_positive)  # L, ansatz layers per step
    rotations: tuple[str, ...] = attrs.field(default=("ry", "rz"), converter=tuple)
    entangler: str = "ring"  # ring | ladder | none
    readouts: str = "xyz"  # named readout set, e.g. "xyz", "z", "xyz+zz"
    hidden: int = attrs.field(default=64, validator=_positive)  # H, controller width
    activation: str = attrs.field(default="gelu", validator=_one_of(ACTIVATIONS))
    dropout: float = 0.0  # controller dropout
    head_hidden: bool = False  # feed [z_t ; h_t] to the head instead of z_t
    angle_init: float = 0.1  # std of the angle layer's initial weights (small: U(θ) near fixed)
    backend: str = "torch.statevector"
    backend_options: dict[str, Any] = attrs.field(factory=dict, converter=dict)  # e.g. shots
    # -- sequence to sequence (qrnn.seq2seq) --
    attention: str = attrs.field(default="general", validator=_one_of(ATTENTION_SCORES))
    # -- classical baselines --
    hidden_size: int | None = None  # baseline width; None: matched to the QRNN's parameters

    def cell(self) -> Cell:
        """The quantum cell this config describes."""
        return Cell.default(
            self.n_qubits,
            self.n_layers,
            self.readouts,
            rotations=self.rotations,
            entangler=self.entangler,
        )


class Controller(nn.Module):
    """Feed-forward controller: [e_t ; z_{t-1}] -> (θ_t, h_t), with one hidden layer of width H."""

    def __init__(
        self,
        input_size: int,
        hidden: int,
        n_params: int,
        activation: str,
        dropout: float,
        angle_init: float,
    ) -> None:
        super().__init__()
        self.activation = activation
        width = 2 * hidden if activation == "glu" else hidden
        self.hidden_layer = nn.Linear(input_size, width)
        self.dropout = nn.Dropout(dropout)
        self.angles = nn.Linear(hidden, n_params)
        nn.init.normal_(self.angles.weight, std=angle_init)
        nn.init.zeros_(self.angles.bias)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden_layer(inputs)  # (B, H) or (B, 2H) for GLU
        if self.activation == "relu":
            h = torch.relu(h)
        elif self.activation == "gelu":
            h = nn.functional.gelu(h)
        elif self.activation == "glu":
            h = nn.functional.glu(h, dim=-1)
        h = self.dropout(h)
        return self.angles(h), h  # (B, P), (B, H)


# -- recurrent states and padding masks ---------------------------------------------------------


def check_mask(mask: torch.Tensor, batch: int, steps: int) -> torch.Tensor:
    """Return ``mask`` if it is a (B, T) bool tensor, else raise an InvalidInputError."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise InvalidInputError(f"expected a bool mask tensor of shape (B, T), got {got}")
    if tuple(mask.shape) != (batch, steps):
        raise InvalidInputError(
            f"expected a mask of shape (B, T) = {(batch, steps)}, got {tuple(mask.shape)}"
        )
    return mask


def keep_where(keep: torch.Tensor, new: Any, old: Any, batch_dim: int = 0) -> Any:
    """``new`` for the samples where ``keep`` (B,) is True and ``old`` for the others.

    Works on any recurrent state made of tensors or numpy arrays (alone or in tuples and lists)
    whose batch axis is ``batch_dim``: the QRNN's (backend state, readouts), an LSTM's (h, c).

    Raises:
        InvalidInputError: the state holds something else (e.g. a matrix product state, whose
            bond dimensions differ from sample to sample).
    """
    if isinstance(new, (tuple, list)):
        return type(new)(keep_where(keep, n, o, batch_dim) for n, o in zip(new, old, strict=True))
    if isinstance(new, (torch.Tensor, np.ndarray)):
        shape = [1] * new.ndim
        shape[batch_dim] = -1
        if isinstance(new, np.ndarray):
            return np.where(keep.cpu().numpy().reshape(shape), new, old)
        return torch.where(keep.to(new.device).view(shape), new, old)
    raise InvalidInputError(
        f"masking padded steps needs a recurrent state made of tensors or arrays, got a "
        f"{type(new).__name__}; run padded batches on a statevector backend"
    )


def detach_state(state: Any) -> Any:
    """A copy of a recurrent state cut from the autograd graph (truncated BPTT).

    Tensors are detached; numpy arrays, numbers and None pass as they are; tuples, lists and
    attrs classes (e.g. a matrix product state) are detached field by field.

    Raises:
        InvalidInputError: the state holds an object of another kind.
    """
    if isinstance(state, torch.Tensor):
        return state.detach()
    if state is None or isinstance(state, (np.ndarray, int, float)):
        return state
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(part) for part in state)
    if attrs.has(type(state)):
        fields = attrs.fields(type(state))
        return attrs.evolve(
            state, **{f.alias: detach_state(getattr(state, f.name)) for f in fields if f.init}
        )
    raise InvalidInputError(f"cannot detach a recurrent state of type {type(state).__name__}")


def state_batch_dim(core: nn.Module) -> int:
    """The batch axis of ``core``'s state tensors: 1 for torch RNNs' (1, B, H), else 0."""
    return 1 if isinstance(core, baselines.ClassicalCore) else 0


def run_core(
    core: nn.Module,
    inputs: torch.Tensor,
    state: Any = None,
    mask: torch.Tensor | None = None,
    need_state: bool = True,
) -> tuple[torch.Tensor, Any]:
    """Run any recurrent core over a padded batch: padded steps leave the state unchanged.

    The QRNN masks inside its own loop. A classical core's features at real steps never depend
    on later padding, so it runs on the whole padded batch unless the final state is needed;
    then it runs step by step, keeping the previous state at padded steps.

    Args:
        core: a ``RecurrentCore``.
        inputs: (B, T, E) embedded inputs.
        state: the state to start from, or None for the core's default.
        mask: (B, T) bool, False at padded steps; None when nothing is padded.
        need_state: whether the caller uses the returned final state.

    Returns:
        (features (B, T, F), final state): the state after each sequence's last real step.

    Raises:
        InvalidInputError: the mask has the wrong shape, or a classical core whose final state
            is needed starts from its default state with a sequence of length 0.
    """
    if mask is None:
        return core(inputs, state)
    check_mask(mask, inputs.shape[0], inputs.shape[1])
    if isinstance(core, QRNNCore):
        return core(inputs, state, mask=mask)
    if not need_state or bool(mask.all()):
        return core(inputs, state)
    if state is None and not bool(mask[:, 0].all()):
        raise InvalidInputError("every sequence needs at least one real step (got length 0)")
    batch_dim = state_batch_dim(core)
    features = []
    for t in range(inputs.shape[1]):
        feature, new_state = core(inputs[:, t : t + 1], state)  # (B, 1, F)
        if state is not None:
            keep = mask[:, t]
            new_state = keep_where(keep, new_state, state, batch_dim)
            feature = keep_where(keep, feature, features[-1]) if features else feature
        features.append(feature)
        state = new_state
    return torch.cat(features, dim=1), state


class QRNNCore(RecurrentCore):
    """The quantum recurrence driven by a classical controller (a ``RecurrentCore``).

    ``forward(inputs (B, T, E), state=None) -> (features (B, T, F), state)`` where the features
    are the readouts z_t (F = K) or [z_t ; h_t] (F = K + H), and ``state`` is the pair (backend
    state, last readouts) to continue from, e.g. across truncated-BPTT segments.
    """

    def __init__(self, input_size: int, config: ModelConfig) -> None:
        cell = config.cell()
        super().__init__(cell.n_readouts + (config.hidden if config.head_hidden else 0))
        self.config = config
        self.cell = cell
        self.backend = qrnn.get_backend(config.backend, **config.backend_options)
        self.program = self.backend.prepare(cell)
        self.controller = Controller(
            input_size + cell.n_readouts,
            config.hidden,
            cell.n_params,
            config.activation,
            config.dropout,
            config.angle_init,
        )

    def use_backend(self, name: str, **options: Any) -> None:
        """Run the same trained controller on another backend (e.g. for evaluation)."""
        self.backend = qrnn.get_backend(name, **options)
        self.program = self.backend.prepare(self.cell)

    def initial_state(self, batch_size: int, dtype: torch.dtype):
        state = self.program.init_state(batch_size)
        return state, self.program.readout(state).to(dtype)  # z_0: readouts of |0…0⟩

    def forward(self, inputs: torch.Tensor, state=None, mask: torch.Tensor | None = None):
        """Run the recurrence.

        Args:
            inputs: (B, T, E) embedded inputs.
            state: (backend state, readouts (B, K)) to continue from; None starts at |0…0⟩.
            mask: optional (B, T) bool, False at padded steps. A padded step leaves the quantum
                state and the readouts as they were and repeats the previous features; a step
                that every sequence pads is not run at all.

        Returns:
            (features (B, T, F), (backend state, readouts (B, K))).
        """
        batch, steps, _ = inputs.shape
        if mask is not None:
            check_mask(mask, batch, steps)
        quantum, readouts = state if state is not None else self.initial_state(batch, inputs.dtype)
        # features of the latest real step: z (and zero h) before any step has run
        previous = readouts
        if self.config.head_hidden:
            previous = torch.cat([readouts, readouts.new_zeros(batch, self.config.hidden)], -1)
        features = []
        for t in range(steps):
            keep = None if mask is None else mask[:, t]  # (B,)
            if keep is not None and not bool(keep.any()):
                features.append(previous)
                continue
            thetas, hidden = self.controller(torch.cat([inputs[:, t], readouts], dim=-1))
            new_quantum, new_readouts = self.program.step(quantum, thetas)  # (B, P) -> (B, K)
            new_readouts = new_readouts.to(inputs.dtype)
            feature = (
                torch.cat([new_readouts, hidden], -1) if self.config.head_hidden else new_readouts
            )
            if keep is not None and not bool(keep.all()):
                new_quantum = keep_where(keep, new_quantum, quantum)
                new_readouts = keep_where(keep, new_readouts, readouts)
                feature = keep_where(keep, feature, previous)
            quantum, readouts, previous = new_quantum, new_readouts, feature
            features.append(feature)
        return torch.stack(features, dim=1), (quantum, readouts)  # (B, T, F)


class SequenceModel(nn.Module):
    """Embedding -> recurrent core -> head, for per-sequence or per-step targets.

    Args:
        core: a recurrent core (``QRNNCore`` or a baseline) with ``feature_size``.
        input_kind: ``"tokens"`` (inputs (B, T) ints, vocabulary ``n_inputs``) or ``"real"``
            (inputs (B, T, n_inputs) floats).
        target: ``"sequence"`` (logits (B, C)) or ``"step"`` (logits (B, T, C)).
        pooling: how a sequence target reads the features: the ``"last"`` step or the ``"mean"``.
    """

    def __init__(
        self,
        core: nn.Module,
        input_kind: str,
        n_inputs: int,
        n_outputs: int,
        target: str,
        embed_dim: int,
        pooling: str = "last",
    ) -> None:
        super().__init__()
        if input_kind == "tokens":
            self.embed = nn.Embedding(n_inputs, embed_dim)
        elif input_kind == "real":
            self.embed = nn.Linear(n_inputs, embed_dim)
        else:
            raise QRNNError(f"'input_kind' must be 'tokens' or 'real' (got {input_kind!r})")
        if target not in ("sequence", "step"):
            raise QRNNError(f"'target' must be 'sequence' or 'step' (got {target!r})")
        self.core = core
        self.target = target
        self.pooling = pooling
        self.head = nn.Linear(core.feature_size, n_outputs)

    def forward(
        self,
        inputs: torch.Tensor,
        mask: torch.Tensor | None = None,
        state: Any = None,
        return_state: bool = False,
    ):
        """Logits for a batch, optionally padded and continuing from a state.

        Args:
            inputs: (B, T) token ids or (B, T, n_inputs) reals.
            mask: optional (B, T) bool, False at padded steps: they leave the state unchanged
                and sequence targets pool over real steps only (the last one, or their mean).
            state: the core's state to continue from (truncated BPTT), or None.
            return_state: also return the core's final state.

        Returns:
            logits (B, T, C) for step targets or (B, C) for sequence targets; with
            ``return_state``, the pair (logits, final state).
        """
        features, state = run_core(  # (B, T, F)
            self.core, self.embed(inputs), state, mask, need_state=return_state
        )
        if self.target == "step":
            logits = self.head(features)  # (B, T, C)
        elif mask is None:
            logits = self.head(features[:, -1] if self.pooling == "last" else features.mean(1))
        elif self.pooling == "last":
            last = (mask.sum(1) - 1).clamp(min=0)  # (B,) index of each last real step
            logits = self.head(features[torch.arange(len(last), device=last.device), last])
        else:
            weights = mask.unsqueeze(-1).to(features.dtype)  # (B, T, 1)
            logits = self.head((features * weights).sum(1) / weights.sum(1).clamp(min=1))
        return (logits, state) if return_state else logits


def parameter_report(model: nn.Module) -> dict[str, int]:
    """Parameter counts split into classical parts and the quantum cell.

    A ``SequenceModel`` reports its embedding, head and recurrent core; any other model (the
    attention seq2seq) one entry per top-level part. The quantum cell stores no trainable
    parameters: its P angles per step are produced by the controller, so they are reported as
    ``angles_per_step``, not counted as parameters.
    """
    if isinstance(model, SequenceModel):
        parts = {"embedding": model.embed, "head": model.head, "recurrent": model.core}
    else:
        parts = dict(model.named_children())
    report = {name: count_parameters(part) for name, part in parts.items()}
    report["total"] = sum(report.values())
    cores = [module for module in model.modules() if isinstance(module, QRNNCore)]
    if cores:
        cell = cores[0].cell
        report.update(
            n_qubits=cell.n_qubits,
            angles_per_step=cell.n_params,
            readouts_per_step=cell.n_readouts,
            quantum_stored=0,
        )
    return report


def build_model(
    config: ModelConfig, *, input_kind: str, n_inputs: int, n_outputs: int, target: str
) -> SequenceModel:
    """Build the model ``config`` describes for a task's input and output shapes.

    A baseline with ``hidden_size=None`` gets the width whose total parameter count is closest to
    the QRNN built from the same config, as the paper compares at similar parameter counts.
    """
    shape = dict(
        input_kind=input_kind,
        n_inputs=n_inputs,
        n_outputs=n_outputs,
        target=target,
        embed_dim=config.embed_dim,
        pooling=config.pooling,
    )
    if config.model == "qrnn":
        return SequenceModel(QRNNCore(config.embed_dim, config), **shape)

    def make(width: int) -> SequenceModel:
        return SequenceModel(baselines.build_core(config.model, config.embed_dim, width), **shape)

    width = config.hidden_size
    if width is None:
        qrnn_model = build_model(
            attrs.evolve(config, model="qrnn"),
            **{k: v for k, v in shape.items() if k not in ("embed_dim", "pooling")},
        )
        width = baselines.match_hidden_size(make, count_parameters(qrnn_model))
    return make(width)
