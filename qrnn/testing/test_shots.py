"""Finite-shot readouts: seeded, reproducible, and within 5 standard errors of the exact value."""

from __future__ import annotations

import pytest
import torch

import qrnn
from qrnn.testing.cells import random_cell, random_thetas, run_sequence

SHOTS = 2000


def _shots_backend(name, options, seed):
    if not qrnn.get_backend(name, **options).capabilities.shots:
        pytest.skip(f"{name} does not support shots")
    return qrnn.get_backend(name, **{**options, "shots": SHOTS, "seed": seed})


@pytest.fixture
def cell(backend_name, backend_options):
    gates = qrnn.get_backend(backend_name, **backend_options).capabilities.gates
    return random_cell(3, seed=21, gates=gates)


def _readouts(backend, cell, thetas):
    with torch.no_grad():
        return run_sequence(backend.prepare(cell), thetas)[1].double().cpu()


def test_shots_are_seeded(backend_name, backend_options, cell):
    thetas = random_thetas(cell, batch_size=3, n_steps=4, seed=0)
    first = _readouts(_shots_backend(backend_name, backend_options, 1), cell, thetas)
    again = _readouts(_shots_backend(backend_name, backend_options, 1), cell, thetas)
    other = _readouts(_shots_backend(backend_name, backend_options, 2), cell, thetas)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_shots_within_five_standard_errors(backend_name, backend_options, cell, reference):
    thetas = random_thetas(cell, batch_size=4, n_steps=5, seed=3)
    estimate = _readouts(_shots_backend(backend_name, backend_options, 7), cell, thetas)
    exact = run_sequence(reference.prepare(cell), thetas)[1]
    assert estimate.abs().max() <= 1.0
    # Each estimate is a mean of SHOTS outcomes ±1: a multiple of 2/SHOTS.
    grid = (estimate + 1) * SHOTS / 2
    assert torch.allclose(grid, grid.round(), atol=1e-3)
    standard_error = ((1 - exact**2).clamp_min(0) / SHOTS).sqrt()
    assert ((estimate - exact).abs() <= 5 * standard_error + 1e-6).all()
