"""qrnn-qulacs: the ``qulacs.statevector`` backend, qrnn cells on the Qulacs simulator.

A third-party qrnn plugin: installed on its own, found by qrnn through the entry point
``qulacs = "qrnn_qulacs"`` in group ``qrnn``, registered by :func:`register_backends`.

Two conventions differ from qrnn's and are converted here:

- Qulacs numbers amplitudes little-endian (its qubit 0 is the least significant bit), qrnn's wire 0
  is the most significant. qrnn wire w is placed on Qulacs qubit n-1-w, so Qulacs' amplitude
  order *is* qrnn's and states need no reordering.
- Qulacs rotations are exp(+iθP/2) (``RX``, ``PauliRotation`` and their parametric forms); qrnn's
  are exp(-iθP/2). Every angle is negated on the way in.
"""

from __future__ import annotations

import numpy as np
import torch

import qrnn
from qrnn import Backend, Capabilities, Cell, Program
from qrnn.errors import BackendUnavailableError
from qrnn.ir import GATE_SPECS

__version__ = "0.1.0"
__all__ = ["QulacsStatevectorBackend", "QulacsStatevectorProgram", "register_backends"]

_PAULI_IDS = {"X": 1, "Y": 2, "Z": 3}  # Qulacs' Pauli numbering
_ROTATIONS = {"rx": "X", "ry": "Y", "rz": "Z", "rxx": "XX", "ryy": "YY", "rzz": "ZZ"}
_FIXED = {"h": "H", "x": "X", "y": "Y", "z": "Z", "s": "S", "sdg": "Sdag", "t": "T",
          "cx": "CNOT", "cz": "CZ", "swap": "SWAP"}  # qulacs.gate constructors; control first


class QulacsStatevectorProgram(Program):
    """State: a (B, D) complex128 numpy array in qrnn's order; Qulacs evolves one row at a time."""

    def __init__(self, backend: QulacsStatevectorBackend, cell: Cell) -> None:
        super().__init__(backend, cell)
        from qulacs import Observable, ParametricQuantumCircuit, QuantumState, gate

        n = cell.n_qubits
        self.circuit = ParametricQuantumCircuit(n)
        self.slots: list[int] = []  # the θ slot of each parametric gate, in Qulacs' order
        for op in cell.circuit.gates:
            qubits = [n - 1 - w for w in op.wires]
            if op.name in _FIXED:
                self.circuit.add_gate(getattr(gate, _FIXED[op.name])(*qubits))
                continue
            paulis = [_PAULI_IDS[p] for p in _ROTATIONS[op.name]]
            if op.slot is None:  # a constant angle: a fixed gate
                self.circuit.add_gate(gate.PauliRotation(qubits, paulis, -op.angle))
            else:  # the angle is set per sample in evolve()
                self.circuit.add_parametric_multi_Pauli_rotation_gate(qubits, paulis, 0.0)
                self.slots.append(op.slot)
        self.observables = []
        for term in cell.readouts:
            observable = Observable(n)
            pairs = zip(term.paulis, term.wires, strict=True)
            spec = " ".join(f"{p} {n - 1 - w}" for p, w in pairs)  # e.g. "X 2 Z 0"
            observable.add_operator(1.0, spec)
            self.observables.append(observable)
        self.buffer = QuantumState(n)  # reused: loaded from and read back into numpy

    def init_state(self, batch_size: int) -> np.ndarray:
        state = np.zeros((batch_size, 2**self.cell.n_qubits), dtype=np.complex128)
        state[:, 0] = 1.0
        return state

    def evolve(self, state: np.ndarray, thetas: torch.Tensor) -> np.ndarray:
        angles = -thetas.detach().cpu().numpy()  # (B, P), negated for Qulacs' sign
        out = np.empty_like(state)
        for b in range(len(state)):  # Qulacs has no batch dimension
            for index, slot in enumerate(self.slots):
                self.circuit.set_parameter(index, float(angles[b, slot]))
            self.buffer.load(state[b])
            self.circuit.update_quantum_state(self.buffer)
            out[b] = self.buffer.get_vector()
        return out

    def expectations(self, state: np.ndarray) -> torch.Tensor:
        values = np.empty((len(state), self.n_readouts))
        for b in range(len(state)):
            self.buffer.load(state[b])
            values[b] = [obs.get_expectation_value(self.buffer).real for obs in self.observables]
        return torch.from_numpy(values)

    def statevector(self, state: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(state.copy())


class QulacsStatevectorBackend(Backend):
    """Dense complex128 statevectors on Qulacs; forward only.

    Args:
        shots: None for exact readouts, or N for finite-shot estimates (qrnn's shared sampler).
        seed: seed of the shot sampler.
    """

    name = "qulacs.statevector"
    capabilities = Capabilities(
        gates=frozenset(GATE_SPECS),
        differentiable=False,
        statevector=True,
    )

    @classmethod
    def check_available(cls) -> None:
        try:
            import qulacs  # noqa: F401
        except ImportError as error:
            raise BackendUnavailableError(
                f"backend 'qulacs.statevector' needs qulacs: pip install qrnn-qulacs ({error})"
            ) from None

    @property
    def tolerance(self) -> float:
        return 1e-10

    def compile(self, cell: Cell) -> QulacsStatevectorProgram:
        return QulacsStatevectorProgram(self, cell)


@qrnn.hookimpl
def register_backends(register):
    """qrnn's plugin hook: register this package's backend."""
    register(QulacsStatevectorBackend)
