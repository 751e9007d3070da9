"""Denoiser evaluations are counted by calling; the counts against hand counts from the grids."""

import pytest
import torch

from synesthesia.diffusion import (
    HEUN_SIGMA_MAX,
    METHODS,
    CountingDenoiser,
    NoiseSchedule,
    cfg_denoiser,
    count_nfe,
    gaussian_oracle,
    sample,
    steps_for_nfe,
)
from synesthesia.errors import InputError

# Hand counts at 10 steps. Every sampler but heun calls once a step: 10. Heun calls twice a step
# except on Euler steps: the last one (into sigma = 0) and every one starting above sigma = 80.
# The first sigmas of each 10-step grid (printed from schedule.sampling_grid, checked below):
#   linear  trailing/linspace 157.4, 60.3 / 54.6 ...  -> 1 above 80: 2 Euler steps, 18 calls
#   linear  leading 60.8, ...                          -> none above 80: 1 Euler step, 19 calls
#   linear  karras 157.4, 85.7, 44.1, ...              -> 2 above 80: 3 Euler steps, 17 calls
#   cosine  trailing/linspace 20291, 6.4 / 5.7 ...     -> 18;  leading 6.4, ...   -> 19
#   cosine  karras 20291, 9856, 4406, 1773, 623, 182, 40.8, ... -> 6 above 80: 7 Euler, 13 calls
#   sigmoid trailing/linspace 1825, 4.9 / 4.6 ...      -> 18;  leading 5.0, ...   -> 19
#   sigmoid karras 1825, 944, 456, 203, 80.9, 28.1, ... -> 5 above 80: 6 Euler, 14 calls
HEUN_AT_10 = {
    ("linear", "trailing"): (1, 18),
    ("linear", "linspace"): (1, 18),
    ("linear", "leading"): (0, 19),
    ("linear", "karras"): (2, 17),
    ("cosine", "trailing"): (1, 18),
    ("cosine", "linspace"): (1, 18),
    ("cosine", "leading"): (0, 19),
    ("cosine", "karras"): (6, 13),
    ("sigmoid", "trailing"): (1, 18),
    ("sigmoid", "linspace"): (1, 18),
    ("sigmoid", "leading"): (0, 19),
    ("sigmoid", "karras"): (5, 14),
}


def _grid_kw(spacing: str) -> dict:
    return {"karras": True} if spacing == "karras" else {"spacing": spacing}


@pytest.mark.parametrize("name,spacing", sorted(HEUN_AT_10))
@pytest.mark.parametrize("method", METHODS)
def test_counts_equal_hand_counts_and_real_runs(name, spacing, method):
    schedule = NoiseSchedule(name, 1000)
    kw = _grid_kw(spacing)
    above, heun_calls = HEUN_AT_10[(name, spacing)]
    abar = schedule.sampling_grid(10, **kw).abar
    sig = ((1 - abar) / abar).sqrt()
    assert int((sig[:-2] > HEUN_SIGMA_MAX).sum()) == above  # the table's reading of the grid
    want = heun_calls if method == "heun" else 10
    assert count_nfe(schedule, method, 10, **kw) == want
    # a real run of an exact denoiser, counted by the wrapper and by the oracle itself
    oracle = gaussian_oracle([0.5, -1.0], [1.0, 0.3], schedule, "eps")
    counter = CountingDenoiser(oracle)
    sample(counter, (16, 2), schedule, method=method, steps=10, progress=False,
           generator=torch.Generator().manual_seed(0), **kw)  # fmt: skip
    assert counter.calls == oracle.calls == want
    assert counter.reset() == want and counter.calls == 0


def test_heun_costs_at_most_two_n_minus_two_on_every_built_in_schedule():
    """Every built-in schedule starts above sigma = 80, so N heun steps cost 2N - 2 calls at
    most, fewer where more grid points lie above 80. The issue's case: the image pipeline's
    cosine schedule, cells labelled 10/20/50/250 (5/10/25/125 steps) spent 8/18/48/247 calls."""
    for name in ("linear", "cosine", "sigmoid"):
        schedule = NoiseSchedule(name, 1000)
        assert schedule.sigmas[-1] > HEUN_SIGMA_MAX  # the first step is always an Euler step
        for steps in (2, 5, 10):
            assert count_nfe(schedule, "heun", steps) == 2 * steps - 2
    cosine = NoiseSchedule("cosine", 1000)
    assert [count_nfe(cosine, "heun", n) for n in (5, 10, 25, 125)] == [8, 18, 48, 247]
    # linear at 25 trailing steps: t = 999 and t = 959 both lie above sigma = 80 (from t = 930)
    linear = NoiseSchedule("linear", 1000)
    assert linear.timesteps(25)[:2].tolist() == [999, 959] and linear.sigmas[929] <= 80
    assert count_nfe(linear, "heun", 25) == 2 * 25 - 3
    assert steps_for_nfe(linear, "heun", 10) == 6  # 2 * 6 - 2 = 10


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("spacing", ["trailing", "karras"])
@pytest.mark.parametrize("method", ["ddim", "heun"])
def test_steps_for_nfe_is_the_most_steps_within_the_budget(name, spacing, method):
    """Against a plain scan: for each budget, the largest N whose counted calls fit in it."""
    schedule = NoiseSchedule(name, 1000)
    kw = _grid_kw(spacing)
    counts = {n: count_nfe(schedule, method, n, **kw) for n in range(1, 41)}
    for budget in range(1, 41):
        best = max(n for n, c in counts.items() if c <= budget)
        assert steps_for_nfe(schedule, method, budget, **kw) == best, budget
    short = NoiseSchedule("cosine", 20)
    assert steps_for_nfe(short, method, 1000) == 20  # capped at the schedule's timesteps


def test_counting_through_guidance_counts_one_batched_call_a_step():
    schedule = NoiseSchedule("cosine", 100)
    counter = CountingDenoiser(lambda x, t, labels: torch.zeros_like(x))
    guided = cfg_denoiser(counter, 3.0, {"labels": torch.tensor([9])})
    sample(guided, (4, 2), schedule, method="dpmpp_2m", steps=7, cond={"labels": torch.zeros(4)},
           progress=False)  # fmt: skip
    assert counter.calls == 7 == count_nfe(schedule, "dpmpp_2m", 7)


def test_bad_budgets_and_settings_are_refused():
    schedule = NoiseSchedule("linear", 1000)
    for bad in (0, -3, 2.5):
        with pytest.raises(InputError, match="nfe"):
            steps_for_nfe(schedule, "ddim", bad)
    with pytest.raises(ValueError, match="method"):
        count_nfe(schedule, "plms", 10)
    with pytest.raises(ValueError, match="sigma space"):
        count_nfe(NoiseSchedule("linear", 1000, zero_terminal_snr=True), "heun", 10)
