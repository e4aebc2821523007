"""The ``tensornetwork.mps`` backend: exact mode, truncation and its error, n = 40, gradients."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

pytest.importorskip("tensornetwork")

import qrnn  # noqa: E402
from qrnn.backends import tensornetwork_mps  # noqa: E402
from qrnn.ir import Cell, Circuit, Gate, PauliTerm, Readouts  # noqa: E402
from qrnn.testing.cells import random_cell, random_thetas, run_sequence  # noqa: E402

NAME = "tensornetwork.mps"


@pytest.fixture(scope="module")
def reference():
    return qrnn.get_backend("numpy.statevector")


def _mps(**options):
    return qrnn.get_backend(NAME, **options)


def _long_range_cell() -> Cell:
    """Gates on distant and reversed wires (swap networks both ways) on a lopsided state."""
    gates = [Gate("x", 0), Gate("ry", 1, slot=0), Gate("h", 4), Gate("cx", (4, 0)),
             Gate("rzz", (0, 3), slot=1), Gate("rx", 2, slot=2), Gate("cz", (1, 4)),
             Gate("swap", (3, 1)), Gate("ryy", (2, 0), angle=0.4)]
    terms = [PauliTerm("Z", 0), PauliTerm("Y", 4), PauliTerm("XZ", (1, 3)),
             PauliTerm("ZYX", (4, 0, 2))]
    return Cell(Circuit(5, gates), Readouts(terms))


@pytest.mark.parametrize(
    "cell",
    [random_cell(1, seed=1), random_cell(2, seed=2), random_cell(4, seed=3, n_gates=16),
     random_cell(6, seed=4, n_gates=24), _long_range_cell()],
    ids=["n1", "n2", "n4", "n6", "long-range"],
)
def test_exact_mode_matches_numpy(reference, cell):
    thetas = random_thetas(cell, batch_size=2, n_steps=5, seed=cell.n_qubits)
    program = _mps().prepare(cell)
    with torch.no_grad():
        state, readouts = run_sequence(program, thetas)
    ref_state, expected = run_sequence(reference.prepare(cell), thetas)
    torch.testing.assert_close(readouts, expected, atol=1e-10, rtol=0)
    dense = reference.prepare(cell).statevector(ref_state)
    torch.testing.assert_close(program.statevector(state), dense, atol=1e-10, rtol=0)
    assert torch.equal(program.truncation_error(state), torch.zeros(2, dtype=torch.float64))
    assert state.center is None  # exact mode keeps no canonical form


def test_single_truncation_error_is_the_infidelity():
    # Entangled pairs on (0, 1) and (2, 3), then a swap across the middle: only that split has
    # Schmidt rank 4 > χ = 2, so 1 - fidelity equals its discarded weight exactly.
    gates = [Gate("ry", 0, slot=0), Gate("cx", (0, 1)), Gate("ry", 2, slot=1), Gate("cx", (2, 3)),
             Gate("swap", (1, 2)), Gate("rx", 1, slot=2)]
    cell = Cell(Circuit(4, gates), Readouts.named("xyz+zz", 4))
    thetas = torch.tensor([[[1.1, 0.9, 0.3], [1.4, 2.0, 1.0]]], dtype=torch.float64)
    truncated, exact = _mps(max_bond_dim=2).prepare(cell), _mps().prepare(cell)
    with torch.no_grad():
        state, readouts = run_sequence(truncated, thetas)
        exact_state, exact_readouts = run_sequence(exact, thetas)
    error = truncated.truncation_error(state)
    assert (error > 1e-3).all()
    assert max(state.bond_dims) == 2
    overlap = (truncated.statevector(state).conj() * exact.statevector(exact_state)).sum(-1)
    torch.testing.assert_close(1 - overlap.abs() ** 2, error, atol=1e-12, rtol=0)
    # Pure states: |Δ⟨P⟩| ≤ 2 · trace distance = 2 sqrt(1 - F).
    deviation = (readouts - exact_readouts).abs()[0].amax(-1)
    assert (deviation <= 2 * error.sqrt() + 1e-12).all()


def test_truncation_error_falls_with_the_bond_and_vanishes_when_it_cannot_bind(reference):
    cell = Cell.default(8, n_layers=1, readouts="xyz")
    thetas = random_thetas(cell, batch_size=2, n_steps=4, seed=1)
    errors = []
    for chi in (2, 4, 16):  # 16 = 2**(8 // 2): no state of 8 qubits needs more
        program = _mps(max_bond_dim=chi).prepare(cell)
        with torch.no_grad():
            state, readouts = run_sequence(program, thetas)
        errors.append(program.truncation_error(state))
    assert (errors[0] > errors[1]).all() and (errors[1] > 0).all()
    assert torch.equal(errors[2], torch.zeros(2, dtype=torch.float64))
    _, expected = run_sequence(reference.prepare(cell), thetas)
    torch.testing.assert_close(readouts, expected, atol=1e-10, rtol=0)


def test_forty_qubits_with_bond_32():
    # A dense state of 40 qubits would need 2**40 amplitudes (16 TiB); the MPS holds 40 sites.
    cell = Cell.default(40, n_layers=1, readouts="xyz+zz")
    program = _mps(max_bond_dim=32).prepare(cell)
    thetas = random_thetas(cell, batch_size=2, n_steps=3, seed=0).requires_grad_(True)
    state, readouts = run_sequence(program, thetas)
    assert readouts.shape == (3, 2, 3 * 40 + 39)
    assert torch.isfinite(readouts).all()
    assert readouts.abs().max() <= 1 + 1e-9
    assert max(state.bond_dims) == 32
    error = program.truncation_error(state)
    assert torch.isfinite(error).all() and (error > 0).all()
    (grad,) = torch.autograd.grad(readouts.sum(), thetas)
    assert torch.isfinite(grad).all() and grad.abs().max() > 0


def test_statevector_refuses_large_n():
    program = _mps(max_bond_dim=4).prepare(Cell.default(21, n_layers=1, readouts="z"))
    with pytest.raises(qrnn.UnsupportedCellError, match="n_qubits <= 20"):
        program.statevector(program.init_state(1))


# -- gradients --------------------------------------------------------------------------------


def _bell_cell() -> Cell:
    """Degenerate singular values (1/√2, 1/√2) at every split, whatever the angles."""
    gates = [Gate("h", 0), Gate("cx", (0, 1)), Gate("rx", 0, slot=0), Gate("ry", 1, slot=1),
             Gate("cz", (0, 1))]
    return Cell(Circuit(2, gates), Readouts.named("xyz+zz", 2))


@pytest.mark.parametrize(
    ("cell", "scale"),
    [(_bell_cell(), 1.0), (Cell.default(5, n_layers=2, readouts="xyz+zz"), 0.0),
     (Cell.default(5, n_layers=2, readouts="xyz+zz"), 1.0)],
    ids=["bell-pair", "theta-zero", "generic"],
)
def test_exact_mode_gradients_match_torch_statevector(cell, scale):
    # θ = 0 keeps the state a product: zero singular values that the angles' derivatives lift.
    thetas = random_thetas(cell, batch_size=2, n_steps=3, seed=2) * scale
    weights = torch.randn(3, 2, cell.n_readouts, dtype=torch.float64,
                          generator=torch.Generator().manual_seed(0))
    grads = []
    for backend in (_mps(), qrnn.get_backend("torch.statevector", dtype="complex128")):
        leaf = thetas.clone().requires_grad_(True)
        (run_sequence(backend.prepare(cell), leaf)[1] * weights).sum().backward()
        grads.append(leaf.grad)
    assert grads[1].abs().max() > 0.1
    torch.testing.assert_close(grads[0], grads[1], atol=1e-10, rtol=0)


def test_truncated_mode_gradient_matches_finite_differences():
    cell = Cell.default(5, n_layers=1, readouts="xyz")
    program = _mps(max_bond_dim=2).prepare(cell)
    thetas = random_thetas(cell, batch_size=1, n_steps=2, seed=3)
    weights = torch.randn(2, 1, cell.n_readouts, dtype=torch.float64,
                          generator=torch.Generator().manual_seed(1))

    def loss(angles):
        return (run_sequence(program, angles)[1] * weights).sum()

    leaf = thetas.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(leaf), leaf)
    with torch.no_grad():
        assert (program.truncation_error(run_sequence(program, thetas)[0]) > 0.1).all()
        flat, eps = thetas.reshape(-1), 1e-6
        numeric = torch.stack([
            (loss((flat + eps * e).reshape(thetas.shape)) - loss((flat - eps * e).reshape(
                thetas.shape))) / (2 * eps)
            for e in torch.eye(flat.numel(), dtype=torch.float64)
        ])
    torch.testing.assert_close(grad.reshape(-1), numeric, atol=1e-6, rtol=0)


# -- options, availability, registration ------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -3, True, 2.0, "8"])
def test_max_bond_dim_validated(bad):
    with pytest.raises(qrnn.QRNNError, match=r"'max_bond_dim' must be a positive int.*got"):
        _mps(max_bond_dim=bad)


def test_exact_mode_refuses_cells_it_cannot_hold():
    cell = Cell.default(tensornetwork_mps.MAX_EXACT_QUBITS + 1, n_layers=1, readouts="z")
    with pytest.raises(qrnn.UnsupportedCellError, match="pass max_bond_dim"):
        _mps().prepare(cell)
    assert _mps(max_bond_dim=8).prepare(cell).truncates


def test_missing_tensornetwork_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensornetwork", None)
    with pytest.raises(qrnn.BackendUnavailableError, match=r"pip install 'qrnn\[tensornetwork\]'"):
        qrnn.get_backend(NAME)
    with pytest.raises(qrnn.BackendUnavailableError, match=r"pip install 'qrnn\[tensornetwork\]'"):
        tensornetwork_mps.TensorNetworkMPSBackend()


def test_registration_does_not_import_tensornetwork():
    code = ("import sys, qrnn.backends.tensornetwork_mps as m; "
            "m.TensorNetworkMPSBackend.check_available(); print('tensornetwork' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "False", run.stderr
