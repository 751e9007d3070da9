"""Section 13.5.3: hierarchical sensory processing, from tuning curves to categories.

Under a minute on one CPU thread (a short training of the evaluator network). The library
models no brain data here; it has two pieces of the hierarchy the section describes, and this
example checks what each can be checked against:

1. The first stage, a population code (``probes.population``; Dayan & Abbott 2001, sec. 3.3):
   neurons with Gaussian tuning curves and noise. The noiseless code peaks at the stimulus,
   and maximum-likelihood decoding of noisy codes reaches the Cramer-Rao bound that the
   code's Fisher information sets (the sensory noise the ventriloquist probe's networks see).
2. The chapter's own stack, V1 -> V2/V4 -> IT -> association -> decision
   (``nets.classifier.HierarchicalSensoryNet``, the evaluator of generated digits), trained
   for ``--steps`` on the built-in digits: the resolution falls stage by stage (V1 at 14,
   V2/V4 and IT at 7 pixels, then one vector) and the digit's identity becomes linearly
   readable from the stage's features (a logistic-regression probe on channel averages, so
   that every stage gives the same spatially pooled kind of code): the association area's
   code is read best.

Multisensory integration higher up the hierarchy is in ``examples/probes_ventriloquist.py``
(a network fed two population codes, fitted like an observer). For real quality train the
evaluator for its default 700 steps (``synesthesia eval`` does, once, and caches it).

    python examples/s13_5_3_hierarchical.py [--steps 60]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from synesthesia.data.images import load_image_splits
from synesthesia.metrics.evaluator import train_evaluator
from synesthesia.multimodal.probes import logistic_regression_accuracy
from synesthesia.probes.population import PopulationCode


def population_code() -> None:
    code = PopulationCode.with_sigma(2.0, width=12.0, n_neurons=160, low=-120.0, high=120.0)
    peak = float(code.centres()[code.mean(7.5).argmax()])
    print(f"noiseless code for a source at 7.5 deg peaks at the neuron preferring {peak:.1f}")
    assert abs(peak - 7.5) <= (code.high - code.low) / (code.n_neurons - 1) / 2
    n = 4000
    r = code.encode(torch.full((n,), 7.5), generator=torch.Generator().manual_seed(0))
    decoded = code.ml_decode(r)
    sd, bound = float(decoded.std()), code.sigma(7.5)
    print(f"maximum-likelihood decoding: sd {sd:.3f} deg; Cramer-Rao bound {bound:.3f} deg")
    # the bound is asymptotic; at this code's width / noise ratio the decoder is within 5 %
    assert abs(sd / bound - 1) < 0.05 + 4 / math.sqrt(2 * n)
    assert abs(float(decoded.mean()) - 7.5) < 4 * bound / math.sqrt(n)


def pooled(features: torch.Tensor) -> torch.Tensor:
    """Channel averages of a feature map (B, C, H, W); a feature vector as it is."""
    return features.mean(dim=(2, 3)) if features.ndim == 4 else features


def stages(net, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each stage's output for images x (eval mode, no gradients)."""
    with torch.no_grad():
        v1 = net.v1(x)
        v2 = net.v2_v4(v1)
        it = net.it(v2)
        return {"V1": v1, "V2/V4": v2, "IT": it, "association": net.association(it)}


def visual_hierarchy(steps: int, out: Path) -> None:
    train, val = load_image_splits("mnist5k")
    net, config = train_evaluator(
        train, val, out / "evaluator", steps=steps, batch_size=64, progress=False
    )
    net.eval()
    acc = config["val_accuracy"]  # measured by train_evaluator on the 1,000 held-out digits
    print(f"evaluator after {steps} steps: {acc:.1%} of held-out digits named right")
    assert acc > 0.5
    g = torch.Generator().manual_seed(0)  # random subsets: the splits are ordered by class
    pick = torch.randperm(len(train), generator=g)[:1000]
    held = torch.randperm(len(val), generator=g)[:500]
    tr, va = stages(net, train.images[pick]), stages(net, val.images[held])
    scores = {}
    for name in tr:
        shape = tuple(tr[name].shape[1:])
        scores[name] = logistic_regression_accuracy(
            pooled(tr[name]), train.labels[pick], pooled(va[name]), val.labels[held]
        )
        print(
            f"{name:>12}: output {shape}; digit read linearly from channel means {scores[name]:.1%}"
        )
    sizes = [tr[k].shape[-1] for k in ("V1", "V2/V4", "IT")]
    assert sizes == [14, 7, 7] and tr["association"].ndim == 2
    assert (
        scores["V1"] < scores["V2/V4"] < scores["IT"] and scores["association"] > scores["V1"] + 0.1
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="evaluator training steps")
    parser.add_argument("--out", type=Path, default=Path("runs") / "example-hierarchy")
    args = parser.parse_args()
    population_code()
    visual_hierarchy(args.steps, args.out)


if __name__ == "__main__":
    main()
