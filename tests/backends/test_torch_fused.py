"""The fused plan of ``torch.statevector`` against its gate-by-gate path and the numpy oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import qrnn
from qrnn.backends import _torch_plan
from qrnn.backends._torch_plan import (
    DiagonalBlock,
    GateBlock,
    LocalBlock,
    PermutationBlock,
    kronecker_sum,
    marginal_index,
    marginals,
)
from qrnn.ir import Cell, Circuit, Gate, PauliTerm, Readouts
from qrnn.testing.cells import random_cell, random_thetas, run_sequence

# Every kind of gate the plan fuses or falls back on, rzz/rxx/cz/swap and constant angles included.
MIXED_GATES = ("rx", "ry", "rz", "rzz", "rxx", "ryy", "cx", "cz", "swap", "h", "s", "t", "y")


def _backend(**options):
    return qrnn.get_backend("torch.statevector", **options)


def _kinds(program) -> list[str]:
    return [type(block).__name__ for block in program.plan.blocks]


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
@pytest.mark.parametrize(("n_qubits", "seed"), [(1, 0), (2, 1), (3, 2), (5, 3), (6, 4), (7, 5)])
def test_fused_matches_gates_and_reference(dtype, n_qubits, seed):
    cell = random_cell(n_qubits, seed=seed, gates=MIXED_GATES, n_gates=5 * n_qubits + 3)
    thetas = random_thetas(cell, batch_size=3, n_steps=4, seed=seed)
    fused = _backend(dtype=dtype).prepare(cell)
    gates = _backend(dtype=dtype, fused=False).prepare(cell)
    assert len(fused.plan.blocks) < len(cell.circuit.gates) or len(cell.circuit.gates) <= 1
    with torch.no_grad():
        fused_state, fused_readouts = run_sequence(fused, thetas)
        gates_state, gates_readouts = run_sequence(gates, thetas)
    ref_state, ref_readouts = run_sequence(qrnn.get_backend("numpy.statevector").prepare(cell),
                                           thetas)
    tol = 1e-12 if dtype == "complex128" else 2e-5
    torch.testing.assert_close(fused_state, gates_state, atol=tol, rtol=0)
    torch.testing.assert_close(fused_state.to(torch.complex128), torch.from_numpy(ref_state),
                               atol=tol, rtol=0)
    torch.testing.assert_close(fused_readouts.double(), ref_readouts, atol=tol, rtol=0)
    torch.testing.assert_close(gates_readouts.double(), ref_readouts, atol=tol, rtol=0)


@pytest.mark.parametrize("seed", range(4))
def test_fused_gradients_match_gate_by_gate(seed):
    cell = random_cell(4, seed=40 + seed, gates=MIXED_GATES, n_gates=18)
    thetas = random_thetas(cell, batch_size=2, n_steps=3, seed=seed)
    weights = torch.randn(3, 2, cell.n_readouts, generator=torch.Generator().manual_seed(seed),
                          dtype=torch.float64)

    def gradient(program):
        leaf = thetas.clone().requires_grad_()
        state, readouts = run_sequence(program, leaf)
        loss = (readouts * weights).sum() + (state.abs() ** 2 * torch.arange(16.0)).sum()
        return torch.autograd.grad(loss, leaf)[0]

    options = {"dtype": "complex128", "gradient": "autograd"}
    expected = gradient(_backend(fused=False, **options).prepare(cell))
    actual = gradient(_backend(**options).prepare(cell))
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-11)


def test_default_cell_plan_is_two_passes_per_layer_kind():
    program = _backend().prepare(Cell.default(10, n_layers=2))
    # Each layer: RY and RZ on every wire fuse into one local block, the CNOT ring is one gather.
    assert _kinds(program) == ["LocalBlock", "PermutationBlock"] * 2
    local = program.plan.blocks[0]
    assert [len(kernel.chunk.wires) for kernel in local.kernels] == [5, 5]
    assert len(local.table) == 2  # two gates per wire multiply into one 2×2 matrix


def test_plan_kinds_and_fallback():
    gates = [Gate("rz", 0, slot=0), Gate("rzz", (1, 2), slot=1), Gate("cz", (0, 2)),  # diagonal
             Gate("cx", (0, 1)), Gate("swap", (1, 2)),  # permutation
             Gate("rxx", (0, 2), slot=2),  # dense two-qubit: alone
             Gate("ry", 1, slot=3), Gate("rz", 1, angle=0.3), Gate("h", 2)]  # local
    program = _backend().prepare(Cell(Circuit(3, gates), Readouts.z(3)))
    assert _kinds(program) == ["DiagonalBlock", "PermutationBlock", "GateBlock", "LocalBlock"]
    unfused = _backend(fused=False).prepare(Cell(Circuit(3, gates), Readouts.z(3)))
    assert _kinds(unfused) == ["GateBlock"] * len(gates)


def test_single_qubit_diagonal_run_becomes_local_when_a_rotation_follows():
    gates = [Gate("rz", 0, slot=0), Gate("t", 1), Gate("ry", 0, slot=1)]
    assert _torch_plan.runs(tuple(gates), fused=True) == [("local", [0, 1, 2])]
    assert _torch_plan.runs(tuple(gates[:2]), fused=True) == [("diagonal", [0, 1])]


def test_untouched_chunks_are_dropped():
    gates = [Gate("ry", 0, slot=0), Gate("ry", 11, slot=1)]
    block = _backend().prepare(Cell(Circuit(12, gates), Readouts.z(12))).plan.blocks[0]
    assert isinstance(block, LocalBlock)
    assert [list(kernel.chunk.wires) for kernel in block.kernels] == [[0, 1, 2, 3], [8, 9, 10, 11]]


def test_fixed_blocks_are_computed_once():
    gates = [Gate("h", 0), Gate("rz", 1, angle=0.7), Gate("cx", (0, 1)), Gate("ry", 0, slot=0)]
    plan = _backend().prepare(Cell(Circuit(2, gates), Readouts.z(2))).plan
    assert [block.trainable for block in plan.blocks] == [False, False, True]
    assert plan.params(torch.zeros(4, 1))[:2] == [None, None]
    assert plan._fixed[0][0].shape == (1, 4, 4)


@pytest.mark.parametrize("seed", range(3))
def test_adjoint_run_inverts_the_step(seed):
    cell = random_cell(5, seed=seed, gates=MIXED_GATES, n_gates=20)
    program = _backend(dtype="complex128").prepare(cell)
    thetas = random_thetas(cell, batch_size=3, n_steps=1, seed=seed)[0]
    state = program.plan.run(program.init_state(3), thetas)
    state = state * torch.randn(3, 32, dtype=torch.complex128)  # any vector, not just |0…0⟩
    back = program.plan.run(program.plan.run(state, thetas), thetas, adjoint=True)
    torch.testing.assert_close(back, state, atol=1e-12, rtol=0)


def test_blocks_cover_every_gate_kind():
    kinds = {
        "rz": DiagonalBlock, "rzz": DiagonalBlock, "cz": DiagonalBlock, "s": DiagonalBlock,
        "cx": PermutationBlock, "swap": PermutationBlock, "rxx": GateBlock, "ryy": GateBlock,
        "ry": LocalBlock, "rx": LocalBlock, "h": LocalBlock, "y": LocalBlock,
    }
    for name, block in kinds.items():
        kind = _torch_plan.gate_kind(name)
        assert _torch_plan._BLOCKS[kind] is block, name


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_marginals_and_kronecker_sum(size):
    generator = np.random.default_rng(size)
    dim = 2**size
    matrix = generator.normal(size=(2, dim, dim)) + 1j * generator.normal(size=(2, dim, dim))
    index = torch.as_tensor(marginal_index(size))
    got = marginals(torch.as_tensor(matrix), index).numpy()
    blocks = generator.normal(size=(2, size, 2, 2)) + 1j * generator.normal(size=(2, size, 2, 2))
    total = kronecker_sum(torch.as_tensor(blocks), index).numpy()
    for w in range(size):
        tensor = matrix.reshape(2, 2**w, 2, 2 ** (size - w - 1), 2**w, 2, 2 ** (size - w - 1))
        np.testing.assert_allclose(got[:, w], np.einsum("bxayxcy->bac", tensor), atol=1e-12)
    expected = sum(
        np.stack([np.kron(np.kron(np.eye(2**w), b), np.eye(2 ** (size - w - 1)))
                  for b in blocks[:, w]])
        for w in range(size)
    )
    np.testing.assert_allclose(total, expected, atol=1e-12)


def _readout_cell(n_qubits: int) -> Cell:
    """XYZ on every wire, Z strings, and strings that need the gather fallback."""
    terms = [*Readouts.xyz(n_qubits), PauliTerm("ZZ", (0, n_qubits - 1)),
             PauliTerm("ZZZ", (2, 0, 1)), PauliTerm("XY", (1, 3)), PauliTerm("YZX", (3, 0, 2))]
    return Cell(Circuit.hardware_efficient(n_qubits, 2, rotations=("rx", "ry", "rz")),
                Readouts(terms))


@pytest.mark.parametrize("n_qubits", [4, 7])
def test_readout_groups_and_their_gradient(n_qubits):
    cell = _readout_cell(n_qubits)
    generator = torch.Generator().manual_seed(n_qubits)
    state = torch.randn(3, 2**n_qubits, dtype=torch.complex128, generator=generator)
    state = state / state.norm(dim=1, keepdim=True)
    weights = torch.randn(3, cell.n_readouts, dtype=torch.float64, generator=generator)
    results = []
    for fused in (True, False):
        plan = _backend(dtype="complex128", fused=fused).prepare(cell).readout_plan
        leaf = state.clone().requires_grad_()
        values = plan(leaf)
        (grad,) = torch.autograd.grad((values * weights).sum(), leaf)
        results.append((values.detach(), grad))
    fused_plan = _backend(dtype="complex128").prepare(cell).readout_plan
    assert len(fused_plan.chunks) >= 1 and fused_plan.signs.shape[1] == 2
    assert fused_plan.index.shape[0] == 2  # only the two mixed strings are gathered
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-12, rtol=0)
    torch.testing.assert_close(results[0][1], results[1][1], atol=1e-12, rtol=0)
    torch.testing.assert_close(fused_plan.backward(state, weights), results[1][1],
                               atol=1e-12, rtol=0)


def test_backend_options_are_validated():
    with pytest.raises(qrnn.QRNNError, match="'fused' must be True or False"):
        _backend(fused="yes")
    with pytest.raises(qrnn.QRNNError, match="'gradient' must be one of"):
        _backend(gradient="backprop")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    cell = random_cell(6, seed=9, gates=MIXED_GATES, n_gates=25)
    thetas = random_thetas(cell, batch_size=4, n_steps=3, seed=9)
    with torch.no_grad():
        _, cpu = run_sequence(_backend(dtype="complex128").prepare(cell), thetas)
        _, gpu = run_sequence(_backend(dtype="complex128", device="cuda").prepare(cell),
                              thetas.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-12, rtol=0)
