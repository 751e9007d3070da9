"""Precision is decided by one function: bf16 only where native and measured faster."""

from __future__ import annotations

import pytest
import torch

import synesthesia.training.precision as precision
from synesthesia.errors import InputError


@pytest.fixture
def no_native_bf16(monkeypatch):
    """This process as it would run on an AVX2-only CPU (bf16 emulated)."""
    precision.clear_precision_cache()
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": False)
    yield
    precision.clear_precision_cache()


def test_auto_is_float32_without_native_bf16(no_native_bf16, monkeypatch):
    timed = []
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda *a, **k: timed.append(1))
    assert precision.resolve_precision("auto", "cpu") == "no"
    assert not timed  # no bf16 timing where bf16 is emulated
    with precision.autocast("auto", "cpu"):
        assert not torch.is_autocast_enabled("cpu")


def test_auto_follows_the_measurement_when_native(monkeypatch):
    precision.clear_precision_cache()
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": True)
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda *a, **k: {"speedup": 0.9})
    assert precision.resolve_precision("auto", "cpu") == "no"
    precision.clear_precision_cache()
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda *a, **k: {"speedup": 1.5})
    assert precision.resolve_precision("auto", "cpu") == "bf16"
    precision.clear_precision_cache()


def test_forced_precisions_and_bad_names():
    assert precision.resolve_precision("fp32", "cpu") == "no"
    assert precision.resolve_precision("bf16", "cpu") == "bf16"
    with precision.autocast("bf16", "cpu"):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    assert precision.resolve_precision("fp16", "cpu") == "fp16"
    with precision.autocast("fp16", "cpu"):
        assert torch.get_autocast_dtype("cpu") == torch.float16
    with pytest.raises(InputError, match="precision must be one of"):
        precision.resolve_precision("fp8", "cpu")


def test_auto_on_a_gpu_is_bf16_where_supported_else_fp16_with_its_scaler(monkeypatch):
    precision.clear_precision_cache()
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": False)  # e.g. a V100
    assert precision.resolve_precision("auto", "cuda") == "fp16"
    precision.clear_precision_cache()
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": True)  # Ampere on
    assert precision.resolve_precision("auto", "cuda") == "bf16"
    precision.clear_precision_cache()


def test_measured_speedup_is_a_real_timing():
    out = precision.measure_bf16_speedup("cpu", rounds=1)
    assert out["fp32_s"] > 0 and out["bf16_s"] > 0
    assert out["speedup"] == pytest.approx(out["fp32_s"] / out["bf16_s"])
