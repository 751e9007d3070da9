"""Section 13.5.1: the computations attributed to the brain's multisensory areas.

Seconds on one CPU thread, no training. The library has no model of brain anatomy (nothing
here simulates the superior temporal sulcus, posterior parietal or prefrontal cortex). What it
models are the computations that multisensory areas are found to perform, and this example
checks those against their closed forms and Monte Carlo:

1. reliability-weighted cue combination (Ernst & Banks 2002 for vision and touch; visual and
   vestibular heading cues are weighted this way by monkeys and by neurons of area MSTd,
   Fetsch et al. 2012): the weights are ``1/sigma_i^2`` normalised, the fused estimate is
   less variable than the best cue, and the bimodal discrimination threshold follows from
   the unimodal ones;
2. re-weighting: as vision gets noisier its weight falls (Ernst & Banks 2002, Fig. 3);
3. multisensory enhancement (the superior colliculus' signature, Stein & Meredith 1993): in
   the m-alternative signal-detection model a combination of independent evidence beats the
   better single sense by the amount ``probes.enhancement.ml_prediction`` gives; its
   accuracy formula is checked against a simulation of the choices.

For a real experiment fit the model to trial data instead of choosing sigmas
(``synesthesia brain fit``, ``examples/brain_ventriloquist.py``).

    python examples/s13_5_1_multisensory_areas.py
"""

from __future__ import annotations

import math

import numpy as np

from synesthesia.brain import (
    discrimination_threshold,
    fuse,
    fused_sigma,
    mle_weights,
    predicted_bimodal_threshold,
)
from synesthesia.probes.enhancement import mafc_accuracy, mafc_d_prime, ml_prediction


def cue_combination(rng: np.random.Generator) -> None:
    sigmas = np.array([1.0, 2.0, 4.0])  # vision, touch, audition (illustrative noise levels)
    reliability = 1.0 / sigmas**2
    weights = mle_weights(sigmas)
    here = reliability / reliability.sum()
    print(f"cue weights {weights.round(4)}; 1/sigma^2, normalised here: {here.round(4)}")
    assert np.allclose(weights, here, rtol=1e-12)

    n, truth = 200_000, 3.0
    cues = truth + sigmas * rng.standard_normal((n, 3))  # each cue unbiased, its own noise
    fused = fuse(cues, sigmas)
    sd, se = float(np.std(fused.estimate)), fused.sigma / math.sqrt(2 * (n - 1))
    print(
        f"fused sd: simulated {sd:.4f}, closed form {fused.sigma:.4f} "
        f"(best single cue {sigmas.min():.1f})"
    )
    assert abs(sd - fused.sigma) < 4 * se and fused.sigma < sigmas.min()
    assert abs(float(np.mean(fused.estimate)) - truth) < 4 * fused.sigma / math.sqrt(n)

    single = discrimination_threshold(sigmas[:2])  # two-interval JNDs of vision and touch
    bimodal = predicted_bimodal_threshold(single)
    direct = discrimination_threshold(fused_sigma(sigmas[:2]))
    print(
        f"JNDs: vision {single[0]:.3f}, touch {single[1]:.3f}; predicted together "
        f"{bimodal:.3f} (from the fused sigma: {direct:.3f})"
    )
    assert math.isclose(bimodal, direct, rel_tol=1e-12)


def reweighting() -> None:
    touch = 2.0
    visual = np.array([0.5, 1.0, 2.0, 4.0, 8.0])  # vision made noisier (Ernst & Banks: blur)
    w_v = mle_weights(np.stack([visual, np.full_like(visual, touch)], axis=-1))[:, 0]
    print("visual weight as vision gets noisier:", w_v.round(3))
    assert np.all(np.diff(w_v) < 0) and math.isclose(w_v[2], 0.5)  # equal noise: equal weight


def enhancement(rng: np.random.Generator) -> None:
    m = 10  # name one of ten digits
    d_a, d_b = 1.0, 1.5
    for d in (d_a, d_b):
        evidence = rng.standard_normal((100_000, m))
        evidence[:, 0] += d  # the right answer carries d' more evidence
        simulated = float(np.mean(evidence.argmax(1) == 0))
        print(
            f"{m}-alternative accuracy at d'={d}: formula {mafc_accuracy(d, m):.4f}, "
            f"simulated {simulated:.4f}"
        )
        assert abs(simulated - mafc_accuracy(d, m)) < 4 * math.sqrt(0.25 / 100_000)
    acc_a, acc_b = mafc_accuracy(d_a, m), mafc_accuracy(d_b, m)
    together = ml_prediction(acc_a, acc_b, m)
    expected = mafc_accuracy(math.hypot(d_a, d_b), m)  # d'^2 add for independent evidence
    print(
        f"accuracy: A {acc_a:.3f}, B {acc_b:.3f}, optimal combination {together:.3f}; "
        f"enhancement {together - max(acc_a, acc_b):+.3f}"
    )
    assert math.isclose(together, expected, rel_tol=1e-6) and together > max(acc_a, acc_b)
    assert math.isclose(mafc_d_prime(acc_a, m), d_a, rel_tol=1e-6)


def main() -> None:
    rng = np.random.default_rng(0)
    cue_combination(rng)
    reweighting()
    enhancement(rng)


if __name__ == "__main__":
    main()
