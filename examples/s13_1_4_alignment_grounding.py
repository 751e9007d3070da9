"""Section 13.1.4: alignment and grounding: zero-shot naming, and words tied to pixels.

About ten seconds on one CPU thread (``--steps`` of contrastive training on images and
captions).

1. Alignment: a held-out image and its own caption are more similar than the image and
   another image's caption (mean cosine similarities).
2. Zero-shot classification (CLIP's test, Radford et al. 2021, sec. 3.1): the 1,000 held-out
   digits are named by the nearest of ten text prompts (``ZeroShotClassifier.from_prompts``,
   template ensembling), with no labelled image used; against chance (10 %) by a binomial
   margin (logistic regression on raw pixels, which uses the 4,000 labels, scores 91.9 %).
3. Grounding: do the attribute words mean what the pixels show? For each held-out image the
   caption with its measured word ("a thick seven") is compared with the same caption with
   the opposite word ("a thin seven"); the balanced score is 50 % for a model that prefers
   one word for every image. The attribute words are grounded within the first hundred
   steps or so; each must beat chance by a binomial margin.

For real quality: ``synesthesia train clip --minutes 5`` and ``--checkpoint`` for its folder.

    python examples/s13_1_4_alignment_grounding.py [--steps 100]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from synesthesia.multimodal import JointEmbeddingModel
from synesthesia.multimodal.evaluate import build_world_for, evaluate_clip
from synesthesia.multimodal.train import ClipTrainOptions, train_clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="contrastive training steps")
    parser.add_argument("--checkpoint", default=None, help="a `train clip` checkpoint folder")
    parser.add_argument("--out", type=Path, default=Path("runs") / "example-grounding")
    args = parser.parse_args()
    if args.checkpoint:
        model = JointEmbeddingModel.from_pretrained(args.checkpoint)
        world = build_world_for(model, n_speech=0, progress=False)
    else:
        options = ClipTrainOptions(
            out_dir=str(args.out),
            modalities=("image", "text"),
            max_steps=args.steps,
            precision="fp32",
            progress=False,
        )
        model, result, world = train_clip(options)
        print(f"trained {result.step} steps in {result.wall_s:.0f} s")
    model.eval()
    val = world.images["val"]

    # 1. alignment
    images = model.embed_images(val.images)
    captions = model.embed_texts([c[0] for c in world.captions["val"]])
    sim = images @ captions.T
    own = float(sim.diagonal().mean())
    other = float((sim.sum() - sim.diagonal().sum()) / (sim.numel() - len(sim)))
    print(f"cosine, image vs its own caption {own:.3f}; vs other images' captions {other:.3f}")
    assert own > other

    # 2. zero-shot naming, 3. grounding
    scores = evaluate_clip(model, world, baselines=False)
    zero_shot = scores["zero_shot"]["image_from_text_prompts"]
    print(
        f"zero-shot from text prompts: {zero_shot:.1%} of {len(val)} held-out digits "
        f"(bare number word: {scores['zero_shot']['image_from_bare_word']:.1%}; logistic "
        "regression on raw pixels with the 4,000 labels: 91.9 %, benchmarks/out/"
        "clip_5min.json)"
    )
    assert zero_shot > 0.1 + 4 * math.sqrt(0.09 / len(val))
    for key in ("balanced_thickness", "balanced_slant", "balanced_size"):
        entry = scores["grounding"].get(key)
        if entry is not None:
            print(
                f"grounding, {key.removeprefix('balanced_')}: {entry['accuracy']:.1%} of "
                f"{entry['n']} comparisons (chance 50 %)"
            )
            assert entry["accuracy"] > 0.5 + 4 * math.sqrt(0.25 / entry["n"]), key


if __name__ == "__main__":
    main()
