"""Section 13.5.2: cross-modal binding as Bayesian causal inference.

Seconds on one CPU thread, no training. The chapter's sketch hard-codes the binding ("return
'da'"); here binding is inferred: the observer of Koerding et al. (2007), with their fitted
parameters, asks whether a seen and a heard event share one cause, and binds them as much as
it believes they do.

1. The posterior of a common cause, ``p(C=1 | x_v, x_a)``, against the two Gaussian
   likelihoods of the generative model written out here with scipy (Koerding et al. 2007,
   eq. 2-5); it falls as the two measurements move apart.
2. Binding in the estimates: the heard position is pulled towards the seen one by a fraction
   that shrinks with the disparity (causal inference), where forced fusion pulls by one
   fixed fraction at every disparity, the reliability weight given here in closed form.
3. Reports of "one cause" by quadrature (``unity_probability``) against a Monte-Carlo
   simulation of trials, at growing disparity (for an observer with p_common 0.5: the fitted
   0.28 gives almost no such reports near the centre).
4. In time: the temporal binding window of simultaneity judgements (Magnotti et al. 2013),
   closed form against numerical integration and simulation.

Attention is not modelled by the library; where attention is said to raise a sense's
reliability, that is a smaller sigma here. The parameters are Koerding et al.'s group fit
(``KOERDING_2007``) and the simultaneity model's illustrative defaults, not fitted here; to
fit data, see ``examples/brain_ventriloquist.py`` and ``synesthesia brain fit``.

    python examples/s13_5_2_binding.py
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import multivariate_normal

from synesthesia.brain import KOERDING_2007, SimultaneityModel, koerding_observer


def posterior_by_hand(x: np.ndarray) -> np.ndarray:
    """p(C=1 | x) from the generative model: one source, or two independent ones."""
    sv, sa, sp = KOERDING_2007["sigma_v"], KOERDING_2007["sigma_a"], KOERDING_2007["sigma_p"]
    mu, pc = KOERDING_2007["mu_p"], KOERDING_2007["p_common"]
    # C=1: x_v = s + noise, x_a = s + noise, s ~ N(mu, sp^2): correlated through s
    one = multivariate_normal([mu, mu], [[sv**2 + sp**2, sp**2], [sp**2, sa**2 + sp**2]])
    # C=2: independent sources, each N(mu, sp^2)
    two = multivariate_normal([mu, mu], [[sv**2 + sp**2, 0.0], [0.0, sa**2 + sp**2]])
    l1, l2 = one.pdf(x), two.pdf(x)
    return pc * l1 / (pc * l1 + (1 - pc) * l2)


def main() -> None:
    obs = koerding_observer()
    disparities = np.array([0.0, 2.5, 5.0, 10.0, 20.0, 40.0])
    x = np.stack([disparities, np.zeros_like(disparities)], axis=1)  # seen at d, heard at 0

    # 1. the posterior of one cause
    post = obs.posterior_common(x)
    err = float(np.abs(post - posterior_by_hand(x)).max())
    print("p(one cause | disparity):", dict(zip(disparities.tolist(), post.round(3).tolist())))
    print(f"library vs the likelihoods written out: max |difference| {err:.1e}")
    assert err < 1e-12 and np.all(np.diff(post) < 0)

    # 2. how far the heard position moves towards the seen one, per unit of disparity
    shift = obs.estimate(x[1:], "averaging")[:, 1] / disparities[1:]
    fusion = koerding_observer(p_common=1.0).estimate(x[1:], "averaging")[:, 1] / disparities[1:]
    prec = {k: 1.0 / KOERDING_2007[k] ** 2 for k in ("sigma_v", "sigma_a", "sigma_p")}
    weight = prec["sigma_v"] / sum(prec.values())  # Koerding et al. 2007, eq. 9, mu_p = 0
    print("auditory shift / disparity, causal inference:", shift.round(3))
    print(f"forced fusion: {fusion.round(3)} (visual weight with the prior: {weight:.3f})")
    assert np.all(np.diff(shift) < 0) and shift[-1] < 0.2 * shift[0]
    assert np.allclose(fusion, weight, rtol=1e-10)

    # 3. "one cause" reports: quadrature against simulated trials. With the fitted prior
    # (p_common 0.28) p(C=1 | x) stays below 0.5 near the centre (0.388 at x = (0, 0)), so this
    # observer hardly ever reports one cause there; one expecting one cause half the time
    # (p_common 0.5, illustrative) does
    even = koerding_observer(p_common=0.5)
    stimuli = x[[0, 2, 3, 4]]
    exact = even.unity_probability(stimuli)
    n = 20000
    simulated = even.simulate(stimuli, n, "averaging")["unity"].mean(axis=1)
    print(
        f"p_common 0.5: p(report one cause) at {stimuli[:, 0].tolist()} deg: quadrature "
        f"{exact.round(3)}, simulated {simulated.round(3)}"
    )
    assert np.all(np.abs(exact - simulated) < 4 * np.sqrt(0.25 / n) + 1e-3)
    assert np.all(np.diff(exact) < 0) and float(obs.unity_probability(x[:1])[0]) < 1e-3

    # 4. the temporal binding window
    sj = SimultaneityModel()
    soas = np.array([-300.0, -100.0, 0.0, 100.0, 300.0])
    closed, numeric = sj.p_simultaneous(soas), sj.p_simultaneous_quadrature(soas)
    simulated = sj.simulate(soas, n, seed=0).mean(axis=1)
    lo, hi = sj.window()
    print(
        f"p(simultaneous) at SOA {soas.tolist()} ms: {closed.round(3)} "
        f"(integrated {numeric.round(3)}, simulated {simulated.round(3)})"
    )
    print(f"binding window (p = 0.5): {lo:.0f} to {hi:.0f} ms, centred on vision leading")
    assert np.abs(closed - numeric).max() < 1e-3
    assert np.all(np.abs(closed - simulated) < 4 * np.sqrt(0.25 / n))
    assert math.isclose(float(sj.p_simultaneous(lo)), 0.5, abs_tol=1e-6) and -hi < lo < 0 < hi


if __name__ == "__main__":
    main()
