"""The ventriloquist world and network: scenes follow the causal-inference generative model, a
network trained on one-source scenes fuses, one trained on two-source scenes does not, and the
probe produces the trial tables and fits the brain's models take."""

import numpy as np
import pytest
import torch

from synesthesia.errors import InputError
from synesthesia.probes.ventriloquist import (
    NetworkResponder,
    VentriloquistConfig,
    ideal_observer,
    probe_network,
    sample_scenes,
    train_localiser,
)

# a small world so that a network trains in about a second
SMALL = VentriloquistConfig(n_neurons=48, hidden=64, steps=400, batch=256, lr=5e-3)


def test_scenes_follow_the_generative_model():
    g = torch.Generator().manual_seed(0)
    n = 20_000
    sc = sample_scenes(SMALL, 0.3, n, g)
    same = (sc.sources[:, 0] == sc.sources[:, 1]).float()
    assert torch.equal(same, sc.common)
    # binomial: 0.3 +- 4 sd
    assert abs(float(sc.common.mean()) - 0.3) < 4 * (0.3 * 0.7 / n) ** 0.5
    # each source ~ N(prior_mean, prior_sd^2): sd within 4 sampling sd (sd / sqrt(2n))
    for m in range(2):
        sd = float(sc.sources[:, m].std())
        assert abs(sd - SMALL.prior_sd) < 4 * SMALL.prior_sd / (2 * n) ** 0.5
    assert sc.codes.shape == (n, 2 * SMALL.n_neurons)
    assert float(sample_scenes(SMALL, 0.0, 1000, g).common.sum()) == 0.0


def test_scenes_are_deterministic_per_seed():
    a = sample_scenes(SMALL, 0.5, 64, torch.Generator().manual_seed(3))
    b = sample_scenes(SMALL, 0.5, 64, torch.Generator().manual_seed(3))
    assert torch.equal(a.codes, b.codes) and torch.equal(a.sources, b.sources)


@pytest.fixture(scope="module")
def fused():
    return train_localiser(1.0, SMALL, seed=0)


@pytest.fixture(scope="module")
def separate():
    return train_localiser(0.0, SMALL, seed=0)


def _zero_disparity(trained, n=400):
    pos = np.array([-10.0, 0.0, 10.0])
    cond = np.stack([pos, pos], 1)
    loc, p = NetworkResponder(trained.net).outputs(cond, n, torch.Generator().manual_seed(9))
    return cond, loc, p


def test_a_network_trained_on_one_source_reports_fused_locations(fused, separate):
    cond, loc, p = _zero_disparity(fused)
    gap = loc[..., 1] - loc[..., 0]  # auditory - visual report, per trial
    _, loc0, p0 = _zero_disparity(separate)
    gap0 = loc0[..., 1] - loc0[..., 0]
    ideal = ideal_observer(SMALL, 1.0)
    # fused: both reports are one estimate, whose spread is the fused one (Ernst & Banks 2002),
    # far below audition's own; the segregating network's reports differ by about sigma_a
    assert np.abs(gap).mean() < 0.15 * np.abs(gap0).mean()
    fused_sd = (1 / ideal.sigma_v**2 + 1 / ideal.sigma_a**2 + 1 / SMALL.prior_sd**2) ** -0.5
    assert loc[..., 1].std(1).max() < 1.5 * fused_sd
    assert loc0[..., 1].std(1).min() > 0.5 * ideal.sigma_a
    assert p.mean() > 0.95 and p0.mean() < 0.05  # and it says "one cause"


def test_the_probe_fits_the_brain_models_to_the_network(fused):
    prior = {"sigma_p": SMALL.prior_sd, "mu_p": SMALL.prior_mean}  # the scenes' own prior
    probe = probe_network(fused, 8, models=("averaging", "segregation"), n_starts=1, fixed=prior)
    assert len(probe.trials) == 25 * 8 and probe.trials.unity is not None
    assert set(probe.trials.responses.ravel()) <= {-10.0, -5.0, 0.0, 5.0, 10.0}
    # a network trained on p_train = 1 is best described by fusion (or by CI with p_common ~ 1)
    assert probe.comparison.delta_bic("averaging", "segregation") > 10
    assert probe.p_common[0] > 0.8
    d = probe.to_dict()
    assert d["n_trials"] == 200 and "delta_bic_averaging_vs_segregation" in d
    zero = probe.fitted.disparity == 0
    assert np.isnan(probe.network_bias[zero]).all() and np.isfinite(probe.network_bias[~zero]).all()


def test_bad_p_train_is_an_input_error():
    with pytest.raises(InputError, match="p_train"):
        train_localiser(1.5, SMALL)
    with pytest.raises(InputError, match="steps"):
        VentriloquistConfig(steps=0)
