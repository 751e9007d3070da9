"""Chapter 13.5: multisensory integration in the brain, end to end in a few seconds.

Simulates the Koerding et al. (2007) ventriloquist experiment, fits Bayesian causal inference
to the simulated trials by maximum likelihood, compares decision strategies, checks the fit,
and shows the flash and McGurk illusions and the temporal binding window.

    .venv/bin/python examples/brain_ventriloquist.py [out_dir]
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from synesthesia.brain import (  # noqa: E402
    KOERDING_2007,
    McGurkModel,
    SimultaneityModel,
    fission_vs_visual_noise,
    fit_causal_inference,
    mcgurk_rates,
    posterior_predictive,
    ventriloquist,
)
from synesthesia.brain.plots import plot_fit, plot_localisation_bias  # noqa: E402

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")

# 1. simulate 25 conditions x 40 trials with the published parameters
exp = ventriloquist(n_per_condition=40, seed=0)
trials = exp.trials
trials.unity = None  # fit the joint localisation reports only

# 2. fit by maximum likelihood (deterministic quadrature likelihood, exact gradients)
fit = fit_causal_inference(trials, "averaging", levels=exp.levels)
print(fit.table())

# 3. does the fitted model reproduce the data?
ppc = posterior_predictive(fit, trials)
print(f"posterior predictive coverage: {ppc.coverage:.2f}")
fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
plot_localisation_bias(exp, ax=a1)
plot_fit(ppc, modality=1, ax=a2)
fig.tight_layout()
fig.savefig(out / "brain_ventriloquist.png", dpi=110)

# 4. illusions
print("fission illusion vs visual noise:", fission_vs_visual_noise([0.3, 0.6, 0.9]).round(3))
print(
    "McGurk fusion rates (illustrative parameters, not fitted):",
    mcgurk_rates(McGurkModel().table()),
)
lo, hi = SimultaneityModel().window()
print(f"binding window (ms): ({lo:.0f}, {hi:.0f})")

# 5. checks: the fit recovers the simulating parameters, the model reproduces the data, the
# fission illusion grows with visual noise (Shams et al. 2005), the window brackets synchrony
for name, value in KOERDING_2007.items():
    if name in fit.se:
        assert abs(fit.params[name] - value) < 4 * fit.se[name], (name, fit.params[name])
assert ppc.coverage >= 0.8
assert (np.diff(fission_vs_visual_noise([0.3, 0.6, 0.9])) > 0).all() and lo < 0 < hi
