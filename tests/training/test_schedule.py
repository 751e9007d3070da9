"""The LR schedule and EMA decay against their closed forms, computed by hand."""

import math

import pytest

from synesthesia.training import TrainerConfig, ema_decay_at, lr_at


def test_warmup_then_cosine_matches_closed_form(tmp_path):
    cfg = TrainerConfig(out_dir=str(tmp_path), lr=1e-3, warmup_steps=10, max_steps=110)
    assert lr_at(0, cfg) == pytest.approx(1e-4)  # (0 + 1) / 10 of the peak
    assert lr_at(4, cfg) == pytest.approx(5e-4)
    assert lr_at(9, cfg) == pytest.approx(1e-3)  # end of warm-up: the peak
    assert lr_at(10, cfg) == pytest.approx(1e-3)  # cosine starts at the peak
    assert lr_at(60, cfg) == pytest.approx(0.5e-3)  # half-way: cos(pi/2) = 0
    assert lr_at(35, cfg) == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_at(110, cfg) == pytest.approx(0.0, abs=1e-15)


def test_min_lr_ratio_and_constant(tmp_path):
    cfg = TrainerConfig(
        out_dir=str(tmp_path), lr=2.0, warmup_steps=0, max_steps=100, min_lr_ratio=0.1
    )
    assert lr_at(0, cfg) == pytest.approx(2.0)
    assert lr_at(50, cfg) == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))
    assert lr_at(100, cfg) == pytest.approx(0.2)
    const = TrainerConfig(out_dir=str(tmp_path), lr=2.0, warmup_steps=4, lr_schedule="constant")
    assert [lr_at(s, const) for s in (0, 3, 4, 9999)] == pytest.approx([0.5, 2.0, 2.0, 2.0])


def test_ema_decay_warmup(tmp_path):
    cfg = TrainerConfig(out_dir=str(tmp_path), ema_decay=0.999)
    assert ema_decay_at(0, cfg) == pytest.approx(0.1)
    assert ema_decay_at(1, cfg) == pytest.approx(2 / 11)
    assert ema_decay_at(10_000, cfg) == pytest.approx(0.999)
    flat = TrainerConfig(out_dir=str(tmp_path), ema_decay=0.9, ema_warmup=False)
    assert ema_decay_at(0, flat) == 0.9


@pytest.mark.parametrize(
    "field, value",
    [
        ("lr_schedule", "linear"),
        ("mixed_precision", "fp8"),
        ("batch_size", 0),
        ("lr", -1.0),
        ("ema_decay", 1.0),
        ("grad_clip", 0.0),
        ("eval_every", 0),
    ],
)
def test_bad_config_names_the_field(tmp_path, field, value):
    with pytest.raises(ValueError, match=field):
        TrainerConfig(out_dir=str(tmp_path), **{field: value})
