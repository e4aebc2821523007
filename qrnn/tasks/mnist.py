"""Sequential and permuted MNIST and Fashion-MNIST, read from the standard IDX files.

The four files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each raw or ``.gz``) are looked for in
``data_dir``, or by default in ``$QRNN_DATA/<name>`` (``~/.cache/qrnn/<name>`` when QRNN_DATA is
unset) and, for Fashion-MNIST, in ``/usr/share/datasets/fashion-mnist`` where the Debian package
``dataset-fashion-mnist`` puts them. Nothing is downloaded unless ``download=True``. The test set
is the official one; the validation set is a stratified random subset of the official training
set.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from qrnn.errors import QRNNError
from qrnn.tasks.base import check_bool, check_data_dir, check_int, seeded_generator
from qrnn.tasks.idx import read_idx
from qrnn.tasks.images import ImageSequenceTask, split_indices

logger = logging.getLogger(__name__)

# role -> file name without the optional .gz
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
DOWNLOAD_TIMEOUT_S = 60


class MNISTTask(ImageSequenceTask):
    """MNIST digits read as a sequence of pixel chunks (chunk=1: T=784; chunk=28: T=28 rows).

    Args:
        chunk: pixels per step, a divisor of 784.
        permute: shuffle the pixels by one fixed permutation before chunking (permuted MNIST).
        permutation_seed: the seed of that permutation.
        n_valid: validation images, carved from the official training set.
        limit: if set, keep at most this many images per split, for quick runs.
        data_dir: directory holding the four IDX files; None searches the default places.
        download: fetch missing files from the usual mirror into the first default place (or
            ``data_dir``).
        seed: fixes the validation split and the ``limit`` subsets.

    Raises:
        QRNNError: the files are not found (the message says which files to put where and how to
            fetch them), or the download fails.
    """

    name: ClassVar[str] = "mnist"
    n_pixels: ClassVar[int] = 28 * 28
    pixel_max: ClassVar[float] = 255.0
    title: ClassVar[str] = "MNIST"
    mirrors: ClassVar[tuple[str, ...]] = (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    )
    # md5 of the published .gz files, checked after a download
    checksums: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }
    system_dirs: ClassVar[tuple[str, ...]] = ()
    debian_package: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        chunk: int = 1,
        permute: bool = False,
        permutation_seed: int = 0,
        n_valid: int = 5000,
        limit: int | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        download: bool = False,
        seed: int = 0,
    ) -> None:
        self.n_valid = check_int("n_valid", n_valid, minimum=1)
        download = check_bool("download", download)
        data_dir = check_data_dir(data_dir)
        self.data_dir, self.files = self._find_files(data_dir, download)
        super().__init__(
            chunk=chunk,
            permute=permute,
            permutation_seed=permutation_seed,
            limit=limit,
            seed=seed,
            n_valid=self.n_valid,
            data_dir=str(self.data_dir),
            download=download,
        )

    @classmethod
    def default_dirs(cls) -> list[Path]:
        """Where the files are looked for without ``data_dir``, in order."""
        root = os.environ.get("QRNN_DATA")
        user = Path(root) / cls.name if root else Path.home() / ".cache" / "qrnn" / cls.name
        return [user, *(Path(d) for d in cls.system_dirs)]

    def _find_files(self, data_dir: Path | None, download: bool) -> tuple[Path, dict[str, Path]]:
        dirs = [data_dir] if data_dir is not None else self.default_dirs()
        searched = []
        for directory in dirs:
            files, missing = locate_idx_files(directory)
            if not missing:
                return directory, files
            searched.append(f"{directory} (missing: {', '.join(missing)})")
        if not download:
            raise QRNNError(self._missing_message(dirs[0], searched))
        self._download(dirs[0])
        files, _ = locate_idx_files(dirs[0])
        return dirs[0], files

    def _missing_message(self, target: Path, searched: list[str]) -> str:
        names = ", ".join(IDX_FILES.values())
        message = (
            f"{self.name}: the {self.title} data set was not found. Put the four IDX files "
            f"{names} (each raw or .gz) in {target} (or choose another directory with "
            f"data_dir=..., or set QRNN_DATA=DIR to use DIR/{self.name}). Searched: "
            f"{'; '.join(searched)}. To fetch them, pass download=True (from {self.mirrors[0]})"
        )
        if self.debian_package:
            message += (
                f", or install the Debian package: apt-get install {self.debian_package} "
                f"(it puts them in {self.system_dirs[0]})"
            )
        return message + "."

    def _download(self, directory: Path) -> None:
        """Fetch each missing file from the first mirror that serves it with the right md5."""
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise QRNNError(
                f"{self.name}: cannot create the data directory {directory}: {exc}"
            ) from exc
        for stem in IDX_FILES.values():
            if locate_idx_file(directory, stem) is not None:
                continue
            filename = f"{stem}.gz"
            failures = []
            for mirror in self.mirrors:
                url = mirror + filename
                logger.info("downloading %s", url)
                try:
                    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                        data = response.read()
                except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts, bad URLs
                    failures.append(f"{url}: {exc}")
                    continue
                digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
                if digest != self.checksums[filename]:
                    failures.append(f"{url}: md5 {digest}, expected {self.checksums[filename]}")
                    continue
                partial = directory / f"{filename}.part"
                partial.write_bytes(data)
                partial.replace(directory / filename)  # atomic: no half-written file is found
                break
            else:
                raise QRNNError(
                    f"{self.name}: could not download {filename}: {'; '.join(failures)}. "
                    f"Put the files in {directory} by hand"
                    + (
                        f" or install the Debian package {self.debian_package}"
                        if self.debian_package
                        else ""
                    )
                )

    def load_raw(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        arrays = {role: read_idx(path) for role, path in self.files.items()}
        for part in ("train", "test"):
            self._check_arrays(part, arrays[f"{part}_images"], arrays[f"{part}_labels"])
        train_images, train_labels = arrays["train_images"], arrays["train_labels"]
        if self.n_valid >= len(train_labels):
            raise QRNNError(
                f"{self.name}: n_valid={self.n_valid} leaves no training images: the training "
                f"file holds {len(train_labels)}"
            )
        valid, train = split_indices(
            torch.as_tensor(train_labels), seeded_generator(self.seed, "split"), self.n_valid
        )
        return {
            "train": (train_images[train.numpy()], train_labels[train.numpy()]),
            "valid": (train_images[valid.numpy()], train_labels[valid.numpy()]),
            "test": (arrays["test_images"], arrays["test_labels"]),
        }

    def _check_arrays(self, part: str, images: np.ndarray, labels: np.ndarray) -> None:
        """Raise a QRNNError unless images are (N, 28, 28) uint8 and labels (N,) in 0..9."""
        where = f"{self.name} {part} files in {self.data_dir}"
        if images.dtype != np.uint8 or images.shape[1:] != (28, 28):
            raise QRNNError(
                f"{where}: expected uint8 images of shape (N, 28, 28), got {images.dtype} "
                f"{images.shape}"
            )
        if labels.ndim != 1 or len(labels) != len(images):
            raise QRNNError(
                f"{where}: expected {len(images)} labels of shape (N,), got shape {labels.shape}"
            )
        if len(labels) and (labels.min() < 0 or labels.max() > 9):
            raise QRNNError(f"{where}: labels must be 0..9, got {labels.min()}..{labels.max()}")

    def source(self) -> str:
        return f"{self.title} IDX files in {self.data_dir}"


class FashionMNISTTask(MNISTTask):
    """Fashion-MNIST (Zalando, 10 clothing classes), a drop-in replacement for MNIST."""

    name: ClassVar[str] = "fashion-mnist"
    title: ClassVar[str] = "Fashion-MNIST"
    mirrors: ClassVar[tuple[str, ...]] = (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    )
    checksums: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    system_dirs: ClassVar[tuple[str, ...]] = ("/usr/share/datasets/fashion-mnist",)
    debian_package: ClassVar[str | None] = "dataset-fashion-mnist"


def locate_idx_file(directory: Path, stem: str) -> Path | None:
    """``directory/stem`` or ``directory/stem.gz``, whichever exists first, else None."""
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def locate_idx_files(directory: Path) -> tuple[dict[str, Path], list[str]]:
    """The four MNIST-style files found in ``directory`` by role, and the names not found."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for role, stem in IDX_FILES.items():
        path = locate_idx_file(directory, stem)
        if path is None:
            missing.append(stem)
        else:
            found[role] = path
    return found, missing
