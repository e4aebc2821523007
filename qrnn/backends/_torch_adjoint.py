"""Memory-flat back-propagation through time for ``torch.statevector`` (``gradient="adjoint"``).

The recurrence is unitary and the readouts do not collapse the state, so ψ_{t-1} = U(θ_t)† ψ_t:
past states can be recomputed in the backward pass instead of stored.

1. Each step is one :class:`AdjointStep` (a ``torch.autograd.Function``): (ψ_{t-1}, θ_t) ->
   (ψ_t, z_t). It saves no tensor; its context only points at a :class:`Trajectory` and the
   step's position p in it.
2. A trajectory is one chain of steps, each taking the previous one's output state. It holds the
   (B, P) angles of every step and *one* state, ψ at its cursor. A step's output carries its
   (trajectory, position) as an attribute, so the next step on it extends the chain; any other
   input state (``init_state``, a ``detach()``-ed state, a state that another step already
   continued, anything computed from a state) starts a new trajectory at it.
3. Backward of step p asks the trajectory for ψ_p. Autograd runs the steps of a chain in
   reverse, so the cursor is already there: the backward of step p + 1 left ψ_p behind. The
   adjoint method (:meth:`Plan.backward`) takes ψ_p and λ_p = dL/dψ_p (from the next step, from
   the readouts z_p and from any other use of ψ_p) back through the kernels in one sweep, giving
   ψ_{p-1}, λ_{p-1} and dL/dθ_p; the cursor moves to ψ_{p-1}. A backward out of order (a second
   backward over a retained graph, a branch) walks the cursor there with U† or U instead.

State memory is one (B, D) tensor per chain whatever T is; the angles cost (B, P) per step.
The backward pass costs two to three forward passes. Readouts inside the step matter: an
autograd readout on ψ_t would save ψ_t for every step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import torch
from torch.autograd.function import once_differentiable

if TYPE_CHECKING:
    from qrnn.backends.torch_sv import TorchStatevectorProgram

#: Attribute of a step's output state: the (trajectory, position) it belongs to.
_LINK = "_qrnn_trajectory"


@attrs.define(eq=False)
class Trajectory:
    """One chain of adjoint steps: the angles of every step and the state at one position."""

    program: TorchStatevectorProgram
    position: int
    """Which ψ_p ``state`` is: ψ_0 is the chain's input, ψ_p the output of its p-th step."""
    state: torch.Tensor
    """ψ at ``position``, (B, D), detached."""
    thetas: list[torch.Tensor] = attrs.Factory(list)
    """θ of step p at index p - 1, (B, P) each, detached."""

    def append(self, thetas: torch.Tensor, state: torch.Tensor) -> int:
        """Record a new last step and its output; returns its position."""
        self.thetas.append(thetas)
        self.position, self.state = len(self.thetas), state
        return self.position

    def seek(self, position: int) -> torch.Tensor:
        """ψ at ``position``, walked from the cursor with U(θ)† (back) or U(θ) (forward)."""
        plan = self.program.plan
        while self.position > position:
            self.state = plan.run(self.state, self.thetas[self.position - 1], adjoint=True)
            self.position -= 1
        while self.position < position:
            self.state = plan.run(self.state, self.thetas[self.position])
            self.position += 1
        return self.state


class AdjointStep(torch.autograd.Function):
    """(ψ_{t-1}, θ_t) -> (ψ_t, z_t or an empty (B, 0) tensor), saving no state for backward."""

    @staticmethod
    def forward(ctx, state, thetas, trajectory, position, with_readouts):
        program = trajectory.program
        new = program.plan.run(state, thetas)
        if with_readouts:
            readouts = program.expectations(new)
        else:
            readouts = new.new_empty((new.shape[0], 0), dtype=thetas.dtype)
            ctx.mark_non_differentiable(readouts)
        ctx.trajectory, ctx.position, ctx.with_readouts = trajectory, position, with_readouts
        ctx.set_materialize_grads(False)
        return new, readouts

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_state, grad_readouts):
        trajectory, position = ctx.trajectory, ctx.position
        program = trajectory.program
        state = trajectory.seek(position)  # ψ_p, (B, D)
        # λ_p: from later steps (and any other use of ψ_p), plus the readouts z_p = f(ψ_p).
        grad = torch.zeros_like(state) if grad_state is None else grad_state
        if ctx.with_readouts and grad_readouts is not None:
            grad = grad + program.readout_plan.backward(state, grad_readouts)
        previous, grad_previous, grad_thetas = program.plan.backward(
            state, grad, trajectory.thetas[position - 1], need_thetas=ctx.needs_input_grad[1]
        )
        trajectory.position, trajectory.state = position - 1, previous
        return grad_previous, grad_thetas, None, None, None


def adjoint_step(program: TorchStatevectorProgram, state: torch.Tensor, thetas: torch.Tensor,
                 with_readouts: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One step through :class:`AdjointStep`, extending the input state's trajectory if it is
    that trajectory's last output, else starting a new one at it.

    Returns:
        The new state (B, D) and the exact readouts (B, K) (an empty (B, 0) tensor without
        ``with_readouts``).
    """
    trajectory, position = getattr(state, _LINK, (None, -1))
    if (trajectory is None or trajectory.program is not program
            or position != len(trajectory.thetas)):
        trajectory, position = Trajectory(program, 0, state.detach()), 0
    new, readouts = AdjointStep.apply(state, thetas, trajectory, position + 1, with_readouts)
    setattr(new, _LINK, (trajectory, trajectory.append(thetas.detach(), new.detach())))
    return new, readouts
