"""Chapter 13.5 on a network: does a network trained on audiovisual scenes localise like a
Bayesian causal-inference observer? A short version of ``synesthesia probe ventriloquist``.

Trains a small localisation network on scenes with one source half of the time, probes it with
the Koerding et al. (2007) design (5 x 5 positions, fresh noise every trial), fits causal
inference, forced fusion and full segregation to its button reports by maximum likelihood, and
plots its localisation bias next to the human fit.

    .venv/bin/python examples/probes_ventriloquist.py [out_dir]
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from synesthesia.probes.plots import plot_network_bias  # noqa: E402
from synesthesia.probes.ventriloquist import (  # noqa: E402
    VentriloquistConfig,
    human_reference,
    ideal_observer,
    probe_network,
    train_localiser,
)

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")

# 1. a world where one source causes both senses with probability 0.5 (vision sharper)
config = VentriloquistConfig(steps=800)
print("ideal observer of this world:", ideal_observer(config, 0.5))

# 2. train the network on fresh scenes (seconds), then probe it: 25 conditions x 40 trials
trained = train_localiser(0.5, config, seed=0)
print(f"trained {config.steps} steps in {trained.wall_s:.1f} s; last loss {trained.losses[-1]:.3f}")
probe = probe_network(trained, 40, models=("averaging", "fusion", "segregation"), n_starts=1)

# 3. the brain's models fitted to the network's reports
print(probe.comparison.table())
print(probe.comparison.fits["averaging"].table())
for other in ("fusion", "segregation"):
    print(f"BIC advantage of causal inference over {other}: "
          f"{probe.comparison.delta_bic('averaging', other):.1f}")  # fmt: skip

# 4. the network's bias against disparity, next to the human fit
fig, ax = plt.subplots(figsize=(6, 4))
plot_network_bias(probe, human_reference(), ax=ax)
fig.tight_layout()
fig.savefig(out / "probes_ventriloquist.png", dpi=110)
print(f"wrote {out / 'probes_ventriloquist.png'}")
# the network's reports favour causal inference over both nested models (Kass & Raftery 1995)
assert min(probe.comparison.delta_bic("averaging", m) for m in ("fusion", "segregation")) > 10
