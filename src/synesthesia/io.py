"""Small, dependency-light helpers for saving and loading: safetensors weights + JSON configs.

Every writer here is atomic: it writes to a temporary sibling and renames it into place, so a
crash never leaves a half-written file (or folder) and never destroys the previous one. Every
reader gives one clear error naming the file that is missing, truncated or corrupted.

- :func:`save_pretrained` / :func:`load_pretrained`: a folder holding ``model.safetensors``
  (the weights) and ``config.json`` (the configuration as a JSON object).
- :func:`atomic_write_bytes` / :func:`atomic_write_json`: one file, replaced atomically.
- :func:`atomic_folder`: a context manager yielding a temporary folder that is renamed into
  place (replacing the old folder) when the block finishes without an exception.
- :func:`read_json` / :func:`read_safetensors`: readers with clear errors.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from synesthesia.errors import InputError, MissingInputError

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "atomic_folder",
    "atomic_write_bytes",
    "atomic_write_json",
    "load_pretrained",
    "read_json",
    "read_safetensors",
    "recover_folder",
    "save_pretrained",
    "tensors_to_bytes",
    "user_cache_dir",
]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()  # mkstemp/mkdtemp create private files; give them the usual permissions


def _fsync_dir(path: Path) -> None:
    """Flush a directory entry to disk (best effort: not every platform allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary sibling file, fsync, rename).

    The parent folder is created if needed. Returns the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically; ValueError if it is not JSON-serialisable."""
    try:
        text = json.dumps(obj, indent=indent, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot write as JSON ({exc})") from exc
    return atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def _stale_siblings(path: Path, kind: str) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.{kind}-*"))


def recover_folder(path: str | os.PathLike) -> Path | None:
    """Undo a folder swap that a crash interrupted; returns the folder if it exists afterwards.

    :func:`atomic_folder` renames the old folder to a hidden ``.NAME.old-*`` sibling just
    before renaming the new one into place. If a crash happened between the two renames,
    ``path`` is missing and the old folder is renamed back here. Stale temporary folders
    (``.NAME.tmp-*``) left by a killed process are removed.
    """
    path = Path(path)
    if not path.exists():
        olds = _stale_siblings(path, "old")
        if olds:
            os.replace(olds[-1], path)
    elif path.exists():
        for old in _stale_siblings(path, "old"):
            shutil.rmtree(old, ignore_errors=True)
    for tmp in _stale_siblings(path, "tmp"):
        shutil.rmtree(tmp, ignore_errors=True)
    return path if path.exists() else None


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``path`` as a whole.

    Write every file of the new folder into the yielded folder. When the ``with`` block
    finishes without an exception, its files are fsynced and the folder is renamed to
    ``path`` (the previous folder, if any, is moved aside first and deleted afterwards).
    On an exception the temporary folder is deleted and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        yield tmp
        for file in tmp.rglob("*"):
            if file.is_file():
                with open(file, "rb") as handle:
                    os.fsync(handle.fileno())
        for folder in [tmp, *[p for p in tmp.rglob("*") if p.is_dir()]]:
            _fsync_dir(folder)
        old = None
        if path.exists():
            old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:12]}"
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def tensors_to_bytes(
    tensors: Mapping[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> bytes:
    """Serialise a name -> tensor mapping to safetensors bytes (shared storage is copied)."""
    from safetensors.torch import save

    seen: set[int] = set()
    out: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            kind = type(tensor).__name__
            raise ValueError(f"state_dict entry {name!r} is a {kind}, not a tensor")
        t = tensor.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if t.numel() and ptr in seen:
            t = t.clone()  # tied weights: safetensors refuses tensors that share storage
        seen.add(t.untyped_storage().data_ptr())
        out[name] = t
    return save(out, metadata={"format": "pt", **(metadata or {})})


def user_cache_dir() -> Path:
    """The user cache folder, ``$SYNESTHESIA_CACHE`` or ``~/.cache/synesthesia`` (checked).

    Raises :class:`InputError` naming ``$SYNESTHESIA_CACHE`` when it points at a file or a
    place that cannot be written. Nothing is created here.
    """
    from synesthesia.errors import check_output_dir

    env = os.environ.get("SYNESTHESIA_CACHE")
    if env:
        return check_output_dir(env, "$SYNESTHESIA_CACHE")
    return check_output_dir(Path.home() / ".cache" / "synesthesia", "the cache folder")


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Read a JSON file (a UTF-8 byte-order mark is allowed).

    Raises :class:`~synesthesia.errors.MissingInputError` / :class:`InputError` naming the file
    on any problem (missing, a folder, unreadable, not UTF-8, corrupted or truncated JSON).
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a {what} (JSON)")
    if not path.is_file():
        raise MissingInputError(f"{path}: {what} not found")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except PermissionError:
        raise InputError(f"{path}: {what} not readable (permission denied)") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: {what} is not UTF-8 text ({exc.reason} at byte "
            f"{exc.start}); restore or delete it"
        ) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"{path}: corrupted or truncated JSON ({exc}); restore or delete it"
        raise InputError(msg) from exc


def read_safetensors(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Read a safetensors file; FileNotFoundError / ValueError naming the file on any problem."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: weights file not found")
    try:
        data = path.read_bytes()
    except PermissionError:
        raise InputError(f"{path}: weights file not readable (permission denied)") from None
    try:
        tensors = load(data)  # reads fully: a truncated file fails here, not later
    except SafetensorError as exc:
        raise InputError(
            f"{path}: corrupted or truncated safetensors file ({exc}); restore or delete it"
        ) from exc
    return {k: v.to(device) for k, v in tensors.items()} if str(device) != "cpu" else tensors


def save_pretrained(
    folder: str | os.PathLike,
    state_dict: Mapping[str, torch.Tensor],
    config: dict,
    extra_files: Mapping[str, bytes] | None = None,
) -> Path:
    """Save weights and config to ``folder``: ``model.safetensors`` + ``config.json``.

    The folder is written as a whole (:func:`atomic_folder`): a crash leaves either the old
    folder or the new one, never new weights beside an old config. Other files already in
    ``folder`` (``extra_files`` aside) are carried into the new folder. ``config`` must be a
    JSON-serialisable dict (for a dataclass pass ``dataclasses.asdict(cfg)``);
    ``extra_files`` maps a relative name to bytes written beside them (e.g. a tokenizer).
    """
    if not isinstance(config, dict):
        raise ValueError(f"config must be a dict (JSON object), got {type(config).__name__}")
    try:
        config_text = json.dumps(config, indent=2, allow_nan=True) + "\n"
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config is not JSON-serialisable ({exc})") from exc
    folder = Path(folder)
    ours = {WEIGHTS_NAME, CONFIG_NAME, *(extra_files or {})}
    with atomic_folder(folder) as tmp:
        if folder.is_dir():
            for item in folder.iterdir():
                if item.name not in ours:
                    copy = shutil.copytree if item.is_dir() else shutil.copy2
                    copy(item, tmp / item.name)
        (tmp / WEIGHTS_NAME).write_bytes(tensors_to_bytes(state_dict))
        (tmp / CONFIG_NAME).write_text(config_text, encoding="utf-8")
        for name, data in (extra_files or {}).items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(data)
    return folder


def load_pretrained(
    folder: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict]:
    """Load ``(state_dict, config)`` saved by :func:`save_pretrained` (or a trainer checkpoint).

    Raises :class:`MissingInputError` naming the missing folder or file, :class:`InputError`
    naming a corrupted or truncated file.
    """
    folder = Path(folder)
    if not folder.exists():
        with contextlib.suppress(OSError):  # e.g. a read-only file system
            recover_folder(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: is a file, expected a checkpoint folder")
    if not folder.is_dir():
        raise MissingInputError(
            f"{folder}: no such checkpoint folder (expected {WEIGHTS_NAME} and {CONFIG_NAME} in it)"
        )
    config = read_json(folder / CONFIG_NAME, what="config file")
    if not isinstance(config, dict):
        kind = type(config).__name__
        raise InputError(f"{folder / CONFIG_NAME}: expected a JSON object, got {kind}")
    state_dict = read_safetensors(folder / WEIGHTS_NAME, device=device)
    return state_dict, config
