"""Memory-flat BPTT (``gradient="adjoint"``) of ``torch.statevector`` against plain autograd."""

from __future__ import annotations

import copy

import pytest
import torch

import qrnn
from qrnn.backends._torch_adjoint import _LINK
from qrnn.ir import Cell
from qrnn.testing.cells import random_cell, random_thetas, run_sequence

GATES = ("rx", "ry", "rz", "rzz", "rxx", "cx", "cz", "swap", "h", "s")
TOLERANCE = {"complex128": {"rtol": 1e-8, "atol": 1e-11}, "complex64": {"rtol": 1e-3, "atol": 1e-5}}


def _program(gradient: str, dtype: str = "complex128", cell: Cell | None = None, **options):
    cell = cell if cell is not None else random_cell(4, seed=3, gates=GATES, n_gates=16)
    backend = qrnn.get_backend("torch.statevector", dtype=dtype, gradient=gradient, **options)
    return backend.prepare(cell)


class Controller(torch.nn.Module):
    """θ_t from the input x_t and the previous readouts z_{t-1}: the model's feedback loop."""

    def __init__(self, n_inputs: int, n_readouts: int, n_params: int) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(n_inputs + n_readouts, 16), torch.nn.GELU(),
            torch.nn.Linear(16, n_params),
        )

    def forward(self, inputs: torch.Tensor, readouts: torch.Tensor) -> torch.Tensor:
        return 3 * self.net(torch.cat([inputs, readouts.to(inputs.dtype)], -1))


def _unroll(program, controller, inputs, state=None, detach_every=None):
    """Run the controller-driven recurrence; loss on every step's readouts and the final state."""
    batch = inputs.shape[1]
    if state is None:
        state = program.init_state(batch)
    readouts = program.readout(state)
    loss = 0.0
    weights = torch.linspace(-1.0, 1.0, program.n_readouts, dtype=torch.float64)
    for t, x in enumerate(inputs):
        if detach_every and t and t % detach_every == 0:
            state = state.detach()  # truncated BPTT: a new segment
        state, readouts = program.step(state, controller(x, readouts))
        loss = loss + (readouts.double() * weights).sum() * (1 + t) / len(inputs)
    final = program.statevector(state)
    loss = loss + (final.abs() ** 2 * torch.arange(final.shape[1], dtype=final.real.dtype)).sum()
    return loss + final.real.sum()


def _gradients(loss, tensors):
    return torch.autograd.grad(loss, tensors)


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
@pytest.mark.parametrize("detach_every", [None, 3])
def test_feedback_loop_matches_autograd(dtype, detach_every):
    torch.manual_seed(0)
    programs = [_program(gradient, dtype) for gradient in ("autograd", "adjoint")]
    base = Controller(2, programs[0].n_readouts, programs[0].n_params).double()
    results = []
    for program in programs:
        controller = copy.deepcopy(base)
        generator = torch.Generator().manual_seed(1)
        inputs = torch.randn(7, 3, 2, dtype=torch.float64, generator=generator).requires_grad_()
        loss = _unroll(program, controller, inputs, detach_every=detach_every)
        results.append((loss.detach(), _gradients(loss, [inputs, *controller.parameters()])))
    (loss_a, grads_a), (loss_b, grads_b) = results
    torch.testing.assert_close(loss_b, loss_a, **TOLERANCE[dtype])
    assert max(g.abs().max() for g in grads_a) > 1e-2
    for expected, actual in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(actual, expected, **TOLERANCE[dtype])


@pytest.mark.parametrize("seed", range(3))
def test_random_cells_match_autograd(seed):
    cell = random_cell(3 + seed, seed=20 + seed, gates=GATES + ("ryy", "t", "y"))
    thetas = random_thetas(cell, batch_size=2, n_steps=5, seed=seed)
    grads = []
    for gradient in ("autograd", "adjoint"):
        program = _program(gradient, cell=cell)
        leaf = thetas.clone().requires_grad_()
        state, readouts = run_sequence(program, leaf)
        loss = (readouts * torch.cos(torch.arange(readouts.numel()).view(readouts.shape))).sum()
        grads.append(torch.autograd.grad(loss + state.imag.sum(), leaf)[0])
    torch.testing.assert_close(grads[1], grads[0], **TOLERANCE["complex128"])


