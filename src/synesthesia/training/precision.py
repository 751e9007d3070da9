"""Precision: decided by one function, applied by one context manager, everywhere.

``"auto"`` means bf16 autocast only where it is faster on this device, float32 otherwise:

- on CUDA, bf16 where the GPU supports it;
- on a CPU, only with native bf16 (AVX-512 BF16 or AMX, as oneDNN reports) *and* a short
  timed comparison (a small convolution + matmul training step, float32 vs bf16, interleaved)
  that bf16 wins by at least 10 %; the answer is cached per process and device. On an
  AVX2-only CPU bf16 is emulated and 10-14x slower than float32 (measured on a Zen 3 EPYC: a
  small U-Net's training step 4.4-5.0 s vs 0.44-0.48 s), so it is never chosen there.

On a CUDA GPU without bf16 (before Ampere) "auto" is ``"fp16"``: float16 autocast, with the
trainer's gradient scaler (float16's range is too narrow for unscaled gradients). ``"fp16"``
may be forced on a CPU too (slow there; it exists so that the scaled path is testable).

No code path of the project enters ``torch.autocast(..., dtype=...)`` except through
:func:`autocast`; a user forces a precision with ``"fp32"`` / ``"bf16"`` / ``"fp16"``
(``--precision``).
"""

from __future__ import annotations

import contextlib
import time

import torch

from synesthesia.errors import InputError

#: What a user may ask for. "no" is the trainer's historical name for float32.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_ALIASES = {
    "auto": "auto",
    "fp32": "no",
    "float32": "no",
    "no": "no",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fp16": "fp16",
    "float16": "fp16",
}
_CACHE: dict[str, tuple[str, dict]] = {}


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes bf16 natively (CUDA bf16; CPU AVX-512 BF16 or AMX)."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    try:
        onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        avx512_bf16 = bool(torch.cpu._is_avx512_bf16_supported())
        amx = bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())
    except (AttributeError, RuntimeError):
        return False
    return onednn and (avx512_bf16 or amx)


def normalize_precision(mode: str) -> str:
    """``"auto"``, ``"no"`` (float32) or ``"bf16"`` from any accepted spelling."""
    try:
        return _ALIASES[str(mode).lower()]
    except KeyError:
        raise InputError(
            f"precision must be one of {', '.join(PRECISIONS)}, got {mode!r}"
        ) from None


def _probe_step(model: torch.nn.Module, x: torch.Tensor, bf16: bool) -> float:
    start = time.perf_counter()
    with torch.enable_grad(), autocast("bf16" if bf16 else "no", x.device):
        loss = model(x).float().square().mean()
    with torch.enable_grad():
        loss.backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def measure_bf16_speedup(device: torch.device | str = "cpu", rounds: int = 3) -> dict:
    """Time a small conv + matmul training step in float32 and under bf16 autocast.

    Rounds are interleaved (fp32, bf16, fp32, ...) after one warm-up each; returns the median
    seconds of each and their ratio (``speedup`` > 1 means bf16 is faster).
    """
    device = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(32, 64, 3, padding=1),
        torch.nn.GroupNorm(8, 64),
        torch.nn.SiLU(),
        torch.nn.Conv2d(64, 32, 3, padding=1),
        torch.nn.Flatten(1),
        torch.nn.Linear(32 * 14 * 14, 256),
    ).to(device)
    x = torch.randn(32, 32, 14, 14, generator=gen).to(device)
    fp32, bf16 = [], []
    _probe_step(model, x, False), _probe_step(model, x, True)  # warm-up (kernel creation)
    for _ in range(rounds):
        fp32.append(_probe_step(model, x, False))
        bf16.append(_probe_step(model, x, True))
    fp32.sort(), bf16.sort()
    a, b = fp32[len(fp32) // 2], bf16[len(bf16) // 2]
    return {"fp32_s": a, "bf16_s": b, "speedup": a / b if b > 0 else float("inf")}


def resolve_precision(mode: str = "auto", device: torch.device | str = "cpu") -> str:
    """``"bf16"``, ``"fp16"`` or ``"no"`` (float32): what ``mode`` means on ``device``.

    ``"fp32"``/``"no"``, ``"bf16"`` and ``"fp16"`` are returned as asked (on a device other
    than CPU/CUDA they fall back to float32). ``"auto"`` is bf16 only where it is native and
    measured faster, fp16 on a CUDA GPU without bf16 (see the module docstring); the
    measurement runs once per process and device.
    """
    mode = normalize_precision(mode)
    device = torch.device(device)
    if device.type not in ("cpu", "cuda"):
        return "no"
    if mode != "auto":
        return mode
    return _auto(device)[0]


def precision_report(device: torch.device | str = "cpu") -> dict:
    """Why ``"auto"`` resolves as it does on ``device``: native bf16, the timing, the choice."""
    device = torch.device(device)
    choice, detail = _auto(device)
    return {"auto": choice, **detail}


def _auto(device: torch.device) -> tuple[str, dict]:
    key = str(device)
    if key not in _CACHE:
        native = native_bf16(device)
        detail: dict = {"native_bf16": native}
        if device.type == "cuda":
            choice = "bf16" if native else "fp16"
        elif not native:
            choice = "no"
        else:
            timing = measure_bf16_speedup(device)
            detail.update(timing)
            choice = "bf16" if timing["speedup"] >= 1.1 else "no"
        _CACHE[key] = (choice, detail)
    return _CACHE[key]


def clear_precision_cache() -> None:
    """Forget the measured ``"auto"`` choices (tests; a changed machine)."""
    _CACHE.clear()


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """The context that runs code at ``precision`` ("bf16" / "fp16" autocast, else nothing).

    Pass a resolved precision (:func:`resolve_precision`); ``"auto"`` is resolved here.
    """
    device = torch.device(device)
    resolved = resolve_precision(precision, device)
    if resolved == "no":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if resolved == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
