"""``numpy.statevector``: the complex128 reference oracle, written for clarity, not speed.

Each sample is evolved on its own, one gate at a time, with an ``einsum`` whose subscripts name
every qubit axis; the test suite compares every other backend with this one.
"""

from __future__ import annotations

import string

import numpy as np
import torch

from qrnn.backends import _matrices
from qrnn.backends.base import Backend, Program
from qrnn.backends.capabilities import Capabilities
from qrnn.hookspecs import hookimpl
from qrnn.ir import Cell, Gate, PauliTerm

_LETTERS = string.ascii_letters  # einsum subscripts: enough for 26 qubits + 26 gate axes


def apply_matrix(psi: np.ndarray, matrix: np.ndarray, wires: tuple[int, ...]) -> np.ndarray:
    """Apply a 2^k × 2^k matrix to ``wires`` of one state tensor ``psi`` of shape (2,)*n."""
    n, k = psi.ndim, len(wires)
    if n + k > len(_LETTERS):
        raise ValueError(f"numpy.statevector supports at most {len(_LETTERS) - k} qubits")
    state_axes = list(_LETTERS[:n])
    new_axes = list(_LETTERS[n : n + k])
    gate_tensor = matrix.reshape((2,) * (2 * k))  # (out_1..out_k, in_1..in_k)
    out_axes = state_axes.copy()
    for wire, new in zip(wires, new_axes, strict=True):
        out_axes[wire] = new
    gate_subscripts = "".join(new_axes) + "".join(state_axes[w] for w in wires)
    return np.einsum(
        f"{gate_subscripts},{''.join(state_axes)}->{''.join(out_axes)}", gate_tensor, psi
    )


def gate_matrix(gate: Gate, thetas: np.ndarray) -> np.ndarray:
    """The matrix of ``gate`` for one sample's θ vector."""
    if gate.name in _matrices.FIXED:
        return _matrices.FIXED[gate.name]
    angle = thetas[gate.slot] if gate.slot is not None else gate.angle
    return _matrices.rotation(gate.name, angle)


def expectation(psi: np.ndarray, term: PauliTerm) -> float:
    """⟨ψ|P|ψ⟩ for one state tensor and one Pauli term."""
    p_psi = psi
    for letter, wire in zip(term.paulis, term.wires, strict=True):
        p_psi = apply_matrix(p_psi, _matrices.PAULI[letter], (wire,))
    return float(np.vdot(psi, p_psi).real)


class NumpyStatevectorProgram(Program):
    """State: a (B, D) complex128 numpy array."""

    def init_state(self, batch_size: int) -> np.ndarray:
        state = np.zeros((batch_size, 2**self.cell.n_qubits), dtype=np.complex128)
        state[:, 0] = 1.0
        return state

    def evolve(self, state: np.ndarray, thetas: torch.Tensor) -> np.ndarray:
        n = self.cell.n_qubits
        thetas_np = thetas.detach().cpu().numpy()
        out = np.empty_like(state)
        for b in range(state.shape[0]):  # clarity over speed: one sample at a time
            psi = state[b].reshape((2,) * n)
            for gate in self.cell.circuit.gates:
                psi = apply_matrix(psi, gate_matrix(gate, thetas_np[b]), gate.wires)
            out[b] = psi.reshape(-1)
        return out

    def expectations(self, state: np.ndarray) -> torch.Tensor:
        n = self.cell.n_qubits
        values = [
            [expectation(row.reshape((2,) * n), term) for term in self.cell.readouts]
            for row in state
        ]
        return torch.tensor(values, dtype=torch.float64).reshape(len(state), self.n_readouts)

    def statevector(self, state: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(state.copy())


class NumpyStatevectorBackend(Backend):
    """Dense complex128 statevector in numpy; forward only. The reference for every test."""

    name = "numpy.statevector"
    capabilities = Capabilities(
        gates=_matrices.STATEVECTOR_GATES,
        max_qubits=20,
        differentiable=False,
        statevector=True,
    )

    @property
    def tolerance(self) -> float:
        return 1e-10

    def compile(self, cell: Cell) -> NumpyStatevectorProgram:
        return NumpyStatevectorProgram(self, cell)


@hookimpl
def register_backends(register):
    register(NumpyStatevectorBackend)
