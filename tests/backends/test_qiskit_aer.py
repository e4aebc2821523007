"""The ``qiskit.aer`` backend: wire order, exact/shots/noise/hardware modes, QASM round trip."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("qiskit_aer")

from qiskit.providers.fake_provider import GenericBackendV2  # noqa: E402
from qiskit_aer.noise import NoiseModel, depolarizing_error  # noqa: E402

import qrnn  # noqa: E402
from qrnn.backends import qiskit_aer  # noqa: E402
from qrnn.ir import Cell, Circuit, Gate, PauliTerm, Readouts  # noqa: E402
from qrnn.testing.cells import random_cell, random_thetas, run_sequence  # noqa: E402

# GenericBackendV2 has no T1/T2, so Aer warns that its noise model has no thermal relaxation.
pytestmark = pytest.mark.filterwarnings("ignore:.*no QubitProperties:UserWarning")

# A line of 5 qubits: a 3-qubit CNOT ring needs routing (SWAPs, a moved layout) on it.
LINE = [[0, 1], [1, 0], [1, 2], [2, 1], [2, 3], [3, 2], [3, 4], [4, 3]]


@pytest.fixture(scope="module")
def reference():
    return qrnn.get_backend("numpy.statevector")


def _aer(**options):
    return qrnn.get_backend("qiskit.aer", **options)


def _run(backend, cell, thetas):
    with torch.no_grad():
        return run_sequence(backend.prepare(cell), thetas)


def _line_device(noise: bool) -> GenericBackendV2:
    return GenericBackendV2(5, coupling_map=LINE, seed=4, noise_info=noise)


# -- wire order -------------------------------------------------------------------------------


def _lopsided_cell() -> Cell:
    """A cell whose states are far from symmetric under reversing the wires."""
    gates = [Gate("x", 0), Gate("ry", 1, slot=0), Gate("rx", 2, slot=1), Gate("cx", (1, 2)),
             Gate("rz", 2, slot=2), Gate("h", 0), Gate("s", 0)]
    terms = [PauliTerm("Z", 0), PauliTerm("Y", 0), PauliTerm("X", 2), PauliTerm("ZY", (1, 2))]
    return Cell(Circuit(3, gates), Readouts(terms))


def test_qubit_order_matches_numpy_reference(reference):
    cell = _lopsided_cell()
    thetas = torch.tensor([[[0.3, 1.1, -0.7], [2.0, -0.4, 0.9]]], dtype=torch.float64)
    backend = _aer()
    state, readouts = _run(backend, cell, thetas)
    ref_state, expected = run_sequence(reference.prepare(cell), thetas)
    ours = backend.prepare(cell).statevector(state)
    theirs = reference.prepare(cell).statevector(ref_state)
    assert torch.allclose(ours, theirs, atol=1e-12)
    assert torch.allclose(readouts, expected, atol=1e-12)
    # The state really is lopsided, and Aer holds it in Qiskit's little-endian order.
    assert not torch.allclose(theirs, torch.from_numpy(qiskit_aer.reverse_bit_order(
        theirs.numpy(), 3)), atol=1e-3)
    assert np.allclose(state, qiskit_aer.reverse_bit_order(theirs.numpy(), 3), atol=1e-12)


def test_wire_zero_is_qiskit_qubit_zero():
    from qiskit.quantum_info import Statevector

    circuit = Circuit(3, [Gate("x", 0)])
    program = _aer().prepare(Cell(circuit, Readouts.z(3)))
    state, readouts = program.step(program.init_state(1), torch.zeros(1, 0))
    assert readouts.tolist() == [[-1.0, 1.0, 1.0]]
    assert np.allclose(state[0], Statevector.from_label("001").data)  # qubit 0 is rightmost
    assert program.statevector(state)[0].abs().argmax().item() == 0b100  # wire 0 is the MSB


def test_reverse_bit_order_is_an_involution():
    vectors = np.random.default_rng(0).normal(size=(2, 16)) + 0j
    once = qiskit_aer.reverse_bit_order(vectors, 4)
    assert once[0, 0b0001] == vectors[0, 0b1000]
    assert np.array_equal(qiskit_aer.reverse_bit_order(once, 4), vectors)


# -- exact and shots --------------------------------------------------------------------------


def test_exact_mode_agrees_with_reference_over_steps(reference):
    cell = random_cell(4, seed=12)
    thetas = random_thetas(cell, batch_size=3, n_steps=6, seed=1)
    _, actual = _run(_aer(), cell, thetas)
    _, expected = run_sequence(reference.prepare(cell), thetas)
    assert actual.dtype == torch.float64
    assert (actual - expected).abs().max().item() < 1e-10


def test_measurement_settings_group_commuting_terms():
    settings, owner = qiskit_aer.measurement_settings(Readouts.xyz(3))
    assert settings == [{0: "X", 1: "X", 2: "X"}, {0: "Y", 1: "Y", 2: "Y"},
                        {0: "Z", 1: "Z", 2: "Z"}]
    assert owner == [0, 1, 2] * 3
    terms = Readouts([PauliTerm("ZX", (0, 1)), PauliTerm("Z", 0), PauliTerm("Y", 1)])
    settings, owner = qiskit_aer.measurement_settings(terms)
    assert owner == [0, 0, 1]
    assert settings[1] == {1: "Y"}


def _spy_runs(monkeypatch, runner):
    """Record the keyword options and the seeds Aer reports for every ``runner.run`` call."""
    calls = []
    original = runner.run

    def run(circuits, **options):
        job = original(circuits, **options)
        seeds = [r.seed_simulator for r in job.result().results]
        calls.append({"options": options, "seeds": seeds, "circuits": circuits})
        return job

    monkeypatch.setattr(runner, "run", run)
    return calls


def test_shots_seed_reaches_aer(monkeypatch, reference):
    cell = random_cell(3, seed=4)
    thetas = random_thetas(cell, batch_size=2, n_steps=3, seed=2)
    first, again, other = (_aer(shots=500, seed=seed) for seed in (11, 11, 12))
    calls = _spy_runs(monkeypatch, first.simulator)
    _, estimate = _run(first, cell, thetas)
    sampled = [c for c in calls if c["options"].get("shots") == 500]
    assert len(sampled) == 3  # one sampling run per step
    for call in sampled:
        assert call["seeds"][0] == call["options"]["seed_simulator"]  # Aer used our seed
    assert torch.equal(estimate, _run(again, cell, thetas)[1])
    assert not torch.equal(estimate, _run(other, cell, thetas)[1])
    grid = (estimate + 1) * 500 / 2  # a mean of 500 outcomes ±1
    assert torch.allclose(grid, grid.round(), atol=1e-9)
    exact = run_sequence(reference.prepare(cell), thetas)[1]
    standard_error = ((1 - exact**2).clamp_min(0) / 500).sqrt()
    assert ((estimate - exact).abs() <= 5 * standard_error + 1e-9).all()


def test_shots_do_not_collapse_the_carried_state(reference):
    cell = random_cell(3, seed=8, readouts="xyz")
    thetas = random_thetas(cell, batch_size=1, n_steps=4, seed=3)
    backend = _aer(shots=64, seed=0)
    state, _ = _run(backend, cell, thetas)
    ref_state, _ = run_sequence(reference.prepare(cell), thetas)
    assert torch.allclose(backend.prepare(cell).statevector(state),
                          reference.prepare(cell).statevector(ref_state), atol=1e-10)


# -- noise ------------------------------------------------------------------------------------


def test_ideal_noise_model_equals_reference(reference):
    cell = random_cell(3, seed=6)
    thetas = random_thetas(cell, batch_size=2, n_steps=4, seed=4)
    backend = _aer(noise_model=NoiseModel())
    state, actual = _run(backend, cell, thetas)
    _, expected = run_sequence(reference.prepare(cell), thetas)
    assert state.shape == (2, 8, 8)  # density matrices
    assert (actual - expected).abs().max().item() < 1e-10


@pytest.mark.parametrize("shots", [None, 20000])
def test_depolarizing_noise_shrinks_bloch_vector(shots):
    p = 0.1
    noise = NoiseModel()
    noise.add_all_qubit_quantum_error(depolarizing_error(p, 1), ["ry"])
    cell = Cell(Circuit(1, [Gate("ry", 0, slot=0)]), Readouts.xyz(1))
    thetas = torch.tensor([[[0.4]], [[0.5]], [[-1.3]]], dtype=torch.float64)
    _, readouts = _run(_aer(noise_model=noise, shots=shots, seed=5), cell, thetas)
    angle = thetas.cumsum(0)[:, 0, 0]  # the state is carried: angles add up, shrinking each step
    shrink = (1 - p) ** torch.arange(1, 4, dtype=torch.float64)
    expected = torch.stack([shrink * angle.sin(), 0 * angle, shrink * angle.cos()], -1)
    tolerance = 1e-10 if shots is None else 5 / math.sqrt(shots)
    assert (readouts[:, 0] - expected).abs().max().item() < tolerance


def test_routed_device_without_noise_equals_reference(reference):
    cell = Cell.default(3, n_layers=1)  # a CNOT ring, not native on a line
    thetas = random_thetas(cell, batch_size=2, n_steps=4, seed=5)
    backend = _aer(fake_device=_line_device(noise=False))
    lowered = backend.prepare(cell).step_circuit
    assert lowered.inputs != lowered.outputs  # routing moved the wires
    _, actual = _run(backend, cell, thetas)
    _, expected = run_sequence(reference.prepare(cell), thetas)
    assert (actual - expected).abs().max().item() < 1e-10


def test_fake_device_noise_is_small_but_real(reference):
    cell = Cell.default(3, n_layers=1)
    thetas = random_thetas(cell, batch_size=2, n_steps=3, seed=6)
    _, expected = run_sequence(reference.prepare(cell), thetas)
    _, noisy = _run(_aer(fake_device=_line_device(noise=True)), cell, thetas)
    _, again = _run(_aer(fake_device=_line_device(noise=True)), cell, thetas)
    difference = (noisy - expected).abs().max().item()
    assert 1e-3 < difference < 0.5
    assert torch.equal(noisy, again)


def test_named_fake_device_from_ibm_runtime(reference):
    pytest.importorskip("qiskit_ibm_runtime")
    cell = Cell.default(2, n_layers=1, readouts="z+zz")
    thetas = random_thetas(cell, batch_size=1, n_steps=2, seed=7)
    backend = _aer(fake_device="manila", shots=2000, seed=1)
    assert backend.device.name == "fake_manila"
    assert "fake_manila" in repr(backend)
    _, estimate = _run(backend, cell, thetas)
    _, expected = run_sequence(reference.prepare(cell), thetas)
    assert 1e-3 < (estimate - expected).abs().max().item() < 0.5


def test_unknown_fake_device_lists_known_ones():
    pytest.importorskip("qiskit_ibm_runtime")
    with pytest.raises(qrnn.QRNNError, match=r"unknown fake device 'nowhere'.*manila"):
        _aer(fake_device="nowhere")


def test_density_matrix_qubit_limit():
    cell = Cell.default(qiskit_aer.MAX_DENSITY_MATRIX_QUBITS + 1, n_layers=1, readouts="z")
    with pytest.raises(qrnn.UnsupportedCellError, match="density matrices of at most 10"):
        _aer(noise_model=NoiseModel()).prepare(cell)


# -- hardware ---------------------------------------------------------------------------------


def test_hardware_mode_reruns_prefixes_on_a_device(monkeypatch, reference):
    device = _line_device(noise=False)
    cell = Cell.default(3, n_layers=1, readouts="xyz")
    thetas = random_thetas(cell, batch_size=2, n_steps=3, seed=8)
    backend = _aer(target_backend=device, shots=4000, seed=3)
    calls = _spy_runs(monkeypatch, device)
    _, estimate = _run(backend, cell, thetas)
    _, expected = run_sequence(reference.prepare(cell), thetas)
    standard_error = ((1 - expected**2).clamp_min(0) / 4000).sqrt()
    assert ((estimate - expected).abs() <= 5 * standard_error + 1e-9).all()
    # Steps 1..3: each run holds B=2 samples x 3 settings, and the circuits grow with t.
    assert [len(c["circuits"]) for c in calls] == [6, 6, 6]
    sizes = [c["circuits"][0].count_ops().get("measure") for c in calls]
    assert sizes == [3, 3, 3]
    depths = [c["circuits"][0].size() for c in calls]
    assert depths[0] < depths[1] < depths[2]
    assert all(c["options"]["seed_simulator"] == c["seeds"][0] for c in calls)


def test_hardware_mode_on_a_noisy_fake_device(reference):
    fake_provider = pytest.importorskip("qiskit_ibm_runtime.fake_provider")
    cell = Cell.default(2, n_layers=1, readouts="z")
    thetas = random_thetas(cell, batch_size=1, n_steps=2, seed=9)
    first = _run(_aer(target_backend=fake_provider.FakeManilaV2(), shots=1000, seed=2), cell,
                 thetas)[1]
    again = _run(_aer(target_backend=fake_provider.FakeManilaV2(), shots=1000, seed=2), cell,
                 thetas)[1]
    assert torch.equal(first, again)
    _, expected = run_sequence(reference.prepare(cell), thetas)
    assert (first - expected).abs().max().item() < 0.5


def test_hardware_mode_needs_shots_and_has_no_exact_readouts():
    device = _line_device(noise=False)
    with pytest.raises(qrnn.QRNNError, match="needs shots=N"):
        _aer(target_backend=device)
    program = _aer(target_backend=device, shots=10).prepare(Cell.default(2, n_layers=1))
    with pytest.raises(qrnn.QRNNError, match="only samples"):
        program.expectations(program.init_state(1))


# -- options, errors, QASM --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"noise_model": "strong"}, "must be a qiskit_aer.noise.NoiseModel"),
        ({"target_backend": object(), "shots": 5}, "must be a qiskit BackendV2"),
        ({"fake_device": 3}, "'fake_device' must be a device name"),
        ({"layout": [0, 1]}, "'layout' needs 'fake_device' or 'target_backend'"),
        ({"noise_model": NoiseModel(), "fake_device": "manila"}, "at most one of"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(qrnn.QRNNError, match=message):
        _aer(**options)


def test_layout_must_match_the_cell():
    backend = _aer(fake_device=_line_device(noise=False), layout=[0, 1, 2])
    with pytest.raises(qrnn.UnsupportedCellError, match="one per wire"):
        backend.prepare(Cell.default(2, n_layers=1))
    lowered = backend.prepare(Cell.default(3, n_layers=1)).step_circuit
    assert lowered.inputs == (0, 1, 2)


def test_forward_only():
    program = _aer().prepare(Cell.default(2, n_layers=1))
    assert not qiskit_aer.QiskitAerBackend.capabilities.differentiable
    with pytest.raises(qrnn.NotDifferentiableError):
        program.step(program.init_state(1), torch.zeros(1, 4, requires_grad=True))


def test_importing_the_module_does_not_import_qiskit():
    code = "import sys, qrnn.backends.qiskit_aer; print('qiskit' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "False", run.stderr


def test_missing_qiskit_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "qiskit_aer", None)
    with pytest.raises(qrnn.BackendUnavailableError, match=r"pip install 'qrnn\[qiskit\]'"):
        qrnn.get_backend("qiskit.aer")


def test_qasm3_of_a_step_round_trips():
    pytest.importorskip("qiskit_qasm3_import")
    from qiskit import qasm3
    from qiskit.quantum_info import Operator

    cell = random_cell(3, seed=5)
    thetas = np.linspace(-2.0, 2.5, cell.n_params)
    program = _aer().prepare(cell)
    bound = qiskit_aer.to_qiskit(cell.circuit, thetas.tolist())
    text = program.qasm3(thetas)
    assert text.startswith("OPENQASM 3.0;")
    assert Operator(qasm3.loads(text)) == Operator(bound)
    # qrnn's own exporter names q[w] for wire w, the same mapping as this backend.
    assert Operator(qasm3.loads(qrnn.to_qasm3(cell.circuit, thetas))) == Operator(bound)
    assert Operator(bound) != Operator(qiskit_aer.to_qiskit(cell.circuit, (thetas + 0.1).tolist()))
