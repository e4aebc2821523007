"""Image classification as sequence learning: the shared part of ``digits``, ``mnist``, ...

An image of P pixels is read in raster order, ``chunk`` pixels per step (chunk=1: T=P, F=1, the
sequential-MNIST setting; chunk=width: one row per step). With ``permute`` the pixels are first
shuffled by one fixed permutation drawn from ``permutation_seed`` (the permuted-MNIST setting),
the same for every image and every split.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import TensorDataset

from qrnn.errors import QRNNError
from qrnn.tasks.base import (
    Splits,
    Task,
    accuracy,
    check_bool,
    check_int,
    check_optional_int,
    cross_entropy,
    seeded_generator,
    sizes_text,
    stratified_order,
)


def pixel_permutation(n_pixels: int, seed: int) -> torch.Tensor:
    """The fixed pixel permutation of ``seed``: a (P,) LongTensor, a permutation of range(P)."""
    return torch.randperm(n_pixels, generator=torch.Generator().manual_seed(seed))


def split_indices(
    labels: torch.Tensor, generator: torch.Generator, *counts: int
) -> list[torch.Tensor]:
    """Cut a stratified random split: ``counts[0]`` samples, ``counts[1]`` samples, ..., the rest.

    Args:
        labels: (N,) class labels.
        generator: the source of the shuffle.
        *counts: sizes of the leading parts; they must leave at least one sample over.

    Returns:
        len(counts) + 1 sorted (n_i,) LongTensors of indices that partition range(N).
    """
    order = stratified_order(labels, generator)
    bounds = np.cumsum([0, *counts]).tolist()
    parts = [order[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return [part.sort().values for part in (*parts, order[bounds[-1]:])]


class ImageSequenceTask(Task):
    """Classify 10-class images read as sequences of pixel chunks.

    Subclasses set ``n_pixels`` and ``pixel_max`` (the raw value of a white pixel, scaled to 1),
    and implement :meth:`load_raw` and :meth:`source`.

    Args:
        chunk: pixels per step F, a divisor of ``n_pixels``; T = n_pixels / chunk.
        permute: shuffle the pixels by one fixed permutation before chunking.
        permutation_seed: the seed of that permutation.
        limit: if set, keep at most this many samples per split (a stratified random subset), for
            quick runs.
        seed: fixes the train/valid(/test) split and the ``limit`` subsets.
        **options: the subclass's own resolved options.
    """

    target: ClassVar[str] = "sequence"
    input_kind: ClassVar[str] = "real"
    primary_metric: ClassVar[str] = "accuracy"
    higher_is_better: ClassVar[bool] = True
    n_pixels: ClassVar[int]
    pixel_max: ClassVar[float]

    def __init__(
        self,
        *,
        chunk: int,
        permute: bool,
        permutation_seed: int,
        limit: int | None,
        seed: int = 0,
        **options: Any,
    ) -> None:
        self.chunk = check_int("chunk", chunk, minimum=1)
        if self.n_pixels % self.chunk:
            divisors = [d for d in range(1, self.n_pixels + 1) if self.n_pixels % d == 0]
            raise QRNNError(
                f"option 'chunk' must divide the {self.n_pixels} pixels of an image, one of "
                f"{divisors} (got {chunk})"
            )
        self.permute = check_bool("permute", permute)
        self.permutation_seed = check_int("permutation_seed", permutation_seed, minimum=0)
        self.limit = check_optional_int("limit", limit, minimum=1)
        super().__init__(
            seed=seed,
            chunk=self.chunk,
            permute=self.permute,
            permutation_seed=self.permutation_seed,
            limit=self.limit,
            **options,
        )
        self.n_inputs = self.chunk
        self.n_outputs = 10
        self.seq_len = self.n_pixels // self.chunk

    def permutation(self) -> torch.Tensor | None:
        """The (P,) pixel permutation in use, or None without ``permute``."""
        return pixel_permutation(self.n_pixels, self.permutation_seed) if self.permute else None

    @abc.abstractmethod
    def load_raw(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per split name (train, valid, test): images (N, ...) of ``n_pixels`` raw values in
        [0, pixel_max] each, and their (N,) integer labels 0..9."""

    @abc.abstractmethod
    def source(self) -> str:
        """Where the images come from, for :meth:`describe`."""

    def build_splits(self) -> Splits:
        permutation = self.permutation()
        datasets = {}
        for split, (images, labels) in self.load_raw().items():
            labels = torch.as_tensor(labels, dtype=torch.long)  # (N,)
            if self.limit is not None and len(labels) > self.limit:
                keep = split_indices(labels, seeded_generator(self.seed, f"limit/{split}"),
                                     self.limit)[0]
                images, labels = images[keep.numpy()], labels[keep]
            n = len(labels)
            pixels = torch.as_tensor(images.reshape(n, self.n_pixels), dtype=torch.float32)
            pixels = pixels / self.pixel_max  # (N, P) in [0, 1]
            if permutation is not None:
                pixels = pixels[:, permutation]
            datasets[split] = TensorDataset(pixels.reshape(n, self.seq_len, self.chunk), labels)
        return Splits(**datasets)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of logits (B, 10) against labels (B,)."""
        return cross_entropy(logits, targets)

    def metrics(self, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """``loss`` (cross-entropy) and ``accuracy``."""
        with torch.no_grad():
            return {
                "loss": self.loss(logits, targets).item(),
                "accuracy": accuracy(logits, targets),
            }

    def describe(self) -> str:
        order = (
            f"permuted (permutation_seed {self.permutation_seed})" if self.permute
            else "in raster order"
        )
        limit = f", limit {self.limit}" if self.limit is not None else ""
        return (
            f"{self.source()}: {self.n_pixels} pixels {order}, {self.chunk} per step "
            f"(T={self.seq_len}, F={self.chunk}), split seed {self.seed}{limit}, "
            f"{sizes_text(*self.splits().sizes())}"
        )
