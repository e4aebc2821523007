"""The task contract, checked on every offline task: registry, shapes, options, determinism."""

from __future__ import annotations

import json
import math

import pytest
import torch

from qrnn.errors import QRNNError
from qrnn.tasks import TASKS, Splits, Task, get_task
from qrnn.tasks.base import cross_entropy, stratified_order

# tiny instances of the tasks that need no files on disk
TINY = {
    "copying": {"delay": 3, "n_train": 12, "n_valid": 5, "n_test": 4},
    "adding": {"seq_len": 7, "n_train": 12, "n_valid": 5, "n_test": 4},
    "digits": {"chunk": 8, "limit": 12},
}


def test_registry_lists_every_task():
    sequence_tasks = {"copying", "adding", "digits", "mnist", "fashion-mnist"}
    text_tasks = {"sentiment", "lm", "translation"}
    assert set(TASKS) == sequence_tasks | text_tasks
    for name, cls in TASKS.items():
        assert issubclass(cls, Task) and cls.name == name


def test_unknown_task_lists_the_names():
    with pytest.raises(QRNNError, match="unknown task 'nope'") as info:
        get_task("nope")
    for name in TASKS:
        assert name in str(info.value)


def test_unknown_option_lists_the_accepted_ones():
    with pytest.raises(QRNNError, match=r"unknown option\(s\) lenght; it accepts: delay, n_train"):
        get_task("copying", lenght=3)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("copying", {"delay": 0}, r"'delay' must be >= 1 \(got 0\)"),
        ("copying", {"n_train": 2.5}, r"'n_train' must be an int \(got 2.5\)"),
        ("adding", {"seq_len": 1}, r"'seq_len' must be >= 2 \(got 1\)"),
        ("adding", {"seed": -1}, r"'seed' must be >= 0 \(got -1\)"),
        ("digits", {"chunk": 3}, r"must divide the 64 pixels .* \[1, 2, 4, 8, 16, 32, 64\]"),
        ("digits", {"permute": 1}, r"'permute' must be True or False \(got 1\)"),
        ("digits", {"limit": 0}, r"'limit' must be >= 1 \(got 0\)"),
        ("digits", {"n_valid": 900, "n_test": 900}, "must leave training images out of 1797"),
    ],
)
def test_bad_options_are_explained(name, options, message):
    with pytest.raises(QRNNError, match=message):
        get_task(name, **options)


@pytest.mark.parametrize("name", sorted(TINY))
def test_splits_shapes_and_dtypes(name):
    task = get_task(name, **TINY[name])
    splits = task.splits()
    assert isinstance(splits, Splits)
    assert splits is task.splits()  # built once, cached
    for dataset in (splits.train, splits.valid, splits.test):
        inputs, targets = dataset.tensors
        n = len(dataset)
        if task.input_kind == "tokens":
            assert inputs.dtype == torch.long and inputs.shape == (n, task.seq_len)
            assert 0 <= inputs.min() and inputs.max() < task.n_inputs
        else:
            assert inputs.dtype == torch.float32
            assert inputs.shape == (n, task.seq_len, task.n_inputs)
        expected_targets = (n, task.seq_len) if task.target == "step" else (n,)
        assert targets.shape == expected_targets
        if task.n_outputs > 1:
            assert targets.dtype == torch.long
            assert 0 <= targets.min() and targets.max() < task.n_outputs
        else:
            assert targets.dtype == torch.float32
    assert str(len(splits.train)) in task.describe()


@pytest.mark.parametrize("name", sorted(TINY))
def test_metrics_include_loss_and_the_primary_metric(name):
    task = get_task(name, **TINY[name])
    inputs, targets = task.splits().valid.tensors
    shape = (len(targets), task.seq_len) if task.target == "step" else (len(targets),)
    logits = torch.randn(*shape, task.n_outputs, requires_grad=True)
    loss = task.loss(logits, targets)
    assert loss.dim() == 0
    loss.backward()  # the loss is differentiable w.r.t. the logits
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    metrics = task.metrics(logits, targets)
    assert {"loss", task.primary_metric} <= set(metrics)
    assert all(isinstance(v, float) for v in metrics.values())
    assert metrics["loss"] == pytest.approx(loss.item())


@pytest.mark.parametrize("name", sorted(TINY))
def test_options_round_trip_rebuilds_the_same_data(name):
    task = get_task(name, **TINY[name])
    options = json.loads(json.dumps(task.options()))
    twin = get_task(name, **options)
    for a, b in zip(task.splits().sizes(), twin.splits().sizes(), strict=True):
        assert a == b
    for split in ("train", "valid", "test"):
        for x, y in zip(getattr(task.splits(), split).tensors,
                        getattr(twin.splits(), split).tensors, strict=True):
            assert torch.equal(x, y)


@pytest.mark.parametrize("name", sorted(TINY))
def test_seed_changes_the_data_or_the_split(name):
    first = get_task(name, **TINY[name], seed=0).splits().train.tensors[0]
    second = get_task(name, **TINY[name], seed=1).splits().train.tensors[0]
    assert not torch.equal(first, second)


@pytest.mark.parametrize("name", ["copying", "adding"])
def test_generated_splits_differ_and_valid_ignores_n_train(name):
    small = get_task(name, **TINY[name]).splits()
    large = get_task(name, **{**TINY[name], "n_train": 30}).splits()
    assert not torch.equal(small.valid.tensors[0][:4], small.test.tensors[0][:4])
    assert not torch.equal(small.train.tensors[0][:5], small.valid.tensors[0][:5])
    assert torch.equal(small.valid.tensors[0], large.valid.tensors[0])
    assert torch.equal(small.test.tensors[1], large.test.tensors[1])


def test_logits_of_the_wrong_shape_are_refused():
    with pytest.raises(QRNNError, match=r"logits of shape \(4, 10\) do not fit targets of shape "
                                        r"\(4, 30\)"):
        get_task("copying").loss(torch.zeros(4, 10), torch.zeros(4, 30, dtype=torch.long))
    with pytest.raises(QRNNError, match=r"expected predictions of shape \(4, 1\)"):
        get_task("adding").loss(torch.zeros(4, 2), torch.zeros(4))


def test_cross_entropy_of_uniform_logits_is_log_classes():
    targets = torch.randint(0, 7, (5, 3))
    assert cross_entropy(torch.zeros(5, 3, 7), targets).item() == pytest.approx(math.log(7))


def test_stratified_order_is_a_balanced_permutation():
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    order = stratified_order(labels, torch.Generator().manual_seed(3))
    assert sorted(order.tolist()) == list(range(100))
    for m in (10, 20, 50):
        counts = torch.bincount(labels[order[:m]], minlength=3)
        expected = torch.tensor([0.6, 0.3, 0.1]) * m
        assert (counts - expected).abs().max() <= 1
    again = stratified_order(labels, torch.Generator().manual_seed(3))
    other = stratified_order(labels, torch.Generator().manual_seed(4))
    assert torch.equal(order, again) and not torch.equal(order, other)
