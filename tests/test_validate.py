"""Cross-backend validation: differences, standard errors, and the printed table."""

from __future__ import annotations

import types

import pytest
import torch

import qrnn
from qrnn.backends.numpy_sv import NumpyStatevectorBackend, NumpyStatevectorProgram
from qrnn.ir import Cell
from qrnn.plugins import register_plugin, unregister_plugin
from qrnn.testing.cells import random_thetas
from qrnn.validate import ReadoutComparison, compare_readouts, validate

SMALL = {"n_qubits": (2, 3), "n_cells": 1, "n_steps": 3, "batch_size": 2}


class _SignFlipProgram(NumpyStatevectorProgram):
    def expectations(self, state):
        return -super().expectations(state)


class _SignFlipBackend(NumpyStatevectorBackend):
    """Wrong on purpose: every readout negated."""

    name = "test.signflip"

    def compile(self, cell):
        return _SignFlipProgram(self, cell)


class _BiasedProgram(NumpyStatevectorProgram):
    def readout(self, state):
        return super().readout(state) + 0.05


class _BiasedShotsBackend(NumpyStatevectorBackend):
    """Samples, then shifts every estimate by 0.05: many standard errors at 4000 shots."""

    name = "test.biased"

    def compile(self, cell):
        return _BiasedProgram(self, cell)


@pytest.fixture(scope="module", autouse=True)
def faulty_backends():
    plugin = types.ModuleType("faulty_backends")

    @qrnn.hookimpl
    def register_backends(register):
        register(_SignFlipBackend)
        register(_BiasedShotsBackend)

    plugin.register_backends = register_backends
    qrnn.list_backends()  # load the built-ins first
    register_plugin(plugin, "test-faulty-backends")
    yield
    unregister_plugin("test-faulty-backends")


def test_agreeing_backends():
    report = validate(["torch.statevector", "numpy.statevector"], **SMALL)
    assert report.baseline == "torch.statevector"
    assert [row.label for row in report.rows] == ["torch.statevector", "numpy.statevector"]
    torch_row, numpy_row = report.rows
    assert torch_row.max_difference == 0.0
    assert 0 < numpy_row.max_difference < 1e-5  # complex64 against complex128
    assert numpy_row.max_error == 0.0
    assert numpy_row.max_standard_errors is None and numpy_row.expectation is None
    assert report.max_difference == numpy_row.max_difference


def test_wrong_backend_is_caught():
    report = validate(["numpy.statevector", "test.signflip"], **SMALL)
    assert report["test.signflip"].max_difference > 0.5
    assert report["test.signflip"].max_error == report["test.signflip"].max_difference


def test_shots_deviation_in_standard_errors():
    report = validate(
        ["numpy.statevector", "numpy.statevector@shots", "test.biased"],
        options={"numpy.statevector@shots": {"shots": 4000, "seed": 1},
                 "test.biased": {"shots": 4000, "seed": 1}},
        **SMALL,
    )
    honest, biased = report["numpy.statevector@shots"], report["test.biased"]
    assert honest.shots == 4000 and honest.mode == "shots=4000"
    assert honest.expectation == "own"
    assert 0 < honest.max_difference < 0.1
    assert 0 < honest.max_standard_errors < 6
    assert biased.max_standard_errors > 10
    assert biased.max_difference > honest.max_difference


def test_format_is_a_table():
    report = validate(
        ["numpy.statevector", "numpy.statevector@shots"],
        options={"numpy.statevector@shots": {"shots": 100, "seed": 0}},
        **SMALL,
    )
    lines = report.format().splitlines()
    assert "n_qubits 2, 3" in lines[0] and "3 steps" in lines[0]
    assert lines[1].split()[:2] == ["backend", "readout"]
    assert "vs numpy.statevector" in lines[1]
    assert lines[2].startswith("numpy.statevector ") and lines[2].rstrip().endswith("-")
    assert lines[3].startswith("numpy.statevector@shots") and "(own)" in lines[3]
    assert len(lines) == 4


def test_compare_readouts_on_given_programs():
    cell = Cell.default(2, n_layers=1)
    thetas = random_thetas(cell, batch_size=2, n_steps=3, seed=0)
    programs = {
        "numpy": qrnn.get_backend("numpy.statevector").prepare(cell),
        "flip": qrnn.get_backend("test.signflip").prepare(cell),
    }
    rows = compare_readouts(programs, thetas)
    assert [row.label for row in rows] == ["numpy", "flip"]
    assert rows[0].max_difference == 0.0 and rows[1].max_difference > 0.5
    other = qrnn.get_backend("numpy.statevector").prepare(Cell.default(3, n_layers=1))
    with pytest.raises(qrnn.QRNNError, match="another cell"):
        compare_readouts({"a": programs["numpy"], "b": other}, thetas)
    with pytest.raises(qrnn.QRNNError, match="at least one program"):
        compare_readouts({}, thetas)


def test_merge_keeps_the_worst():
    a = ReadoutComparison("x", "shots=10", 10, 0.1, 0.2, 1.5, "own")
    b = ReadoutComparison("x", "shots=10", 10, 0.3, 0.1, 2.5, "ideal")
    merged = a.merge(b)
    assert (merged.max_difference, merged.max_error, merged.max_standard_errors) == (0.3, 0.2, 2.5)
    assert merged.expectation == "mixed"
    exact = ReadoutComparison("y", "expectation", None, 0.0, 0.0)
    assert exact.merge(exact).max_standard_errors is None


@pytest.mark.parametrize(
    ("names", "kwargs", "message"),
    [
        ([], {}, "at least one backend"),
        (["numpy.statevector", "numpy.statevector"], {}, "distinct"),
        (["numpy.statevector"], {"options": {"torch.statevector": {}}}, "not among the backends"),
        (["numpy.statevector"], {"n_steps": 0}, "'n_steps' must be a positive int"),
    ],
)
def test_bad_requests(names, kwargs, message):
    with pytest.raises(qrnn.QRNNError, match=message):
        validate(names, **kwargs)


def test_report_lookup_names_the_labels():
    report = validate(["numpy.statevector"], **SMALL)
    with pytest.raises(KeyError, match="numpy.statevector"):
        report["torch.statevector"]


@pytest.mark.filterwarnings("ignore:.*no QubitProperties:UserWarning")  # GenericBackendV2: no T1/T2
def test_device_backend_is_compared_with_ideal_values():
    pytest.importorskip("qiskit_aer")
    from qiskit.providers.fake_provider import GenericBackendV2

    from qrnn.backends import qiskit_aer

    added = "qiskit.aer" not in qrnn.list_backends()
    if added:
        register_plugin(qiskit_aer, "test-validate-qiskit-aer")
    try:
        device = GenericBackendV2(3, seed=1, noise_info=False)
        report = validate(
            ["numpy.statevector", "qiskit.aer", "qiskit.aer@device"],
            options={"qiskit.aer@device": {"target_backend": device, "shots": 2000, "seed": 4}},
            n_qubits=(2,), n_cells=1, n_steps=2, batch_size=2,
        )
    finally:
        if added:
            unregister_plugin("test-validate-qiskit-aer")
    assert report["qiskit.aer"].max_difference < 1e-9
    device_row = report["qiskit.aer@device"]
    assert device_row.expectation == "ideal"
    assert 0 < device_row.max_standard_errors < 6
    assert torch.isfinite(torch.tensor(device_row.max_difference))
