"""Readouts agree with the complex128 reference and with known analytic values."""

from __future__ import annotations

import math

import pytest
import torch

from qrnn.ir import Cell, Circuit, Gate, PauliTerm, Readouts
from qrnn.testing.cells import random_cell, random_thetas, run_sequence

pytestmark = pytest.mark.usefixtures("exact_only")


def _close(actual, expected, tol):
    actual = actual.detach().to(torch.float64).cpu()
    assert actual.shape == expected.shape
    error = (actual - expected).abs().max().item()
    assert error <= tol, f"max readout error {error:.3g} exceeds tolerance {tol:.3g}"


@pytest.mark.parametrize(
    ("n_qubits", "batch_size", "readouts"),
    [
        (1, 1, "mixed"),
        (2, 3, "mixed"),
        (3, 2, "xyz"),
        (5, 4, "mixed"),
        (7, 2, "z+zz"),
        (10, 2, "mixed"),
    ],
)
def test_agrees_with_reference_over_steps(backend, reference, tol, n_qubits, batch_size, readouts):
    cell = random_cell(
        n_qubits, seed=100 + n_qubits, gates=backend.capabilities.gates, readouts=readouts
    )
    thetas = random_thetas(cell, batch_size, n_steps=20, seed=n_qubits)
    with torch.no_grad():
        _, actual = run_sequence(backend.prepare(cell), thetas)
    _, expected = run_sequence(reference.prepare(cell), thetas)
    assert actual.shape == (20, batch_size, cell.n_readouts)
    _close(actual, expected, tol)


def test_batched_equals_per_sample(backend, tol):
    cell = random_cell(4, seed=7, gates=backend.capabilities.gates)
    thetas = random_thetas(cell, batch_size=5, n_steps=6, seed=1)
    program = backend.prepare(cell)
    with torch.no_grad():
        _, batched = run_sequence(program, thetas)
        for b in range(5):
            _, single = run_sequence(program, thetas[:, b : b + 1])
            _close(single[:, 0], batched[:, b].double().cpu(), tol)


def test_norm_preserved_over_200_steps(backend, reference, tol):
    cell = random_cell(4, seed=3, gates=backend.capabilities.gates)
    thetas = random_thetas(cell, batch_size=2, n_steps=200, seed=2)
    program = backend.prepare(cell)
    with torch.no_grad():
        state, actual = run_sequence(program, thetas)
    _, expected = run_sequence(reference.prepare(cell), thetas)
    _close(actual[-1], expected[-1], 10 * tol)  # a drifting norm would scale every readout
    if backend.capabilities.statevector:
        norms = program.statevector(state).abs().pow(2).sum(-1).double().cpu()
        _close(norms, torch.ones(2, dtype=torch.float64), 10 * tol)


@pytest.mark.parametrize("angle", [0.0, 0.3, -1.2, 2.5])
def test_ry_analytic(backend, tol, angle):
    cell = Cell(Circuit(1, [Gate("ry", (0,), slot=0)]), Readouts.xyz(1))
    program = backend.prepare(cell)
    with torch.no_grad():
        _, readouts = program.step(
            program.init_state(1), torch.tensor([[angle]], dtype=torch.float64)
        )
    expected = torch.tensor([[math.sin(angle), 0.0, math.cos(angle)]], dtype=torch.float64)
    _close(readouts, expected, tol)


def test_bell_pair_and_wire_order(backend, tol):
    gates = [
        Gate(n, w)
        for n, w in [("h", (0,)), ("cx", (0, 1)), ("x", (2,))]
        if n in backend.capabilities.gates
    ]
    if len(gates) < 3:
        pytest.skip("backend lacks h, cx or x")
    terms = [
        PauliTerm("ZZ", (0, 1)),
        PauliTerm("XX", (0, 1)),
        PauliTerm("YY", (0, 1)),
        PauliTerm("Z", (0,)),
        PauliTerm("Z", (2,)),
        PauliTerm("ZZ", (1, 2)),
    ]
    cell = Cell(Circuit(3, gates), Readouts(terms))
    program = backend.prepare(cell)
    with torch.no_grad():
        state, readouts = program.step(program.init_state(1), torch.zeros(1, 0))
    _close(readouts, torch.tensor([[1.0, 1.0, -1.0, 0.0, -1.0, 0.0]], dtype=torch.float64), tol)
    if backend.capabilities.statevector:
        # (|000> + |110>)/sqrt(2) with X on wire 2 -> |001> and |111>: indices 1 and 7.
        probs = program.statevector(state).abs().pow(2).double().cpu()[0]
        expected = torch.zeros(8, dtype=torch.float64)
        expected[[1, 7]] = 0.5
        _close(probs, expected, tol)
