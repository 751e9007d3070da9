"""Digit image loaders: IDX round trips, clear errors, the fixed stratified split."""

from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch

from synesthesia.data.images import (
    MNIST5K_SPLIT_SEED,
    load_idx_folder,
    load_image_splits,
    mnist5k_splits,
    stratified_split,
)


def _idx_bytes(array: np.ndarray) -> bytes:
    # IDX format (LeCun et al., MNIST page): 0, 0, dtype 0x08, ndim, big-endian dims, data
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_set(folder, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool) -> None:
    for name, arr in (
        (f"{prefix}-images-idx3-ubyte", images),
        (f"{prefix}-labels-idx1-ubyte", labels),
    ):
        data = _idx_bytes(arr)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7, dtype=np.uint8)
    _write_set(tmp_path, "train", images, labels, gz)
    data = load_idx_folder(tmp_path, "train")
    assert data.images.shape == (7, 1, 28, 28) and data.images.dtype == torch.float32
    assert data.labels.dtype == torch.int64
    np.testing.assert_allclose(data.images[:, 0].numpy(), images / 255.0 * 2 - 1, atol=1e-6)
    np.testing.assert_array_equal(data.labels.numpy(), labels)
    assert data.images.min() >= -1 and data.images.max() <= 1


def test_idx_test_split_and_splits_loader(tmp_path):
    rng = np.random.default_rng(1)
    for prefix, n in (("train", 12), ("t10k", 5)):
        imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        _write_set(tmp_path, prefix, imgs, np.arange(n, dtype=np.uint8) % 10, gz=False)
    train, test = load_image_splits(tmp_path)
    assert len(train) == 12 and len(test) == 5


def test_truncated_idx_names_the_path(tmp_path):
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    _write_set(tmp_path, "train", images, np.zeros(4, dtype=np.uint8), gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match=str(path)):
        load_idx_folder(tmp_path)


def test_truncated_gzip_and_bad_magic_name_the_path(tmp_path):
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    _write_set(tmp_path, "train", images, np.zeros(4, dtype=np.uint8), gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        load_idx_folder(tmp_path)
    path.write_bytes(gzip.compress(b"\x01\x02\x03\x04" + bytes(100)))
    with pytest.raises(ValueError, match="magic"):
        load_idx_folder(tmp_path)


def test_label_count_mismatch_and_missing_files(tmp_path):
    _write_set(tmp_path, "train", np.zeros((4, 28, 28)), np.zeros(3), gz=False)
    with pytest.raises(ValueError, match="3 labels for 4 images"):
        load_idx_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        load_idx_folder(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_idx_folder(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="nope"):
        load_image_splits(tmp_path / "nope")


def test_stratified_split_is_stratified_and_disjoint():
    labels = torch.arange(10).repeat_interleave(20)
    train, val = stratified_split(labels, 5, seed=3)
    assert len(set(train) & set(val)) == 0 and len(train) + len(val) == 200
    np.testing.assert_array_equal(np.bincount(labels[val].numpy()), [5] * 10)
    again = stratified_split(labels, 5, seed=3)
    np.testing.assert_array_equal(val, again[1])
    with pytest.raises(ValueError, match="cannot hold out"):
        stratified_split(labels, 20, seed=3)


def test_mnist5k_split_is_fixed():
    train, val = mnist5k_splits()
    assert len(train) == 4000 and len(val) == 1000
    assert train.images.shape[1:] == (1, 28, 28)
    np.testing.assert_array_equal(np.bincount(val.labels.numpy()), [100] * 10)
    np.testing.assert_array_equal(np.bincount(train.labels.numpy()), [400] * 10)
    # The documented split: a hash of the validation indices recorded when it was fixed.
    from synesthesia.data.images import load_mnist5k

    _, val_idx = stratified_split(load_mnist5k().labels, 100, MNIST5K_SPLIT_SEED)
    digest = hashlib.sha1(val_idx.astype(np.int64).tobytes()).hexdigest()
    assert digest == "3b6d963a8a5441c29fd2c4feaa4448df4cc5ae09"


def test_digits8x8_split():
    train, val = load_image_splits("digits8x8")
    assert val.images.shape[1:] == (1, 8, 8) and len(val) == 300
    assert len(train) + len(val) == 1797
    assert float(train.images.min()) == -1.0 and float(train.images.max()) == 1.0
