"""The IDX reader and the MNIST-style tasks, on tiny IDX files written here (no network)."""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from qrnn.errors import QRNNError
from qrnn.tasks import FashionMNISTTask, MNISTTask, get_task
from qrnn.tasks.idx import read_idx
from qrnn.tasks.mnist import IDX_FILES

TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
              np.float64: 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array``, written from the format's definition."""
    header = struct.pack(">BBBB", 0, 0, TYPE_CODES[array.dtype.type], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool) -> Path:
    data = idx_bytes(array)
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_fake_mnist(directory: Path, *, n_train: int = 40, n_test: int = 20,
                     gz: bool = False) -> dict[str, np.ndarray]:
    """Four IDX files of random 28x28 images whose first pixel encodes the label."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for part, n in (("train", n_train), ("test", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        images[:, 0, 0] = labels * 20
        arrays[f"{part}_images"], arrays[f"{part}_labels"] = images, labels
    for role, array in arrays.items():
        write_idx(directory / IDX_FILES[role], array, gz=gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
def test_read_idx_round_trips(tmp_path, gz, dtype):
    offset = 0 if dtype == np.uint8 else -7  # negative values where the type has them
    array = (np.arange(24).reshape(2, 3, 4) * 3 + offset).astype(dtype)
    path = write_idx(tmp_path / "a-idx3", array, gz=gz)
    got = read_idx(path)
    assert got.dtype == array.dtype and got.dtype.isnative
    assert got.shape == (2, 3, 4) and np.array_equal(got, array)
    got[0, 0, 0] = 1  # writable


def test_read_idx_recognises_gzip_by_content(tmp_path):
    array = np.arange(6, dtype=np.uint8)
    path = tmp_path / "labels-idx1-ubyte"  # compressed, though the name says otherwise
    path.write_bytes(gzip.compress(idx_bytes(array)))
    assert np.array_equal(read_idx(path), array)


def test_read_idx_rejects_a_bad_magic_number(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x00\x01\x08\x01" + struct.pack(">I", 1) + b"\x05")
    with pytest.raises(QRNNError, match=r"not an IDX file: bad magic number 0x00010801"):
        read_idx(path)
    path.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x05")  # unknown type 07
    with pytest.raises(QRNNError, match="bad magic number 0x00000701"):
        read_idx(path)


def test_read_idx_rejects_truncated_and_overlong_files(tmp_path):
    data = idx_bytes(np.zeros((3, 4), dtype=np.int32))
    path = tmp_path / "t"
    path.write_bytes(data[:-5])
    with pytest.raises(QRNNError, match=r"truncated: shape \(3, 4\) of int32 needs 48 bytes of "
                                        r"data, the file has 43"):
        read_idx(path)
    path.write_bytes(data[:10])
    with pytest.raises(QRNNError, match="truncated: its header needs 12 bytes"):
        read_idx(path)
    path.write_bytes(data + b"\x00")
    with pytest.raises(QRNNError, match="longer than its header says"):
        read_idx(path)
    path.write_bytes(gzip.compress(data)[:-12])
    with pytest.raises(QRNNError, match="cannot read IDX file"):
        read_idx(path)
    with pytest.raises(QRNNError, match="cannot read IDX file"):
        read_idx(tmp_path / "absent")


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_task_reads_the_idx_files(tmp_path, gz):
    arrays = write_fake_mnist(tmp_path, gz=gz)
    task = get_task("mnist", data_dir=str(tmp_path), n_valid=10, chunk=28)
    splits = task.splits()
    assert splits.sizes() == (30, 10, 20)
    assert task.seq_len == 28 and task.n_inputs == 28 and task.n_outputs == 10
    train_x, train_y = splits.train.tensors
    assert train_x.shape == (30, 28, 28) and train_x.dtype == torch.float32
    # the first pixel still encodes the label: images and labels stayed paired
    for inputs, labels in (splits.train.tensors, splits.valid.tensors, splits.test.tensors):
        assert torch.allclose(inputs[:, 0, 0] * 255, labels.float() * 20)
    test_x, test_y = splits.test.tensors  # the official test set, in file order
    assert torch.equal(test_y, torch.as_tensor(arrays["test_labels"], dtype=torch.long))
    assert torch.allclose(test_x * 255, torch.as_tensor(arrays["test_images"]).float())
    # valid is carved from train: together they are the training file, no image twice
    carved = torch.cat([train_x, splits.valid.tensors[0]]).reshape(40, -1) * 255
    assert len(torch.unique(carved.round(), dim=0)) == 40
    assert torch.bincount(splits.valid.tensors[1], minlength=10).tolist() == [1] * 10
    assert f"MNIST IDX files in {tmp_path}" in task.describe()
    assert task.options()["data_dir"] == str(tmp_path)


def test_mnist_chunk_permute_and_limit(tmp_path):
    write_fake_mnist(tmp_path)
    plain = MNISTTask(data_dir=tmp_path, n_valid=10)
    assert plain.seq_len == 784 and plain.n_inputs == 1
    permuted = MNISTTask(data_dir=tmp_path, n_valid=10, permute=True, permutation_seed=3)
    perm = permuted.permutation()
    assert torch.equal(permuted.splits().test.tensors[0][..., 0],
                       plain.splits().test.tensors[0][..., 0][:, perm])
    limited = MNISTTask(data_dir=tmp_path, n_valid=10, limit=10)
    assert limited.splits().sizes() == (10, 10, 10)
    with pytest.raises(QRNNError, match=r"must divide the 784 pixels .* \(got 5\)"):
        MNISTTask(data_dir=tmp_path, chunk=5)
    with pytest.raises(QRNNError, match="n_valid=40 leaves no training images"):
        MNISTTask(data_dir=tmp_path, n_valid=40).splits()


def test_mnist_refuses_images_of_the_wrong_shape(tmp_path):
    write_fake_mnist(tmp_path)
    write_idx(tmp_path / IDX_FILES["train_images"], np.zeros((40, 8, 8), np.uint8), gz=False)
    with pytest.raises(QRNNError, match=r"expected uint8 images of shape \(N, 28, 28\)"):
        MNISTTask(data_dir=tmp_path, n_valid=10).splits()


def test_missing_data_names_the_files_the_place_and_the_remedies(tmp_path):
    with pytest.raises(QRNNError) as info:
        get_task("mnist", data_dir=str(tmp_path / "nowhere"))
    message = str(info.value)
    for name in IDX_FILES.values():
        assert name in message
    assert str(tmp_path / "nowhere") in message and "download=True" in message

    write_idx(tmp_path / IDX_FILES["train_images"], np.zeros((1, 28, 28), np.uint8), gz=True)
    with pytest.raises(QRNNError, match=r"missing: train-labels-idx1-ubyte, t10k-images"):
        MNISTTask(data_dir=tmp_path)


def test_fashion_mnist_message_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setattr(FashionMNISTTask, "system_dirs", (str(tmp_path / "system"),))
    monkeypatch.setenv("QRNN_DATA", str(tmp_path))
    with pytest.raises(QRNNError, match=r"apt-get install dataset-fashion-mnist") as info:
        FashionMNISTTask()
    assert str(tmp_path / "fashion-mnist") in str(info.value)
    assert str(tmp_path / "system") in str(info.value)


def test_default_directories(tmp_path, monkeypatch):
    monkeypatch.setenv("QRNN_DATA", str(tmp_path))
    assert MNISTTask.default_dirs() == [tmp_path / "mnist"]
    assert FashionMNISTTask.default_dirs() == [tmp_path / "fashion-mnist",
                                               Path("/usr/share/datasets/fashion-mnist")]
    write_fake_mnist(tmp_path / "mnist")
    assert MNISTTask(n_valid=10).data_dir == tmp_path / "mnist"
    monkeypatch.delenv("QRNN_DATA")
    assert MNISTTask.default_dirs() == [Path.home() / ".cache" / "qrnn" / "mnist"]


def test_download_from_a_local_mirror(tmp_path, monkeypatch):
    """download=True fetches the .gz files, checks their md5 and then reads them (file://)."""
    mirror = tmp_path / "mirror"
    arrays = write_fake_mnist(mirror, gz=True)
    checksums = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in mirror.iterdir()}
    monkeypatch.setattr(MNISTTask, "mirrors", (mirror.as_uri() + "/",))
    monkeypatch.setattr(MNISTTask, "checksums", checksums)
    target = tmp_path / "data"
    task = MNISTTask(data_dir=target, download=True, n_valid=10)
    assert sorted(os.listdir(target)) == sorted(f"{n}.gz" for n in IDX_FILES.values())
    assert torch.equal(task.splits().test.tensors[1],
                       torch.as_tensor(arrays["test_labels"], dtype=torch.long))


