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


def test_parameter_spec_defaults_overrides_and_conflicts(data):
    from synesthesia.brain import ParameterSpec
    from synesthesia.errors import InputError

    spec = ParameterSpec.build(data)
    assert spec.free == ("sigma_v", "sigma_a", "sigma_p", "mu_p", "p_common")
    assert spec.fixed == {"lapse": 0.0, "sigma_motor": 0.0}
    spec = ParameterSpec.build(
        data, free=["lapse"], fixed={"mu_p": 0.0}, tied={"sigma_a": "sigma_v"}
    )
    assert spec.free == ("sigma_v", "sigma_p", "p_common", "lapse")
    # one transform: natural -> z -> natural is the identity, and tied values follow
    z = spec.to_z({"sigma_v": 2.0, "sigma_p": 11.0, "p_common": 0.3, "lapse": 0.05})
    params = {k: float(v) for k, v in spec.params_at(z).items()}
    assert params["sigma_a"] == params["sigma_v"] == pytest.approx(2.0, rel=1e-14)
    assert params["p_common"] == pytest.approx(0.3, rel=1e-14) and params["mu_p"] == 0.0
    for kwargs, match in [
        ({"free": ["lapse"], "fixed": {"lapse": 0.1}}, "lapse: given as both fixed and free"),
        ({"tied": {"sigma_a": "p_common"}}, "of its kind"),
        ({"tied": {"sigma_a": "sigma_v", "sigma_v": "sigma_p"}}, "itself tied"),
        ({"bounds": {"sigma_v": (3.0, 1.0)}}, "low < high"),
        ({"start": {"p_common": 2.0}}, "p_common"),
    ]:
        with pytest.raises(InputError, match=match):
            ParameterSpec.build(data, **kwargs)


def test_standard_errors_equal_the_inverse_hessian_of_nll_values(data):
    # independent of the autograd gradient and of the transforms: second differences of the
    # NLL itself, in natural units, at the fitted parameters (3 free: sigma_p and mu_p fixed)
    from synesthesia.brain import ParameterSpec
    from synesthesia.brain.fitting import _Objective

    fixed = {"sigma_p": 12.3, "mu_p": 0.0}
    fit = fit_causal_inference(data, levels=LEVELS, fixed=fixed, n_starts=1)
    spec = ParameterSpec.build(data, fixed=fixed)
    objective = _Objective(data, fit.report, "averaging", tol=1.0)
    objective.rebuild(fit.params, fit.nodes_per_sigma, fine=True)
    theta0 = np.array([fit.params[k] for k in spec.free])

    def nll(theta):
        return float(objective(spec.complete(dict(zip(spec.free, map(float, theta))))))

    k = len(theta0)
    step = np.eye(k) * 1e-3 * np.maximum(np.abs(theta0), 0.1)
    f0 = nll(theta0)
    h = np.zeros((k, k))
    for i in range(k):
        h[i, i] = (nll(theta0 + step[i]) - 2 * f0 + nll(theta0 - step[i])) / step[i, i] ** 2
        for j in range(i):
            ei, ej = step[i], step[j]
            h[i, j] = h[j, i] = (
                nll(theta0 + ei + ej) - nll(theta0 + ei - ej) - nll(theta0 - ei + ej)
                + nll(theta0 - ei - ej)
            ) / (4 * step[i, i] * step[j, j])  # fmt: skip
    se = np.sqrt(np.diag(np.linalg.inv(h)))
    assert spec.free == ("sigma_v", "sigma_a", "p_common")
    for name, s in zip(spec.free, se):
        assert fit.se[name] == pytest.approx(s, rel=0.02), name
