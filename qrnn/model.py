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
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import nn

import qrnn
from qrnn import baselines
from qrnn.baselines import RecurrentCore, count_parameters
from qrnn.errors import QRNNError
from qrnn.ir import Cell

ACTIVATIONS = ("relu", "gelu", "glu", "linear")
MODEL_KINDS = ("qrnn", "rnn", "lstm", "gru", "scornn")
POOLINGS = ("last", "mean")


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

    def forward(self, inputs: torch.Tensor, state=None):
        batch, steps, _ = inputs.shape
        quantum, readouts = state if state is not None else self.initial_state(batch, inputs.dtype)
        features = []
        for t in range(steps):
            thetas, hidden = self.controller(torch.cat([inputs[:, t], readouts], dim=-1))
            quantum, readouts = self.program.step(quantum, thetas)  # (B, P) -> (B, K)
            readouts = readouts.to(inputs.dtype)
            features.append(
                torch.cat([readouts, hidden], -1) if self.config.head_hidden else readouts
            )
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

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        features, _ = self.core(self.embed(inputs))  # (B, T, F)
        if self.target == "step":
            return self.head(features)  # (B, T, C)
        pooled = features[:, -1] if self.pooling == "last" else features.mean(dim=1)
        return self.head(pooled)  # (B, C)


def parameter_report(model: SequenceModel) -> dict[str, int]:
    """Parameter counts split into classical parts and the quantum cell.

    The quantum cell stores no trainable parameters: its P angles per step are produced by the
    controller, so they are reported as ``angles_per_step``, not counted as parameters.
    """
    report = {
        "embedding": count_parameters(model.embed),
        "head": count_parameters(model.head),
        "recurrent": count_parameters(model.core),
    }
    report["total"] = sum(report.values())
    if isinstance(model.core, QRNNCore):
        cell = model.core.cell
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
