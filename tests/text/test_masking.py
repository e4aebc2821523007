"""Padding masks: a padded batch gives every sequence the outputs and final state it gets alone,
and padded steps change neither the quantum state nor the loss."""

from __future__ import annotations

import pytest
import torch

from qrnn.baselines import build_core
from qrnn.errors import InvalidInputError
from qrnn.model import ModelConfig, QRNNCore, build_model, detach_state, run_core
from qrnn.text import lengths_to_mask

SMALL = dict(n_qubits=3, n_layers=1, hidden=8, embed_dim=4)
LENGTHS = [5, 2, 3]


def _padded(lengths, width=4, steps=None, seed=0):
    """Inputs (B, T, width) with random values at the padded steps too, and their mask."""
    generator = torch.Generator().manual_seed(seed)
    steps = steps or max(lengths)
    inputs = torch.randn(len(lengths), steps, width, generator=generator)
    return inputs, lengths_to_mask(torch.tensor(lengths), steps)


@pytest.mark.parametrize("head_hidden", [False, True])
def test_qrnn_padded_batch_equals_single_sequences(head_hidden):
    torch.manual_seed(0)
    core = QRNNCore(4, ModelConfig(**SMALL, head_hidden=head_hidden))
    inputs, mask = _padded(LENGTHS)
    features, (quantum, readouts) = core(inputs, mask=mask)
    for row, n in enumerate(LENGTHS):
        alone, (alone_quantum, alone_readouts) = core(inputs[row : row + 1, :n])
        torch.testing.assert_close(features[row, :n], alone[0])
        torch.testing.assert_close(quantum[row], alone_quantum[0])
        torch.testing.assert_close(readouts[row], alone_readouts[0])
        # padded steps repeat the last real features
        torch.testing.assert_close(features[row, n:], alone[0, -1].expand(len(features[0]) - n, -1))


def test_padded_steps_leave_the_quantum_state_alone():
    torch.manual_seed(0)
    core = QRNNCore(4, ModelConfig(**SMALL))
    inputs, mask = _padded([3, 3])
    _, (start, start_readouts) = core(inputs[:, :3])
    wider = torch.cat([inputs[:, :3], torch.randn(2, 4, 4)], dim=1)  # four padded steps
    _, (end, end_readouts) = core(wider, mask=lengths_to_mask(torch.tensor([3, 3]), 7))
    torch.testing.assert_close(end, start)
    torch.testing.assert_close(end_readouts, start_readouts)


def test_a_step_every_sequence_pads_is_not_run():
    torch.manual_seed(0)
    core = QRNNCore(4, ModelConfig(**SMALL))
    calls = []
    core.controller.register_forward_hook(lambda *_: calls.append(1))
    inputs, mask = _padded([2, 1], steps=6)
    core(inputs, mask=mask)
    assert len(calls) == 2  # steps 3..6 are padding for both sequences


@pytest.mark.parametrize("pooling", ["last", "mean"])
@pytest.mark.parametrize("kind", ["qrnn", "lstm"])
def test_sequence_model_padding_changes_neither_logits_nor_loss(kind, pooling):
    torch.manual_seed(0)
    config = ModelConfig(**SMALL, model=kind, pooling=pooling)
    model = build_model(config, input_kind="tokens", n_inputs=9, n_outputs=2, target="sequence")
    ids = torch.randint(1, 8, (3, 6))  # real tokens 1..7
    mask = lengths_to_mask(torch.tensor(LENGTHS), 6)
    logits = model(ids, mask=mask)
    other_padding = torch.where(mask, ids, 8)  # token 8 only ever at padded steps
    torch.testing.assert_close(model(other_padding, mask=mask), logits)
    for row, n in enumerate(LENGTHS):
        torch.testing.assert_close(logits[row], model(ids[row : row + 1, :n])[0])
    labels = torch.tensor([0, 1, 1])
    torch.nn.functional.cross_entropy(model(other_padding, mask=mask), labels).backward()
    grad = model.embed.weight.grad
    assert grad[1:8].abs().sum() > 0
    assert grad[8].abs().sum() == 0  # no gradient reaches what only padded steps read


@pytest.mark.parametrize("kind", ["lstm", "gru", "scornn"])
def test_classical_cores_keep_their_state_at_padded_steps(kind):
    torch.manual_seed(0)
    core = build_core(kind, 4, 5)
    inputs, mask = _padded(LENGTHS)
    features, state = run_core(core, inputs, None, mask)
    batch_dim = 0 if kind == "scornn" else 1  # torch RNN states are (1, B, H)
    parts = state if isinstance(state, tuple) else (state,)  # the LSTM's (h, c)
    for row, n in enumerate(LENGTHS):
        alone, alone_state = core(inputs[row : row + 1, :n])
        torch.testing.assert_close(features[row, :n], alone[0])
        alone_parts = alone_state if isinstance(alone_state, tuple) else (alone_state,)
        for part, alone_part in zip(parts, alone_parts, strict=True):
            torch.testing.assert_close(part.select(batch_dim, row), alone_part.select(batch_dim, 0))


def test_mask_must_match_the_inputs():
    core = QRNNCore(4, ModelConfig(**SMALL))
    inputs, mask = _padded(LENGTHS)
    with pytest.raises(InvalidInputError, match=r"mask of shape \(B, T\) = \(3, 5\)"):
        core(inputs, mask=mask[:, :4])
    with pytest.raises(InvalidInputError, match="bool mask"):
        core(inputs, mask=mask.long())


def test_detach_state_cuts_the_graph_and_keeps_the_values():
    torch.manual_seed(0)
    core = QRNNCore(4, ModelConfig(**SMALL))
    _, state = core(torch.randn(2, 3, 4))
    assert state[0].requires_grad and state[1].requires_grad
    detached = detach_state(state)
    assert not detached[0].requires_grad and not detached[1].requires_grad
    torch.testing.assert_close(detached[0], state[0].detach())
    with pytest.raises(InvalidInputError, match="cannot detach"):
        detach_state(object())


def test_masked_gradients_agree_between_adjoint_and_autograd():
    """A padded step starts a new adjoint trajectory at the kept state: gradients stay exact."""
    grads = {}
    for gradient in ("adjoint", "autograd"):
        torch.manual_seed(0)
        config = ModelConfig(**SMALL, backend_options={"gradient": gradient})
        model = build_model(config, input_kind="tokens", n_inputs=9, n_outputs=2,
                            target="sequence")
        ids = torch.randint(1, 9, (3, 6), generator=torch.Generator().manual_seed(1))
        mask = lengths_to_mask(torch.tensor(LENGTHS), 6)
        model(ids, mask=mask).square().sum().backward()
        grads[gradient] = [p.grad.clone() for p in model.parameters()]
    for adjoint, autograd in zip(grads["adjoint"], grads["autograd"], strict=True):
        torch.testing.assert_close(adjoint, autograd, atol=1e-5, rtol=1e-4)
