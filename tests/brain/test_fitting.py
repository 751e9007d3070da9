"""Fitting: recovery on simulated data, fixed/tied parameters, information criteria, PPC."""

import numpy as np
import pytest

from synesthesia.brain import (
    KOERDING_POSITIONS,
    compare_fits,
    fit_causal_inference,
    koerding_observer,
    posterior_predictive,
    simulate_trials,
)
from synesthesia.brain.paradigms import full_design

LEVELS = np.array(KOERDING_POSITIONS)


@pytest.fixture(scope="module")
def data():
    cond = full_design(LEVELS, LEVELS)
    return simulate_trials(koerding_observer(), cond, 40, "averaging", LEVELS, seed=11)


@pytest.fixture(scope="module")
def fit(data):
    return fit_causal_inference(data, "averaging", levels=LEVELS, n_starts=2, seed=0)


def test_parameter_recovery_on_one_dataset(fit):
    true = koerding_observer().params()
    for k in ("sigma_v", "sigma_a", "sigma_p", "mu_p", "p_common"):
        se = fit.se[k]
        assert np.isfinite(se) and se > 0
        # within 4 standard errors of the truth (the SEs come from the Hessian)
        assert abs(fit.params[k] - true[k]) < 4 * se, (k, fit.params[k], true[k], se)
    assert fit.converged


def test_information_criteria_by_hand(fit, data):
    k, n = 5, len(data)
    assert fit.n_free == k
    assert fit.aic == pytest.approx(2 * k + 2 * fit.nll)
    assert fit.bic == pytest.approx(k * np.log(n) + 2 * fit.nll)


@pytest.fixture(scope="module")
def tied_fit(data):
    return fit_causal_inference(
        data,
        levels=LEVELS,
        fixed={"sigma_p": 12.3, "mu_p": 0.0},
        tied={"sigma_a": "sigma_v"},
        n_starts=1,
        compute_se=False,
    )


def test_fixed_and_tied_parameters(tied_fit):
    f = tied_fit
    assert f.free == ("sigma_v", "p_common")
    assert f.params["sigma_p"] == 12.3 and f.params["mu_p"] == 0.0
    assert f.params["sigma_a"] == f.params["sigma_v"]
    assert "tied to sigma_v" in f.table()


def test_the_true_model_beats_a_constrained_one(fit, tied_fit):
    rows = compare_fits([tied_fit, fit], ["sigma_a=sigma_v", "free"])
    assert rows[0]["label"] == "free"
    assert sum(r["akaike_weight"] for r in rows) == pytest.approx(1.0)
    assert rows[1]["delta_aic"] > 10


def test_posterior_predictive_covers_the_data(fit, data):
    ppc = posterior_predictive(fit, data, n_sims=300, seed=1)
    assert ppc.observed.shape == (25, 2)
    assert ppc.coverage >= 0.8


def test_parameter_recovery_helper_reports_bias_and_spread():
    from synesthesia.brain import parameter_recovery

    lv = LEVELS
    rec = parameter_recovery(
        koerding_observer(),
        full_design(lv, lv),
        40,
        n_subjects=2,
        levels=lv,
        fixed={"sigma_p": 12.3, "mu_p": 0.0},
        n_starts=1,
    )
    assert set(rec.estimates) == {"sigma_v", "sigma_a", "p_common"}
    assert abs(rec.bias()["sigma_v"]) < 0.5 and rec.spread()["sigma_v"] >= 0
    assert "median fit time" in rec.table()


def test_continuous_responses_fit_recovers_motor_noise():
    model = koerding_observer(sigma_motor=2.0)
    pos = np.array([-10.0, 0.0, 10.0])
    data = simulate_trials(model, full_design(pos, pos), 20, "averaging", None, seed=4)
    f = fit_causal_inference(
        data, response="continuous", fixed={"sigma_p": 12.3, "mu_p": 0.0}, n_starts=1
    )
    assert f.report.kind == "continuous"
    for k in ("sigma_v", "sigma_a", "sigma_motor", "p_common"):
        assert abs(f.params[k] - model.params()[k]) < 4 * f.se[k] + 1e-3, k
