"""Step timing and time-bounded planning (training/timing.py): the one home every model uses."""

from __future__ import annotations

import pytest
import torch

from synesthesia.training.timing import (
    measure_train_step,
    plan_steps,
    probe_budget_s,
    time_until_stable,
)


def test_plan_steps_fits_the_schedule_into_the_budget():
    plan = plan_steps(minutes=10, seconds_per_step=0.5, max_steps=None, spent_s=30)
    assert plan.max_steps == int(0.9 * 570 / 0.5)
    assert plan.max_minutes == pytest.approx(9.5)
    assert plan_steps(minutes=1, seconds_per_step=9.0, max_steps=77).max_steps == 77
    with pytest.raises(ValueError, match="max_steps"):
        plan_steps(minutes=None, seconds_per_step=None, max_steps=None)


def test_probe_budget_scales_with_the_run():
    """4 % of the run, between 0.5 s and 30 s: a 6-second run may not spend 26 s probing."""
    assert probe_budget_s(0.1) == pytest.approx(0.5)
    assert probe_budget_s(1.0) == pytest.approx(2.4)
    assert probe_budget_s(10.0) == pytest.approx(24.0)
    assert probe_budget_s(60.0) == 30.0


def test_time_until_stable_skips_a_slow_warm_up():
    """A fake clock: 5 slow warm-up calls, then 1 s calls; the answer is 1 s, not the mean."""
    durations = iter([9.0, 8.0, 7.0, 6.0, 5.0] + [1.0] * 50)
    clock = {"t": 0.0}

    def fake_perf_counter():
        return clock["t"]

    def call():
        clock["t"] += next(durations)

    import synesthesia.training.timing as timing

    real = timing.time.perf_counter
    timing.time.perf_counter = fake_perf_counter
    try:
        seconds, times = time_until_stable(call, max_seconds=1e9)
    finally:
        timing.time.perf_counter = real
    assert seconds == 1.0 and len(times) == 8  # 5 slow + the first 3 that agree


def test_time_until_stable_stops_at_its_budget():
    calls = []
    seconds, times = time_until_stable(lambda: calls.append(1), min_calls=10**6, max_seconds=0.0)
    assert len(times) == 1 and len(calls) == 1 and seconds >= 0


def test_measure_train_step_leaves_the_model_and_threads_alone():
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.SiLU(), torch.nn.Linear(16, 1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = torch.randn(32, 8)

    def loss_fn(m, b, g):
        return m(b).square().mean()

    threads = torch.get_num_threads()
    try:
        timing = measure_train_step(model, loss_fn, batch, "no", budget_s=1.0, pick_threads=True)
        assert timing.seconds > 0 and timing.threads in (1, threads)
        assert torch.get_num_threads() == timing.threads
    finally:
        torch.set_num_threads(threads)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert all(p.grad is None for p in model.parameters())


def test_an_unsettled_probe_reports_its_fastest_recent_step():
    """Budget spent during warm-up (9, 6, 4 s): the guess is 4 s, not the median 6 s."""
    import synesthesia.training.timing as timing

    durations = iter([9.0, 6.0, 4.0, 3.0])
    clock = {"t": 0.0}

    def call():
        clock["t"] += next(durations)

    real = timing.time.perf_counter
    timing.time.perf_counter = lambda: clock["t"]
    try:
        seconds, times = time_until_stable(call, max_seconds=19.0)
    finally:
        timing.time.perf_counter = real
    assert times == [9.0, 6.0, 4.0] and seconds == 4.0
