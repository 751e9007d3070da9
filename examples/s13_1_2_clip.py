"""Section 13.1.2: contrastive learning (CLIP): the loss, its temperature, and training.

About ten seconds on one CPU thread.

1. The symmetric InfoNCE loss (``multimodal.info_nce``; Radford et al. 2021, Fig. 3) against
   the two cross-entropies written out with logsumexp; its value log N when nothing is
   aligned, and near 0 when every pair is; with several positives in a row (two captions
   that are the same text) the target is spread over them (UniCL, Yang et al. 2022, eq. 3).
2. The learnable temperature (``LogitScale``): it starts at 1 / 0.07 and is clamped at 100,
   as in CLIP and open_clip.
3. ``--steps`` of training on digit images and their captions with the project's trainer:
   the loss starts at the chance level, about log(batch), and falls below it; on held-out
   images, each image's own caption is retrieved among 200 above the chance rate (by a
   binomial margin).

For real quality: ``synesthesia train clip --minutes 5`` (``benchmarks/RESULTS-clip.md``).

    python examples/s13_1_2_clip.py [--steps 100]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from synesthesia.multimodal import LogitScale, bidirectional_retrieval, info_nce
from synesthesia.multimodal.train import ClipTrainOptions, train_clip


def loss_by_hand(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Mean over rows and over columns of -sum_j target_ij log softmax_j(logits_ij)."""
    target_rows = positives / positives.sum(1, keepdim=True)
    target_cols = positives / positives.sum(0, keepdim=True)
    rows = -(target_rows * (logits - logits.logsumexp(1, keepdim=True))).sum(1).mean()
    cols = -(target_cols * (logits - logits.logsumexp(0, keepdim=True))).sum(0).mean()
    return (rows + cols) / 2


def the_loss() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 8, generator=g, dtype=torch.float64) * 3
    eye = torch.eye(8, dtype=torch.float64)
    err = float((info_nce(logits) - loss_by_hand(logits, eye)).abs())
    print(f"InfoNCE vs the cross-entropies by hand: |difference| {err:.1e}")
    assert err < 1e-12
    same = torch.zeros(8, 8, dtype=torch.float64)  # every pair equally similar
    aligned = 100.0 * eye  # unit vectors, matched pairs at cosine 1, others at 0, scale 100
    print(
        f"nothing aligned: {float(info_nce(same)):.4f} = log 8 = {math.log(8):.4f}; "
        f"all aligned: {float(info_nce(aligned)):.1e}"
    )
    assert math.isclose(float(info_nce(same)), math.log(8), rel_tol=1e-12)
    assert float(info_nce(aligned)) < 1e-30
    pairs = eye.clone().bool()
    pairs[0, 1] = pairs[1, 0] = pairs[1, 1] = pairs[0, 0] = True  # items 0 and 1: same text
    err = float((info_nce(logits, pairs) - loss_by_hand(logits, pairs.double())).abs())
    print(f"two positives in a row (UniCL): |difference| from by hand {err:.1e}")
    assert err < 1e-12

    scale = LogitScale()
    start = float(scale.scale.detach())
    print(f"temperature: starts at scale {start:.2f} (1/0.07 = {1 / 0.07:.2f})")
    with torch.no_grad():
        scale.log_scale.fill_(math.log(1000.0))
    print(f"pushed to 1000, the scale reads {float(scale.scale.detach()):.1f} (clamped)")
    assert math.isclose(float(scale.scale.detach()), 100.0, rel_tol=1e-6)


def train(steps: int, out: Path) -> None:
    options = ClipTrainOptions(
        out_dir=str(out),
        modalities=("image", "text"),
        max_steps=steps,
        batch_size=64,
        precision="fp32",
        progress=False,
    )
    model, result, world = train_clip(options)
    first, last = result.losses[0], sum(result.losses[-20:]) / len(result.losses[-20:])
    print(
        f"{result.step} steps: loss {first:.3f} at the start (log 64 = {math.log(64):.3f}), "
        f"{last:.3f} at the end"
    )
    # chance at the start (random embeddings), clearly better than chance at the end
    assert first > math.log(64) - 0.5 and last < math.log(64) - 0.5

    n = 200  # held-out images, one caption each; a hit is the very same caption text
    captions = [c[0] for c in world.captions["val"][:n]]
    same_text = torch.tensor([[a == b for b in captions] for a in captions])
    chance = float(same_text.float().mean())
    images = model.embed_images(world.images["val"].images[:n])
    scores = bidirectional_retrieval(
        images, model.embed_texts(captions), same_text, names=("image", "caption")
    )
    r1 = scores["image_to_caption"]["R@1"]
    print(
        f"held-out image -> its caption among {n}: R@1 {r1:.1%} (chance {chance:.1%}); "
        f"caption -> image R@1 {scores['caption_to_image']['R@1']:.1%}"
    )
    assert r1 > chance + 4 * math.sqrt(chance * (1 - chance) / n)  # a binomial margin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="contrastive training steps")
    parser.add_argument("--out", type=Path, default=Path("runs") / "example-clip")
    args = parser.parse_args()
    the_loss()
    train(args.steps, args.out)


if __name__ == "__main__":
    main()
