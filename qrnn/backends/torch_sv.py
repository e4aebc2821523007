"""``torch.statevector``: the default backend. Batched dense statevectors in torch.

B states evolve under B different θ in one call, on CPU or CUDA, in complex64 or complex128, with
gradients w.r.t. θ and the incoming state.

Kernels (``fused=``): the cell is compiled once, in ``prepare``, into a plan of fused passes
(:mod:`qrnn.backends._torch_plan`): a layer of single-qubit rotations is a few batched matmuls
on chunks of wires, a run of diagonal gates one phase multiply, a CNOT ring one gather; gates it
does not recognise run alone. Readouts take a few passes for all ⟨X_i⟩, ⟨Y_i⟩, ⟨Z_i⟩
(:mod:`qrnn.backends._torch_readouts`). ``fused=False`` runs every gate on its own with a batched
matmul and every readout with a gather: the readable reference the fused plan is tested against.

Gradients (``gradient=``):

- ``"autograd"``: torch autograd through the kernels. It stores every intermediate state, so
  memory grows with the sequence length T.
- ``"adjoint"`` (default): memory-flat back-propagation through time
  (:mod:`qrnn.backends._torch_adjoint`). Each step is a custom ``torch.autograd.Function`` that
  saves no state; the backward pass recomputes ψ_{t-1} = U(θ_t)† ψ_t from a per-sequence tape
  that holds one state and the angles, and applies the adjoint method inside the step.
  Gradients match autograd's (to rounding: ~1e-12 relative in complex128, ~1e-5 in complex64),
  through the controller feedback loop, for losses on every readout and on the final state, for
  detached segments and for several sequences in one graph. Second derivatives are not
  available.

The default is the adjoint method because it is the faster one up to 10 qubits, and the only one
whose memory does not grow with T; autograd is faster on 12+ qubits (about 1.1× at n = 12 and
1.3-1.4× at n = 14 for B = 32) while its memory fits (about 10 MiB per step at n = 12 and 50 MiB
at n = 14, B = 32). Measurements: ``docs/performance.md``.

With ``shots``, readouts are sampled on top of the exact values with a straight-through gradient
in every mode (:meth:`Program.readout`).
"""

from __future__ import annotations

import torch

from qrnn.backends import _matrices
from qrnn.backends._torch_adjoint import adjoint_step
from qrnn.backends._torch_plan import Plan
from qrnn.backends._torch_readouts import ReadoutPlan, pauli_gather_tables
from qrnn.backends.base import Backend, Program
from qrnn.backends.capabilities import Capabilities
from qrnn.errors import QRNNError
from qrnn.hookspecs import hookimpl
from qrnn.ir import Cell

__all__ = ["TorchStatevectorBackend", "TorchStatevectorProgram", "pauli_gather_tables"]

_COMPLEX_DTYPES = {"complex64": torch.complex64, "complex128": torch.complex128}
_REAL_OF = {torch.complex64: torch.float32, torch.complex128: torch.float64}
GRADIENTS = ("adjoint", "autograd")


class TorchStatevectorProgram(Program):
    """State: a (B, D) complex tensor on the backend's device."""

    def __init__(self, backend: TorchStatevectorBackend, cell: Cell) -> None:
        super().__init__(backend, cell)
        self.device = backend.device
        self.dtype = backend.dtype
        to = {"fused": backend.fused, "dtype": self.dtype, "device": self.device}
        self.plan = Plan(cell.circuit, **to)
        self.readout_plan = ReadoutPlan(cell.readouts, cell.n_qubits, **to)

    def real_dtype(self) -> torch.dtype:
        return _REAL_OF[self.dtype]

    def init_state(self, batch_size: int) -> torch.Tensor:
        state = torch.zeros(batch_size, 2**self.cell.n_qubits, dtype=self.dtype, device=self.device)
        state[:, 0] = 1
        return state

    def _adjoint(self, state: torch.Tensor, thetas: torch.Tensor) -> bool:
        """Whether this call records an adjoint step (a gradient is wanted and selected)."""
        return (self.backend.gradient == "adjoint" and torch.is_grad_enabled()
                and (state.requires_grad or thetas.requires_grad))

    def evolve(self, state: torch.Tensor, thetas: torch.Tensor) -> torch.Tensor:
        if self._adjoint(state, thetas):
            return adjoint_step(self, state, thetas, with_readouts=False)[0]
        return self.plan.run(state, thetas)

    def expectations(self, state: torch.Tensor) -> torch.Tensor:
        return self.readout_plan(state)

    def step(self, state: torch.Tensor, thetas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One recurrent step: thetas (B, P) -> (new state (B, D), readouts (B, K)).

        In adjoint mode the readouts are taken inside the step's autograd function, so that no
        state is saved for them either.
        """
        thetas = self.check_thetas(thetas, self.batch_size(state))
        if not self._adjoint(state, thetas):
            state = self.plan.run(state, thetas)
            return state, self.readout(state)
        state, exact = adjoint_step(self, state, thetas, with_readouts=True)
        return state, self.in_readout_mode(exact)

    def statevector(self, state: torch.Tensor) -> torch.Tensor:
        return state


class TorchStatevectorBackend(Backend):
    """Batched dense statevector in torch, differentiable; the default backend.

    Args:
        device: torch device for states and compiled tables (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        dtype: ``"complex64"`` (default, fast) or ``"complex128"``.
        fused: run the fused plan (default) or every gate on its own (the reference path).
        gradient: ``"adjoint"`` (default; memory-flat in the sequence length) or
            ``"autograd"``; see the module docstring.
        shots, seed: see :class:`Backend`.
    """

    name = "torch.statevector"
    capabilities = Capabilities(
        gates=_matrices.STATEVECTOR_GATES,
        differentiable=True,
        devices=frozenset({"cpu", "cuda"}),
        statevector=True,
    )

    def __init__(
        self,
        *,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = "complex64",
        fused: bool = True,
        gradient: str = "adjoint",
        shots: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(shots=shots, seed=seed)
        if isinstance(dtype, str):
            if dtype not in _COMPLEX_DTYPES:
                raise QRNNError(f"'dtype' must be one of {sorted(_COMPLEX_DTYPES)} (got {dtype!r})")
            dtype = _COMPLEX_DTYPES[dtype]
        if dtype not in _REAL_OF:
            raise QRNNError(f"'dtype' must be torch.complex64 or torch.complex128 (got {dtype!r})")
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise QRNNError(f"'device' is not a torch device: {device!r} ({error})") from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise QRNNError(f"device {device!r} requested but torch sees no CUDA device")
        if not isinstance(fused, bool):
            raise QRNNError(f"'fused' must be True or False (got {fused!r})")
        if gradient not in GRADIENTS:
            raise QRNNError(f"'gradient' must be one of {GRADIENTS} (got {gradient!r})")
        self.dtype = dtype
        self.fused = fused
        self.gradient = gradient

    @property
    def tolerance(self) -> float:
        return 1e-10 if self.dtype == torch.complex128 else 2e-5

    def compile(self, cell: Cell) -> TorchStatevectorProgram:
        return TorchStatevectorProgram(self, cell)


@hookimpl
def register_backends(register):
    register(TorchStatevectorBackend)
