"""Image tasks read as sequences: the offline digits set, chunking, the fixed pixel permutation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from qrnn.tasks import DigitsTask
from qrnn.tasks.images import pixel_permutation, split_indices


@pytest.fixture(scope="module")
def digits() -> DigitsTask:
    return DigitsTask()


def test_digits_loads_offline_with_all_1797_images(digits):
    splits = digits.splits()
    assert splits.sizes() == (1257, 270, 270)
    assert sum(splits.sizes()) == 1797
    inputs = torch.cat([d.tensors[0] for d in (splits.train, splits.valid, splits.test)])
    assert inputs.shape == (1797, 64, 1) and digits.seq_len == 64 and digits.n_inputs == 1
    assert inputs.min() == 0.0 and inputs.max() == 1.0  # raw 0..16 scaled by 1/16
    assert len(torch.unique(inputs.reshape(1797, 64), dim=0)) > 1700  # distinct images, no repeats
    assert "load_digits" in digits.describe() and "1257/270/270" in digits.describe()


def test_digits_split_is_stratified(digits):
    splits = digits.splits()
    all_labels = torch.cat([d.tensors[1] for d in (splits.train, splits.valid, splits.test)])
    share = torch.bincount(all_labels, minlength=10) / 1797
    for dataset in (splits.valid, splits.test):
        counts = torch.bincount(dataset.tensors[1], minlength=10)
        assert (counts - share * len(dataset)).abs().max() <= 1


def test_rows_are_the_pixel_sequence_regrouped(digits):
    rows = DigitsTask(chunk=8)
    assert rows.seq_len == 8 and rows.n_inputs == 8
    pixels = digits.splits().test.tensors[0]  # (N, 64, 1)
    assert torch.equal(rows.splits().test.tensors[0], pixels.reshape(-1, 8, 8))
    assert torch.equal(rows.splits().test.tensors[1], digits.splits().test.tensors[1])


def test_pixel_permutation_is_fixed_by_its_seed_and_real():
    first = pixel_permutation(64, seed=5)
    assert sorted(first.tolist()) == list(range(64))
    assert torch.equal(first, pixel_permutation(64, seed=5))
    assert not torch.equal(first, pixel_permutation(64, seed=6))
    assert not torch.equal(first, torch.arange(64))


def test_permute_applies_one_permutation_before_chunking(digits):
    permuted = DigitsTask(permute=True, permutation_seed=7, chunk=4)
    permutation = permuted.permutation()
    assert torch.equal(permutation, pixel_permutation(64, 7))
    plain = digits.splits().train.tensors[0][..., 0]  # (N, 64)
    got = permuted.splits().train.tensors[0]  # (N, 16, 4)
    assert torch.equal(got, plain[:, permutation].reshape(-1, 16, 4))
    # the split does not depend on the permutation: same labels in the same order
    assert torch.equal(permuted.splits().train.tensors[1], digits.splits().train.tensors[1])
    assert DigitsTask().permutation() is None
    other = DigitsTask(permute=True, permutation_seed=8).splits().train.tensors[0]
    assert not torch.equal(other[..., 0], got.reshape(-1, 64))


def test_limit_keeps_a_balanced_subset():
    limited = DigitsTask(limit=50, chunk=64)
    assert limited.splits().sizes() == (50, 50, 50)
    counts = torch.bincount(limited.splits().train.tensors[1], minlength=10)
    assert counts.min() >= 4 and counts.max() <= 6


def test_classification_metrics_for_perfect_and_uniform_predictors(digits):
    _, labels = digits.splits().valid.tensors
    perfect = digits.metrics(50.0 * F.one_hot(labels, 10).float(), labels)
    assert perfect["accuracy"] == 1.0 and perfect["loss"] < 1e-6
    uniform = digits.metrics(torch.zeros(len(labels), 10), labels)
    assert uniform["loss"] == pytest.approx(math.log(10))
    wrong = digits.metrics(50.0 * F.one_hot((labels + 1) % 10, 10).float(), labels)
    assert wrong["accuracy"] == 0.0


def test_split_indices_partition_the_samples():
    labels = torch.arange(40) % 4
    a, b, rest = split_indices(labels, torch.Generator().manual_seed(0), 8, 12)
    assert (len(a), len(b), len(rest)) == (8, 12, 20)
    assert sorted(torch.cat([a, b, rest]).tolist()) == list(range(40))
    assert torch.equal(a, a.sort().values)
