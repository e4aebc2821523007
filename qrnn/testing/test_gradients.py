"""Gradients of differentiable backends against central finite differences."""

from __future__ import annotations

import pytest
import torch

from qrnn.testing.cells import random_cell, random_thetas, run_sequence

pytestmark = pytest.mark.usefixtures("exact_only")


@pytest.mark.parametrize("n_qubits", [1, 3])
def test_gradient_matches_finite_differences(backend, tol, n_qubits):
    if not backend.capabilities.differentiable:
        pytest.skip(f"{backend.name} is forward-only")
    cell = random_cell(n_qubits, seed=11 + n_qubits, gates=backend.capabilities.gates)
    program = backend.prepare(cell)
    thetas = random_thetas(cell, batch_size=2, n_steps=3, seed=5)  # (T, B, P)
    weights = torch.randn(
        3, 2, cell.n_readouts, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )

    def loss(angles: torch.Tensor) -> torch.Tensor:
        # Readouts of later steps depend on earlier θ through the carried state, so this checks
        # gradients w.r.t. θ and w.r.t. the incoming state.
        _, readouts = run_sequence(program, angles)
        return (readouts.double() * weights).sum()

    leaf = thetas.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(leaf), leaf)
    precise = tol < 1e-8
    eps, atol = (1e-4, 1e-7) if precise else (1e-2, 2e-3)
    flat = thetas.reshape(-1)
    numeric = torch.zeros_like(flat)
    with torch.no_grad():
        for i in range(flat.numel()):
            shift = torch.zeros_like(flat)
            shift[i] = eps
            plus = loss((flat + shift).reshape(thetas.shape))
            minus = loss((flat - shift).reshape(thetas.shape))
            numeric[i] = (plus - minus) / (2 * eps)
    torch.testing.assert_close(grad.reshape(-1), numeric, atol=atol, rtol=1e-3)
