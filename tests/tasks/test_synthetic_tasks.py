"""The copying memory and adding tasks: the data is what the task says, and the baselines hold."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from qrnn.tasks import AddingTask, CopyingTask


@pytest.mark.parametrize("delay", [1, 5])
def test_copying_sequences_follow_the_definition(delay):
    task = CopyingTask(delay=delay, n_train=50, n_valid=3, n_test=3)
    inputs, targets = task.splits().train.tensors
    t = delay + 20
    assert task.seq_len == t and inputs.shape == targets.shape == (50, t)
    symbols = inputs[:, :10]
    assert ((symbols >= 1) & (symbols <= 8)).all()
    marker_at = 10 + delay - 1
    assert (inputs[:, marker_at] == 9).all()
    rest = torch.cat([inputs[:, 10:marker_at], inputs[:, marker_at + 1:]], dim=1)
    assert (rest == 0).all() and rest.shape[1] == delay - 1 + 10
    # the target is blank for delay + 10 steps, then the inputs' first 10 symbols
    assert (targets[:, : delay + 10] == 0).all()
    assert torch.equal(targets[:, -10:], symbols)
    assert len(torch.unique(symbols)) == 8  # every data symbol occurs


def test_copying_memoryless_baseline_value():
    for delay in (10, 100):
        reference = CopyingTask(delay=delay).reference()
        assert reference["memoryless_loss"] == pytest.approx(10 * math.log(8) / (delay + 20))


def _one_hot_logits(targets: torch.Tensor, n_classes: int) -> torch.Tensor:
    return 50.0 * F.one_hot(targets, n_classes).float()


def test_copying_perfect_uniform_and_memoryless_predictors():
    task = CopyingTask(delay=6, n_train=4, n_valid=40, n_test=4)
    _, targets = task.splits().valid.tensors  # (B, T)
    perfect = task.metrics(_one_hot_logits(targets, 10), targets)
    assert perfect["accuracy"] == 1.0 and perfect["loss"] < 1e-6

    uniform = task.metrics(torch.zeros(*targets.shape, 10), targets)
    assert uniform["loss"] == pytest.approx(math.log(10))

    # sure of the blanks, uniform over the 8 data symbols at the 10 recall steps
    memoryless = _one_hot_logits(torch.zeros_like(targets), 10)
    memoryless[:, -10:] = torch.tensor([-50.0] + [0.0] * 8 + [-50.0])
    scores = task.metrics(memoryless, targets)
    assert scores["loss"] == pytest.approx(task.reference()["memoryless_loss"], rel=1e-5)


def test_copying_accuracy_counts_only_the_recalled_symbols():
    task = CopyingTask(delay=2, n_train=4, n_valid=20, n_test=4)
    _, targets = task.splits().valid.tensors
    logits = _one_hot_logits(targets, 10)
    logits[:, :-10] = 0.0  # blank steps wrong or undecided: no effect on accuracy
    logits[:, -5:] = _one_hot_logits((targets[:, -5:] % 8) + 1, 10)  # half of the symbols wrong
    assert task.metrics(logits, targets)["accuracy"] == pytest.approx(0.5)


def test_adding_sequences_follow_the_definition():
    task = AddingTask(seq_len=9, n_train=200, n_valid=3, n_test=3)
    inputs, targets = task.splits().train.tensors
    values, markers = inputs[..., 0], inputs[..., 1]
    assert ((values >= 0) & (values <= 1)).all()
    assert set(markers.unique().tolist()) == {0.0, 1.0}
    assert (markers[:, :4].sum(1) == 1).all() and (markers[:, 4:].sum(1) == 1).all()
    assert torch.allclose(targets, (values * markers).sum(1))
    assert task.n_inputs == 2 and task.n_outputs == 1


def test_adding_baseline_is_the_mse_of_predicting_one():
    task = AddingTask(seq_len=4, n_train=4, n_valid=20000, n_test=4)
    _, targets = task.splits().valid.tensors
    baseline = task.reference()["baseline_mse"]
    assert baseline == pytest.approx(1 / 6)
    always_one = task.metrics(torch.ones(len(targets), 1), targets)["loss"]
    assert always_one == pytest.approx(baseline, abs=0.01)  # sampling error about 0.002
    assert task.metrics(targets[:, None].clone(), targets)["loss"] == 0.0
