"""The ``pennylane.*`` backends: wire order, gradients through the state, forward-only lightning,
backends for other devices, options and availability."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest
import torch

pytest.importorskip("pennylane")

import qrnn  # noqa: E402
from qrnn.backends import pennylane_device  # noqa: E402
from qrnn.ir import GATE_SPECS, Cell, Circuit, Gate, PauliTerm, Readouts  # noqa: E402
from qrnn.plugins import register_plugin, unregister_plugin  # noqa: E402
from qrnn.testing.cells import random_cell, random_thetas, run_sequence  # noqa: E402

DEFAULT, LIGHTNING = "pennylane.default.qubit", "pennylane.lightning.qubit"


@pytest.fixture(scope="module")
def reference():
    return qrnn.get_backend("numpy.statevector")


def _lopsided_cell() -> Cell:
    """A cell whose states are far from symmetric under reversing the wires; every gate kind."""
    gates = [Gate("x", 0), Gate("ry", 1, slot=0), Gate("rx", 2, slot=1), Gate("cx", (1, 2)),
             Gate("rz", 2, slot=2), Gate("h", 0), Gate("sdg", 0), Gate("s", 1), Gate("t", 2),
             Gate("rxx", (2, 0), slot=3), Gate("ryy", (0, 1), angle=0.7), Gate("rzz", (1, 2),
             slot=4), Gate("cz", (2, 0)), Gate("swap", (0, 2)), Gate("y", 1), Gate("z", 2)]
    terms = [PauliTerm("Z", 0), PauliTerm("Y", 0), PauliTerm("X", 2), PauliTerm("ZY", (1, 2)),
             PauliTerm("XZY", (2, 0, 1))]
    return Cell(Circuit(3, gates), Readouts(terms))


def test_every_ir_gate_has_an_operation():
    assert pennylane_device.GATES == set(GATE_SPECS)


@pytest.mark.parametrize("name", [DEFAULT, LIGHTNING])
def test_wire_order_matches_numpy_reference(reference, name):
    cell = _lopsided_cell()
    thetas = random_thetas(cell, batch_size=2, n_steps=2, seed=4)
    program = qrnn.get_backend(name).prepare(cell)
    with torch.no_grad():
        state, readouts = run_sequence(program, thetas)
    ref_state, expected = run_sequence(reference.prepare(cell), thetas)
    dense = reference.prepare(cell).statevector(ref_state)
    assert (dense - dense.flip(-1)).abs().max() > 0.1  # reversing the wires would be caught
    assert readouts.dtype == torch.float64
    torch.testing.assert_close(program.statevector(state), dense, atol=1e-12, rtol=0)
    torch.testing.assert_close(readouts, expected, atol=1e-12, rtol=0)


def test_default_qubit_gradients_match_torch_statevector():
    cell = random_cell(3, seed=8)
    thetas = random_thetas(cell, batch_size=2, n_steps=3, seed=1)
    weights = torch.randn(3, 2, cell.n_readouts, dtype=torch.float64,
                          generator=torch.Generator().manual_seed(0))
    grads = []
    for name, options in ((DEFAULT, {}), ("torch.statevector", {"dtype": "complex128"})):
        leaf = thetas.clone().requires_grad_(True)
        (run_sequence(qrnn.get_backend(name, **options).prepare(cell), leaf)[1] * weights
         ).sum().backward()
        grads.append(leaf.grad)
    assert grads[1].abs().max() > 0.1
    torch.testing.assert_close(grads[0], grads[1], atol=1e-10, rtol=0)


def test_default_qubit_differentiates_the_incoming_state():
    cell = Cell.default(3, n_layers=1)
    thetas = random_thetas(cell, batch_size=2, n_steps=2, seed=6)
    grads = []
    for name, options in ((DEFAULT, {}), ("torch.statevector", {"dtype": "complex128"})):
        program = qrnn.get_backend(name, **options).prepare(cell)
        with torch.no_grad():
            start, _ = program.step(program.init_state(2), thetas[0])
        start = program.statevector(start).clone().requires_grad_(True)
        _, readouts = program.step(start, thetas[1])
        readouts.pow(2).sum().backward()
        grads.append(start.grad)
    assert grads[1].abs().max() > 0.1
    torch.testing.assert_close(grads[0], grads[1], atol=1e-10, rtol=0)


def test_lightning_is_forward_only():
    backend = qrnn.get_backend(LIGHTNING)
    assert not backend.capabilities.differentiable
    program = backend.prepare(Cell.default(2, n_layers=1))
    thetas = torch.zeros(1, program.n_params, requires_grad=True)
    with pytest.raises(qrnn.NotDifferentiableError, match="forward-only"):
        program.step(program.init_state(1), thetas)


def test_backend_for_another_device(reference):
    cls = pennylane_device.pennylane_backend("reference.qubit")
    assert cls.name == "pennylane.reference.qubit"
    assert not cls.capabilities.differentiable
    plugin = types.ModuleType("reference_qubit_plugin")
    plugin.register_backends = qrnn.hookimpl(lambda register: register(cls))
    register_plugin(plugin, "test-pennylane-reference")
    try:
        cell = random_cell(3, seed=5)
        thetas = random_thetas(cell, batch_size=2, n_steps=3, seed=5)
        with torch.no_grad():
            _, readouts = run_sequence(qrnn.get_backend(cls.name).prepare(cell), thetas)
        _, expected = run_sequence(reference.prepare(cell), thetas)
        torch.testing.assert_close(readouts, expected, atol=1e-12, rtol=0)
    finally:
        unregister_plugin("test-pennylane-reference")


def test_device_options():
    backend = qrnn.get_backend(DEFAULT, device_options={"seed": 3})
    program = backend.prepare(Cell.default(2, n_layers=1))
    assert program.device.name == "default.qubit"
    for key in ("wires", "shots"):
        with pytest.raises(qrnn.QRNNError, match=f"must not set '{key}'"):
            qrnn.get_backend(DEFAULT, device_options={key: 2})
    with pytest.raises(qrnn.QRNNError, match=r"'lightning.qubit' rejected .*'num_threads'"):
        qrnn.get_backend(LIGHTNING, device_options={"num_threads": 2})


def test_uninstalled_device_is_unavailable():
    cls = pennylane_device.pennylane_backend("no.such.device")
    with pytest.raises(qrnn.BackendUnavailableError, match=r"'no.such.device'.*installed: "):
        cls.check_available()


def test_missing_pennylane_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "pennylane", None)
    with pytest.raises(qrnn.BackendUnavailableError, match=r"pip install 'qrnn\[pennylane\]'"):
        qrnn.get_backend(DEFAULT)
    with pytest.raises(qrnn.BackendUnavailableError, match=r"pip install 'qrnn\[pennylane\]'"):
        pennylane_device.LightningQubitBackend()


def test_registration_does_not_import_pennylane():
    code = ("import sys, qrnn.backends.pennylane_device as m; "
            "m.DefaultQubitBackend.check_available(); print('pennylane' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "False", run.stderr
