"""Gate matrices as complex128 numpy constants, shared by the statevector backends.

Rotations are R_G(θ) = exp(-iθG/2) = cos(θ/2)·I - i·sin(θ/2)·G for the Pauli string G in
:data:`GENERATORS`; every other gate has a fixed matrix in :data:`FIXED`. For two-qubit gates the
first wire is the more significant bit (|w0 w1⟩), so ``cx`` on (c, t) has its control first.
"""

from __future__ import annotations

import numpy as np

I2 = np.eye(2, dtype=np.complex128)
PAULI = {
    "X": np.array([[0, 1], [1, 0]], dtype=np.complex128),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=np.complex128),
    "Z": np.array([[1, 0], [0, -1]], dtype=np.complex128),
}

GENERATORS = {
    "rx": PAULI["X"],
    "ry": PAULI["Y"],
    "rz": PAULI["Z"],
    "rxx": np.kron(PAULI["X"], PAULI["X"]),
    "ryy": np.kron(PAULI["Y"], PAULI["Y"]),
    "rzz": np.kron(PAULI["Z"], PAULI["Z"]),
}

_P0 = np.diag([1, 0]).astype(np.complex128)  # |0><0|
_P1 = np.diag([0, 1]).astype(np.complex128)  # |1><1|

FIXED = {
    "h": np.array([[1, 1], [1, -1]], dtype=np.complex128) / np.sqrt(2),
    "x": PAULI["X"],
    "y": PAULI["Y"],
    "z": PAULI["Z"],
    "s": np.diag([1, 1j]).astype(np.complex128),
    "sdg": np.diag([1, -1j]).astype(np.complex128),
    "t": np.diag([1, np.exp(1j * np.pi / 4)]).astype(np.complex128),
    "cx": np.kron(_P0, I2) + np.kron(_P1, PAULI["X"]),
    "cz": np.kron(_P0, I2) + np.kron(_P1, PAULI["Z"]),
    "swap": np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.complex128),
}

#: Gates both statevector backends implement.
STATEVECTOR_GATES = frozenset(GENERATORS) | frozenset(FIXED)


def rotation(name: str, theta: float) -> np.ndarray:
    """exp(-iθG/2) for the rotation gate ``name``."""
    generator = GENERATORS[name]
    return np.cos(theta / 2) * np.eye(len(generator)) - 1j * np.sin(theta / 2) * generator
