"""Serialise the trainer's state without pickle: optimizer state as safetensors + JSON,
random-number-generator states as base64 strings in JSON; check a saved state before a
resume applies any of it (:func:`check_trainer_state`)."""

from __future__ import annotations

import base64
import binascii
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synesthesia.errors import InputError, short


def _json_safe(value: Any, where: str) -> Any:
    """Convert tuples to lists and 0-d tensors to numbers; refuse what JSON cannot hold."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v, where) for k, v in value.items()}
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    raise ValueError(
        f"optimizer state: cannot store {where} of type {type(value).__name__} in JSON"
    )


def optimizer_state_to_files(
    state_dict: dict,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (for safetensors) and JSON metadata."""
    tensors: dict[str, torch.Tensor] = {}
    meta_state: dict[str, dict[str, Any]] = {}
    for index, entries in state_dict["state"].items():
        kinds: dict[str, Any] = {}
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{key}"] = value
                kinds[key] = {"tensor": True}
            else:
                kinds[key] = {"value": _json_safe(value, f"state[{index}][{key!r}]")}
        meta_state[str(index)] = kinds
    groups = [_json_safe(group, "param_groups") for group in state_dict["param_groups"]]
    return tensors, {"state": meta_state, "param_groups": groups}


def optimizer_state_from_files(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict:
    """Rebuild an ``optimizer.state_dict()`` from :func:`optimizer_state_to_files` output."""
    state: dict[int, dict[str, Any]] = {}
    for index, kinds in meta["state"].items():
        entries: dict[str, Any] = {}
        for key, kind in kinds.items():
            if kind.get("tensor"):
                name = f"state.{index}.{key}"
                if name not in tensors:
                    raise ValueError(f"optimizer tensors lack {name!r}")
                entries[key] = tensors[name]
            else:
                entries[key] = kind["value"]
        state[int(index)] = entries
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    return {"state": state, "param_groups": groups}


def encode_bytes_tensor(state: torch.Tensor) -> str:
    """A generator state (uint8 tensor) as a base64 string."""
    return base64.b64encode(state.cpu().numpy().tobytes()).decode("ascii")


def decode_bytes_tensor(text: str) -> torch.Tensor:
    """Inverse of :func:`encode_bytes_tensor`."""
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8).clone()


def decode_bytes_tensor_strict(text: Any) -> torch.Tensor:
    """:func:`decode_bytes_tensor`, refusing anything but valid base64 (ValueError)."""
    if not isinstance(text, str):
        raise ValueError(f"expected a base64 string, got {type(text).__name__}")
    try:
        return torch.frombuffer(
            bytearray(base64.b64decode(text, validate=True)), dtype=torch.uint8
        ).clone()
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64 ({exc})") from None


def host_rng_state() -> dict[str, Any]:
    """Python's and NumPy's global RNG states as JSON-able values."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (global state)
    return {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }


def _host_tuples(state: dict[str, Any]) -> tuple[tuple, tuple]:
    version, internal, gauss = state["python"]
    name, keys, pos, has_gauss, cached = state["numpy"]
    return (
        (version, tuple(internal), gauss),
        (name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached),
    )


def set_host_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`host_rng_state` returned."""
    python, numpy = _host_tuples(state)
    random.setstate(python)
    np.random.set_state(numpy)  # noqa: NPY002 (global state)


_COUNTS = {  # name: (required, smallest value)
    "step": (True, 0),
    "epoch": (True, 0),
    "position_in_epoch": (True, 0),
    "ema_updates": (False, 0),
    "dataset_len": (False, 1),
    "num_processes": (False, 1),
}


def check_trainer_state(state: dict, path: str | Path, device: torch.device | str) -> None:
    """Check everything a resume takes from a trainer state before any of it is applied.

    Raises :class:`~synesthesia.errors.InputError` naming ``path`` and the entry that is
    missing or malformed: the counters, the elapsed time, the logging window and the RNG
    states (each decoded and tried on a throwaway generator of ``device``).
    """
    from synesthesia.training.logs import LogWindow

    def bad(entry: str, why: str) -> InputError:
        return InputError(f"{path}: {entry} {why}; restore or delete the checkpoint")

    for name, (required, least) in _COUNTS.items():
        if name not in state:
            if required:
                raise bad(name, "is missing")
            continue
        value = state[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise bad(name, f"must be an integer >= {least}, got {short(value, 30)}")
    elapsed = state.get("elapsed_s", 0.0)
    if not isinstance(elapsed, (int, float)) or not math.isfinite(elapsed) or elapsed < 0:
        raise bad("elapsed_s", f"must be a number of seconds, got {short(elapsed, 30)}")
    if state.get("mixed_precision", "no") not in ("no", "bf16"):
        raise bad(
            "mixed_precision", f"must be 'no' or 'bf16', got {short(state['mixed_precision'], 30)}"
        )
    if "log_window" in state:
        try:
            LogWindow.from_state(state["log_window"])
        except ValueError as exc:
            raise bad("log_window", f"is malformed ({exc})") from None
    if not isinstance(state.get("overrides", []), list):
        raise bad("overrides", "must be a list")
    unfinished = state.get("unfinished_step")
    if unfinished is not None and not (
        isinstance(unfinished, dict)
        and set(unfinished) == {"row", "evaluate"}
        and isinstance(unfinished["evaluate"], bool)
        and (unfinished["row"] is None or isinstance(unfinished["row"], dict))
    ):
        raise bad("unfinished_step", "must be null or {'row': {...} or null, 'evaluate': bool}")
    if "rng" not in state:
        raise bad("rng", "is missing")
    try:
        _check_rng(state["rng"], torch.device(device))
    except KeyError as exc:
        raise bad("rng", f"lacks the entry {exc}") from None
    except (IndexError, TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise bad("rng", f"is malformed ({short(str(exc), 80)})") from None


def _check_rng(rng: Any, device: torch.device) -> None:
    processes = rng["processes"]
    if not isinstance(processes, list) or not processes:
        raise ValueError("no per-process states")
    for states in processes:
        torch.Generator().set_state(decode_bytes_tensor_strict(states["torch"]))
        loss = torch.Generator(device=device)
        loss.set_state(decode_bytes_tensor_strict(states["loss_generator"]))
        if "cuda" in states:
            decode_bytes_tensor_strict(states["cuda"])
    python, numpy = _host_tuples(rng["host"])
    random.Random().setstate(python)
    np.random.RandomState().set_state(numpy)
