"""The installed plugin: discovery through the entry point, agreement with qrnn's reference, and
qrnn's own conformance suite (``qrnn-backend-test``)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import numpy as np
import pytest
import qrnn_qulacs
import torch

import qrnn
from qrnn.ir import GATE_SPECS, Cell, Circuit, Gate, Readouts
from qrnn.registry import REGISTRY
from qrnn.testing.cells import random_cell, random_thetas, run_sequence

NAME = "qulacs.statevector"


def test_entry_point_is_installed():
    points = importlib.metadata.entry_points(group="qrnn")
    assert [p.value for p in points if p.name == "qulacs"] == ["qrnn_qulacs"]


def test_discovered_by_qrnn():
    assert NAME in qrnn.list_backends(available=True)
    assert REGISTRY.owners[NAME] == "qulacs"  # registered by the entry point, not by hand
    backend = qrnn.get_backend(NAME)
    assert isinstance(backend, qrnn_qulacs.QulacsStatevectorBackend)
    assert not backend.capabilities.differentiable


def test_every_gate_agrees_with_reference():
    reference = qrnn.get_backend("numpy.statevector")
    cell = random_cell(4, seed=2, n_gates=40)
    assert cell.circuit.gate_names == set(GATE_SPECS)  # all 16 IR gates appear
    thetas = random_thetas(cell, batch_size=3, n_steps=5, seed=1)
    program = qrnn.get_backend(NAME).prepare(cell)
    state, readouts = run_sequence(program, thetas)
    ref_state, expected = run_sequence(reference.prepare(cell), thetas)
    assert (readouts - expected).abs().max().item() < 1e-12
    expected_state = reference.prepare(cell).statevector(ref_state)
    assert torch.allclose(program.statevector(state), expected_state, atol=1e-12)


def test_wire_zero_is_the_most_significant_bit():
    cell = Cell(Circuit(3, [Gate("x", 0), Gate("ry", 2, slot=0)]), Readouts.z(3))
    program = qrnn.get_backend(NAME).prepare(cell)
    state, readouts = program.step(program.init_state(1), torch.tensor([[np.pi / 3]]))
    assert torch.allclose(readouts, torch.tensor([[-1.0, 1.0, 0.5]], dtype=torch.float64))
    probabilities = program.statevector(state).abs().pow(2)[0]
    assert torch.allclose(probabilities[[0b100, 0b101]], torch.tensor([0.75, 0.25],
                                                                       dtype=torch.float64))


def test_a_slot_used_twice_drives_both_gates():
    gates = [Gate("rx", 0, slot=0), Gate("rzz", (0, 1), slot=1), Gate("rx", 1, slot=0)]
    cell = Cell(Circuit(2, gates), Readouts.xyz(2))
    thetas = torch.tensor([[[0.7, -1.9]], [[2.2, 0.4]]], dtype=torch.float64)
    _, readouts = run_sequence(qrnn.get_backend(NAME).prepare(cell), thetas)
    _, expected = run_sequence(qrnn.get_backend("numpy.statevector").prepare(cell), thetas)
    assert (readouts - expected).abs().max().item() < 1e-12


@pytest.mark.parametrize("options", [[], ["--option", "shots=1000", "--option", "seed=3"]])
def test_passes_qrnn_backend_test(options):
    run = subprocess.run(
        [sys.executable, "-m", "qrnn.testing.runner", "--backend", NAME, *options],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout
