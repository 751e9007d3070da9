"""The flash-illusion world: pulse trains as documented, scenes deterministic per seed, and the
probe's trial tables and fits in the form the brain's models take."""

import numpy as np
import pytest
import torch

from synesthesia.errors import InputError
from synesthesia.probes.flash import (
    CounterResponder,
    FlashConfig,
    event_times,
    probe_counter,
    report_table,
    sample_scenes,
    stream,
    train_counter,
)

SMALL = FlashConfig(hidden=48, steps=200, batch=128, lr=5e-3)


def test_event_times_keep_their_gaps_inside_the_window():
    cfg = FlashConfig()
    t = event_times(cfg, 5000, torch.Generator().manual_seed(0))
    gaps = t[:, 1:] - t[:, :-1]
    assert gaps.min() >= cfg.min_gap
    assert t.min() >= cfg.margin() and t.max() <= cfg.bins - 1 - cfg.margin()
    # uniform over admissible sets: the first event is in the first slot with probability
    # C(m - 1, k - 1) / C(m, k) = k / m (m slots, k events)
    k, m = cfg.max_count, cfg.slots()
    first = float((t[:, 0] == cfg.margin()).double().mean())
    assert abs(first - k / m) < 4 * (k / m * (1 - k / m) / 5000) ** 0.5


def test_a_noiseless_stream_peaks_once_per_event_at_its_onset():
    times = torch.tensor([[6.0, 14.0, 22.0, 30.0]], dtype=torch.float64)
    for k in (1, 2, 3):
        s = stream(times, torch.tensor([k]), 0.8, 0.0, 40, torch.Generator())[0]
        peaks = [i for i in range(1, 39) if s[i] > s[i - 1] and s[i] > s[i + 1]]
        assert peaks == [6, 14, 22][:k]
        assert float(s[6]) == pytest.approx(1.0, abs=1e-6)  # unit peak


def test_scenes_follow_the_stated_mixture_and_are_seeded():
    g = torch.Generator().manual_seed(1)
    n = 20_000
    sc = sample_scenes(FlashConfig(p_incongruent=0.4), n, g)
    differ = float((sc.counts[:, 0] != sc.counts[:, 1]).float().mean())
    # independent uniform counts over 1..4 differ with probability 3/4: 0.4 * 0.75 = 0.3
    assert abs(differ - 0.3) < 4 * (0.3 * 0.7 / n) ** 0.5
    assert np.allclose(torch.unique(sc.noise_v).numpy(), [0.4, 0.8, 1.2, 1.6])
    a = sample_scenes(SMALL, 32, torch.Generator().manual_seed(2))
    b = sample_scenes(SMALL, 32, torch.Generator().manual_seed(2))
    assert torch.equal(a.streams, b.streams) and torch.equal(a.counts, b.counts)


def test_probe_gives_count_reports_and_fits():
    trained = train_counter(SMALL, seed=0)
    (level,) = probe_counter(trained, [0.8], 10, n_starts=1, models=("averaging",))
    assert len(level.trials) == 90
    assert set(np.unique(level.trials.responses)) <= {1.0, 2.0, 3.0, 4.0}
    assert 0.0 <= level.fission <= 1.0 and 0.0 <= level.fitted_fission <= 1.0
    for row in report_table(level.trials):
        assert sum(row["p_reported"].values()) == pytest.approx(1.0)
    assert set(level.comparison.fits) == {"averaging"}


def test_bad_settings_are_input_errors():
    with pytest.raises(InputError, match="too short"):
        FlashConfig(bins=10)
    with pytest.raises(InputError, match="noise_v"):
        FlashConfig(noise_v=(0.0,))
    net = train_counter(FlashConfig(hidden=8, steps=1, batch=4), seed=0).net
    with pytest.raises(InputError, match="counts"):
        CounterResponder(net, 0.5).respond(np.array([[0.0, 1.0]]), 2, torch.Generator())
