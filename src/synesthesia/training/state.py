"""Serialise the trainer's state without pickle: optimizer state as safetensors + JSON,
random-number-generator states as base64 strings in JSON."""

from __future__ import annotations

import base64
import random
from typing import Any

import numpy as np
import torch


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


def host_rng_state() -> dict[str, Any]:
    """Python's and NumPy's global RNG states as JSON-able values."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (global state)
    return {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }


def set_host_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`host_rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))  # noqa: NPY002
