"""The offline default image task: scikit-learn's bundled 8x8 handwritten digits.

1797 images of 64 pixels with values 0..16 (``sklearn.datasets.load_digits``, shipped inside
scikit-learn, so no download). There is no official split; a stratified split drawn from ``seed``
gives train/valid/test 1257/270/270 by default.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from qrnn.errors import QRNNError
from qrnn.tasks.base import check_int, seeded_generator
from qrnn.tasks.images import ImageSequenceTask, split_indices

N_DIGITS = 1797


class DigitsTask(ImageSequenceTask):
    """scikit-learn's 8x8 digits read as a pixel sequence (chunk=1: T=64) or rows (chunk=8: T=8).

    Args:
        chunk: pixels per step, a divisor of 64.
        permute: shuffle the pixels by one fixed permutation before chunking.
        permutation_seed: the seed of that permutation.
        n_valid: validation images.
        n_test: test images; the remaining images train.
        limit: if set, keep at most this many images per split.
        seed: fixes the stratified split.
    """

    name: ClassVar[str] = "digits"
    n_pixels: ClassVar[int] = 64
    pixel_max: ClassVar[float] = 16.0

    def __init__(
        self,
        *,
        chunk: int = 1,
        permute: bool = False,
        permutation_seed: int = 0,
        n_valid: int = 270,
        n_test: int = 270,
        limit: int | None = None,
        seed: int = 0,
    ) -> None:
        self.n_valid = check_int("n_valid", n_valid, minimum=1)
        self.n_test = check_int("n_test", n_test, minimum=1)
        if self.n_valid + self.n_test >= N_DIGITS:
            raise QRNNError(
                f"digits: n_valid + n_test must leave training images out of {N_DIGITS} "
                f"(got n_valid={n_valid}, n_test={n_test})"
            )
        super().__init__(
            chunk=chunk,
            permute=permute,
            permutation_seed=permutation_seed,
            limit=limit,
            seed=seed,
            n_valid=self.n_valid,
            n_test=self.n_test,
        )

    def load_raw(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        from sklearn.datasets import load_digits  # heavy import, only when the data is needed

        images, labels = load_digits(return_X_y=True)  # (1797, 64) values 0..16, (1797,)
        test, valid, train = split_indices(
            torch.as_tensor(labels), seeded_generator(self.seed, "split"), self.n_test,
            self.n_valid,
        )
        return {
            name: (images[idx.numpy()], labels[idx.numpy()])
            for name, idx in (("train", train), ("valid", valid), ("test", test))
        }

    def source(self) -> str:
        return "scikit-learn 8x8 digits (sklearn.datasets.load_digits)"
