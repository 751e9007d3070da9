"""Issue: on a CPU without native bf16, nothing of the main job may run under bf16 autocast.

A spy replaces ``torch.autocast`` (every way the project could enter it) and records the
dtype of each autocast region that is entered enabled. With native bf16 reported absent the
throughput probe, the training run, the sampling-time estimate and sampling itself must never
enter one; with native bf16 present and measured faster they must (the negative control that
shows the spy sees them).
"""

from __future__ import annotations

import pytest
import torch

import synesthesia.training.precision as precision
from synesthesia.data.images import load_image_splits


class _Spy:
    entered: list = []

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        self.inner = _REAL(device_type, dtype=dtype, enabled=enabled)
        self.record = (dtype or torch.get_autocast_dtype(device_type)) if enabled else None

    def __enter__(self):
        if self.record is not None:
            _Spy.entered.append(self.record)
        return self.inner.__enter__()

    def __exit__(self, *exc):
        return self.inner.__exit__(*exc)


_REAL = torch.autocast


def _main_job(tmp_path):
    from synesthesia.pipelines.image_train import (
        ImageTrainOptions,
        estimate_sampling_s,
        train_class_to_image,
    )

    train, _ = load_image_splits("digits8x8")
    options = ImageTrainOptions(
        out_dir=str(tmp_path / "run"), preset="tiny", minutes=0.05, batch_size=32, progress=False
    )
    pipe, result, plan = train_class_to_image(train, options)  # probe + training
    assert result.step >= 1 and plan["seconds_per_step"] > 0
    estimate_sampling_s("tiny", train, 20, "dpmpp_2m", 2, 2.0, plan["precision"])
    pipe([1, 2], num_inference_steps=2, guidance_scale=2.0)
    return plan["precision"]


@pytest.fixture
def spy(monkeypatch):
    _Spy.entered = []
    for module in (torch, torch.amp):
        monkeypatch.setattr(module, "autocast", _Spy)
    precision.clear_precision_cache()
    yield _Spy.entered
    precision.clear_precision_cache()


def test_without_native_bf16_nothing_enters_bf16_autocast(spy, monkeypatch, tmp_path):
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": False)
    assert _main_job(tmp_path) == "no"
    assert torch.bfloat16 not in spy


def test_with_native_and_faster_bf16_the_same_job_uses_it(spy, monkeypatch, tmp_path):
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": True)
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda *a, **k: {"speedup": 1.5})
    assert _main_job(tmp_path) == "bf16"
    assert spy.count(torch.bfloat16) >= 3  # probe, training and sampling steps