def test_two_sequences_and_a_branch_in_one_graph():
    grads = []
    for gradient in ("autograd", "adjoint"):
        program = _program(gradient)
        thetas = random_thetas(program.cell, batch_size=2, n_steps=9, seed=4).requires_grad_()
        first, z1 = run_sequence(program, thetas[:3])
        second, z2 = run_sequence(program, thetas[3:6])  # independent, from |0…0⟩
        branch, z3 = run_sequence(program, thetas[6:], state=first)  # continues `first` again
        _, z4 = run_sequence(program, thetas[6:] * 0.5, state=first)  # ... twice
        loss = z1.sum() + (z2**2).sum() + z3[-1].sum() - z4.sum() + branch.real.sum()
        grads.append(torch.autograd.grad(loss + second.imag.sum(), thetas)[0])
    torch.testing.assert_close(grads[1], grads[0], **TOLERANCE["complex128"])


def test_gradient_wrt_the_incoming_state_and_evolve_then_readout():
    grads = []
    for gradient in ("autograd", "adjoint"):
        program = _program(gradient)
        generator = torch.Generator().manual_seed(5)
        start = torch.randn(2, 16, dtype=torch.complex128, generator=generator).requires_grad_()
        thetas = random_thetas(program.cell, batch_size=2, n_steps=4, seed=5).requires_grad_()
        state = start / start.norm(dim=1, keepdim=True)
        for theta in thetas:
            state = program.evolve(state, theta)  # no readouts inside the step
            state = program.evolve(state, theta * 0.3)
        loss = program.readout(state).sum() + state.real.sum()
        grads.append(torch.autograd.grad(loss, [start, thetas]))
    for expected, actual in zip(*grads, strict=True):
        torch.testing.assert_close(actual, expected, **TOLERANCE["complex128"])


def test_second_backward_over_a_retained_graph():
    grads = []
    for gradient in ("autograd", "adjoint"):
        program = _program(gradient)
        thetas = random_thetas(program.cell, batch_size=2, n_steps=6, seed=6).requires_grad_()
        _, readouts = run_sequence(program, thetas)
        loss = readouts.sum()
        loss.backward(retain_graph=True)  # the second pass finds the tape at ψ_0 and walks on
        loss.backward()
        grads.append(thetas.grad)
    torch.testing.assert_close(grads[1], grads[0], **TOLERANCE["complex128"])


def test_shots_keep_the_straight_through_gradient():
    grads, samples = [], []
    for gradient in ("autograd", "adjoint"):
        program = _program(gradient, shots=100, seed=11)
        thetas = random_thetas(program.cell, batch_size=2, n_steps=3, seed=7).requires_grad_()
        _, readouts = run_sequence(program, thetas)
        samples.append(readouts.detach())
        grads.append(torch.autograd.grad((readouts * readouts.detach()).sum(), thetas)[0])
    assert torch.equal(samples[0], samples[1])
    assert torch.allclose(samples[0] * 50, (samples[0] * 50).round())  # estimates of 100 shots
    torch.testing.assert_close(grads[1], grads[0], **TOLERANCE["complex128"])


def _saved_state_tensors(gradient: str, n_steps: int) -> tuple[int, object]:
    """Complex tensors of at least B·D elements that autograd saves while unrolling."""
    program = _program(gradient, dtype="complex64", cell=Cell.default(8, n_layers=2))
    controller = Controller(2, program.n_readouts, program.n_params)
    batch, dim = 2, 2**8
    saved = []

    def pack(tensor):
        if tensor.is_complex() and tensor.numel() >= batch * dim:
            saved.append(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        state = program.init_state(batch)
        readouts = program.readout(state)
        for _ in range(n_steps):
            state, readouts = program.step(state, controller(torch.ones(batch, 2), readouts))
    return len(saved), state


def test_adjoint_graph_holds_no_per_step_state():
    stored_autograd, _ = _saved_state_tensors("autograd", 12)
    stored_adjoint, state = _saved_state_tensors("adjoint", 12)
    assert stored_autograd >= 12  # plain autograd keeps states of every step
    assert stored_adjoint == 0
    trajectory, position = getattr(state, _LINK)
    assert position == 12 and len(trajectory.thetas) == 12
    assert trajectory.state.data_ptr() == state.data_ptr()  # the tape's one state is the output


def test_adjoint_is_the_default_and_no_grad_runs_plain():
    program = qrnn.get_backend("torch.statevector").prepare(Cell.default(3))
    assert program.backend.gradient == "adjoint"
    thetas = torch.zeros(2, program.n_params, requires_grad=True)
    state, _ = program.step(program.init_state(2), thetas)
    assert hasattr(state, _LINK)
    with torch.no_grad():
        state, _ = program.step(program.init_state(2), thetas)
    assert not hasattr(state, _LINK) and state.grad_fn is None