def test_download_failures_are_explained(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    write_fake_mnist(mirror, gz=True)
    monkeypatch.setattr(MNISTTask, "mirrors", (mirror.as_uri() + "/",))
    with pytest.raises(QRNNError, match=r"could not download train-images-idx3-ubyte.gz: .*md5"):
        MNISTTask(data_dir=tmp_path / "data", download=True)  # real checksums, fake files
    assert not list((tmp_path / "data").iterdir())  # nothing half-written left behind
    monkeypatch.setattr(MNISTTask, "mirrors", ((tmp_path / "gone").as_uri() + "/",))
    with pytest.raises(QRNNError, match="could not download .* by hand"):
        MNISTTask(data_dir=tmp_path / "data", download=True)


FASHION_DIR = Path(FashionMNISTTask.system_dirs[0])


@pytest.mark.skipif(not FASHION_DIR.is_dir(),
                    reason=f"Debian package dataset-fashion-mnist not installed ({FASHION_DIR})")
def test_fashion_mnist_from_the_debian_package():
    task = FashionMNISTTask(data_dir=FASHION_DIR, limit=200, chunk=28)
    splits = task.splits()
    assert splits.sizes() == (200, 200, 200)
    inputs, labels = splits.test.tensors
    assert inputs.shape == (200, 28, 28) and 0.0 <= inputs.min() and inputs.max() <= 1.0
    assert torch.bincount(labels, minlength=10).tolist() == [20] * 10
    assert inputs.mean() > 0.1  # real garments, not blank images
