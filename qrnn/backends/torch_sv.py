"""``torch.statevector``: the default backend. Batched dense statevectors in torch.

B states evolve under B different θ in one call, on CPU or CUDA, in complex64 or complex128, and
autograd gives gradients w.r.t. θ and the incoming state. Each gate is a batched matmul on the
wires it touches (the gate-by-gate path; no per-sample loops).
"""

from __future__ import annotations

import attrs
import numpy as np
import torch

from qrnn.backends import _matrices
from qrnn.backends.base import Backend, Program
from qrnn.backends.capabilities import Capabilities
from qrnn.errors import QRNNError
from qrnn.hookspecs import hookimpl
from qrnn.ir import Cell, Readouts

_COMPLEX_DTYPES = {"complex64": torch.complex64, "complex128": torch.complex128}
_REAL_OF = {torch.complex64: torch.float32, torch.complex128: torch.float64}


@attrs.frozen
class _CompiledGate:
    """A gate ready to apply: its wires and either a fixed matrix or a generator with an angle."""

    wires: tuple[int, ...]
    matrix: torch.Tensor | None  # (2^k, 2^k) fixed gate
    generator: torch.Tensor | None  # (2^k, 2^k) Pauli string G of exp(-iθG/2)
    slot: int | None
    angle: float | None


def pauli_gather_tables(readouts: Readouts, n_qubits: int) -> tuple[np.ndarray, np.ndarray]:
    """Index and coefficient tables that turn every readout into one gather.

    A Pauli string P maps basis state i to i XOR m (m: its X/Y wires) with a phase c_i, so
    ⟨ψ|P|ψ⟩ = Σ_i conj(ψ[i XOR m]) · c_i · ψ[i]. Returns (K, D) int64 indices i XOR m_k and
    (K, D) complex128 coefficients c_{k,i}.
    """
    dim = 2**n_qubits
    basis = np.arange(dim)
    index = np.empty((len(readouts), dim), dtype=np.int64)
    coeff = np.empty((len(readouts), dim), dtype=np.complex128)
    for k, term in enumerate(readouts):
        flip = np.zeros(dim, dtype=np.int64)
        phase = np.ones(dim, dtype=np.complex128)
        for letter, wire in zip(term.paulis, term.wires):
            bit_value = 1 << (n_qubits - 1 - wire)  # wire 0 is the most significant bit
            bit = (basis & bit_value) != 0
            if letter in "XY":
                flip |= bit_value
            if letter == "Y":  # Y|0> = i|1>, Y|1> = -i|0>
                phase = phase * np.where(bit, -1j, 1j)
            elif letter == "Z":
                phase = phase * np.where(bit, -1, 1)
        index[k] = basis ^ flip
        coeff[k] = phase
    return index, coeff


class TorchStatevectorProgram(Program):
    """State: a (B, D) complex tensor on the backend's device."""

    def __init__(self, backend: TorchStatevectorBackend, cell: Cell) -> None:
        super().__init__(backend, cell)
        self.device = backend.device
        self.dtype = backend.dtype
        as_tensor = lambda a: torch.as_tensor(a, dtype=self.dtype, device=self.device)  # noqa: E731
        self.gates = []
        for gate in cell.circuit.gates:
            fixed = gate.name in _matrices.FIXED
            self.gates.append(
                _CompiledGate(
                    wires=gate.wires,
                    matrix=as_tensor(_matrices.FIXED[gate.name]) if fixed else None,
                    generator=None if fixed else as_tensor(_matrices.GENERATORS[gate.name]),
                    slot=gate.slot,
                    angle=gate.angle,
                )
            )
        index, coeff = pauli_gather_tables(cell.readouts, cell.n_qubits)
        self.readout_index = torch.as_tensor(index, device=self.device)  # (K, D)
        self.readout_coeff = as_tensor(coeff)  # (K, D)

    def real_dtype(self) -> torch.dtype:
        return _REAL_OF[self.dtype]

    def init_state(self, batch_size: int) -> torch.Tensor:
        state = torch.zeros(batch_size, 2**self.cell.n_qubits, dtype=self.dtype, device=self.device)
        state[:, 0] = 1
        return state

    def _matrix(self, gate: _CompiledGate, thetas: torch.Tensor) -> torch.Tensor:
        """(2^k, 2^k) for a fixed gate, else (B, 2^k, 2^k) = cos(θ/2) I - i sin(θ/2) G."""
        if gate.matrix is not None:
            return gate.matrix
        if gate.slot is not None:
            half = thetas[:, gate.slot, None, None] / 2  # (B, 1, 1)
        else:
            half = torch.tensor(gate.angle / 2, dtype=thetas.dtype, device=thetas.device)
        eye = torch.eye(gate.generator.shape[0], dtype=self.dtype, device=self.device)
        return torch.cos(half) * eye - 1j * torch.sin(half) * gate.generator

    def apply(self, state: torch.Tensor, matrix: torch.Tensor, wires: tuple[int, ...]) -> torch.Tensor:
        """Apply a (B or 1, 2^k, 2^k) matrix to ``wires`` of a (B, D) state."""
        n, k, batch = self.cell.n_qubits, len(wires), state.shape[0]
        axes = [1 + w for w in wires]
        last = list(range(n + 1 - k, n + 1))
        psi = state.reshape((batch,) + (2,) * n).movedim(axes, last)  # wires moved last
        moved_shape = psi.shape
        psi = psi.reshape(batch, -1, 2**k) @ matrix.transpose(-1, -2)  # (B, D/2^k, 2^k)
        return psi.reshape(moved_shape).movedim(last, axes).reshape(batch, -1)

    def evolve(self, state: torch.Tensor, thetas: torch.Tensor) -> torch.Tensor:
        for gate in self.gates:
            state = self.apply(state, self._matrix(gate, thetas), gate.wires)
        return state

    def expectations(self, state: torch.Tensor) -> torch.Tensor:
        flipped = state[:, self.readout_index]  # (B, K, D): ψ[i XOR m_k]
        values = (flipped.conj() * self.readout_coeff * state[:, None, :]).sum(-1)
        return values.real  # (B, K)

    def statevector(self, state: torch.Tensor) -> torch.Tensor:
        return state


class TorchStatevectorBackend(Backend):
    """Batched dense statevector in torch, differentiable by autograd; the default backend.

    Args:
        device: torch device for states and compiled tables (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        dtype: ``"complex64"`` (default, fast) or ``"complex128"``.
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
        self.dtype = dtype

    @property
    def tolerance(self) -> float:
        return 1e-10 if self.dtype == torch.complex128 else 2e-5

    def compile(self, cell: Cell) -> TorchStatevectorProgram:
        return TorchStatevectorProgram(self, cell)


@hookimpl
def register_backends(register):
    register(TorchStatevectorBackend)
