"""Seeded random cells and angles for cross-backend checks."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from qrnn.ir import GATE_SPECS, Cell, Circuit, Gate, PauliTerm, Readouts


def random_cell(
    n_qubits: int,
    seed: int,
    gates: Iterable[str] | None = None,
    n_gates: int | None = None,
    readouts: str = "mixed",
) -> Cell:
    """A random cell using only ``gates`` (default: every IR gate).

    Rotations get a slot (or, one in four, a constant angle); the readouts are ``xyz`` plus
    random multi-qubit Pauli strings (``"mixed"``) or a named set (``"z"``, ``"xyz"``, ...).
    """
    rng = np.random.default_rng(seed)
    allowed = sorted(set(gates) if gates is not None else set(GATE_SPECS))
    allowed = [g for g in allowed if GATE_SPECS[g].n_wires <= n_qubits]
    n_gates = n_gates if n_gates is not None else 3 * n_qubits + 2
    ops: list[Gate] = []
    slot = 0
    for _ in range(n_gates):
        name = allowed[rng.integers(len(allowed))]
        spec = GATE_SPECS[name]
        wires = tuple(int(w) for w in rng.choice(n_qubits, size=spec.n_wires, replace=False))
        if not spec.parametrized:
            ops.append(Gate(name, wires))
        elif rng.random() < 0.25:
            ops.append(Gate(name, wires, angle=float(rng.uniform(-np.pi, np.pi))))
        else:
            ops.append(Gate(name, wires, slot=slot))
            slot += 1
    circuit = Circuit(n_qubits, ops)
    if readouts != "mixed":
        return Cell(circuit, Readouts.named(readouts, n_qubits))
    terms = list(Readouts.xyz(n_qubits))
    for _ in range(min(4, n_qubits)):
        size = int(rng.integers(1, n_qubits + 1))
        wires = tuple(int(w) for w in rng.choice(n_qubits, size=size, replace=False))
        letters = "".join(rng.choice(list("XYZ"), size=size))
        terms.append(PauliTerm(letters, wires))
    return Cell(circuit, Readouts(terms))


def random_thetas(cell: Cell, batch_size: int, n_steps: int, seed: int) -> torch.Tensor:
    """(T, B, P) float64 angles uniform in [-π, π]."""
    generator = torch.Generator().manual_seed(seed)
    shape = (n_steps, batch_size, cell.n_params)
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * torch.pi


def run_sequence(program, thetas: torch.Tensor, state=None):
    """Step ``program`` through (T, B, P) angles; return the final state and (T, B, K) readouts."""
    if state is None:
        state = program.init_state(thetas.shape[1])
    outputs = []
    for theta in thetas:
        state, readout = program.step(state, theta)
        outputs.append(readout)
    return state, torch.stack(outputs)
