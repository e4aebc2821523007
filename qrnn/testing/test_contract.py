"""Registration, construction and input checks every backend must pass."""

from __future__ import annotations

import math

import pytest
import torch

import qrnn
from qrnn.ir import GATE_SPECS, Cell, Circuit, Gate, Readouts


def test_registered_and_constructed(backend_name, backend):
    assert backend_name in qrnn.list_backends()
    assert backend.name == backend_name
    assert isinstance(backend.capabilities, qrnn.Capabilities)
    assert type(backend).api_version == qrnn.backends.API_VERSION
    assert backend.capabilities.gates <= set(GATE_SPECS)


def test_prepare_rejects_unsupported_gates(backend):
    unsupported = sorted(set(GATE_SPECS) - backend.capabilities.gates)
    if not unsupported:
        # Supports every IR gate: then it must accept a cell that uses all of them.
        gates = [
            Gate(n, tuple(range(s.n_wires)), slot=0 if s.parametrized else None)
            for n, s in GATE_SPECS.items()
        ]
        program = backend.prepare(Cell(Circuit(2, gates), Readouts.z(2)))
        assert program.cell.circuit.gate_names == set(GATE_SPECS)
        return
    name = unsupported[0]
    spec = GATE_SPECS[name]
    gate = Gate(name, tuple(range(spec.n_wires)), slot=0 if spec.parametrized else None)
    cell = Cell(Circuit(max(2, spec.n_wires), [gate]), Readouts.z(2))
    with pytest.raises(qrnn.UnsupportedGateError, match=f"'{name}'"):
        backend.prepare(cell)


def test_prepare_rejects_too_many_qubits(backend):
    max_qubits = backend.capabilities.max_qubits
    if max_qubits is None:
        with pytest.raises(TypeError, match="Cell"):
            backend.prepare("not a cell")
        return
    cell = Cell.default(max_qubits + 1, n_layers=1, readouts="z", rotations=("ry",))
    with pytest.raises(qrnn.UnsupportedCellError, match=str(max_qubits)):
        backend.prepare(cell)


def test_prepare_is_cached(backend):
    cell = Cell.default(2, n_layers=1)
    assert backend.prepare(cell) is backend.prepare(Cell.default(2, n_layers=1))


@pytest.fixture
def program(backend):
    return backend.prepare(Cell.default(3, n_layers=1))


def test_wrong_theta_shape(program):
    state = program.init_state(2)
    with pytest.raises(qrnn.InvalidInputError, match=r"shape \(B, P\) = \(2, 6\)"):
        program.step(state, torch.zeros(2, 5))
    with pytest.raises(qrnn.InvalidInputError, match=r"\(got \(3, 6\)\)"):
        program.step(state, torch.zeros(3, 6))


def test_nan_theta(program):
    thetas = torch.zeros(2, 6)
    thetas[1, 2] = math.nan
    with pytest.raises(qrnn.InvalidInputError, match="NaN"):
        program.step(program.init_state(2), thetas)


def test_wrong_theta_dtype(program):
    with pytest.raises(qrnn.InvalidInputError, match="floating-point"):
        program.step(program.init_state(2), torch.zeros(2, 6, dtype=torch.int64))
    with pytest.raises(qrnn.InvalidInputError, match="torch.Tensor"):
        program.step(program.init_state(2), [[0.0] * 6] * 2)


def test_forward_only_backend_refuses_training(backend, program):
    thetas = torch.zeros(2, 6, requires_grad=True)
    if backend.capabilities.differentiable:
        _, readouts = program.step(program.init_state(2), thetas)
        assert readouts.requires_grad
    else:
        with pytest.raises(qrnn.NotDifferentiableError, match="torch.statevector"):
            program.step(program.init_state(2), thetas)
        with torch.no_grad():
            _, readouts = program.step(program.init_state(2), thetas)
        assert readouts.shape == (2, program.n_readouts)
