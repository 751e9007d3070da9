"""Section 13.1.1: cross-modal representations: digits and their names in one space.

About ten seconds on one CPU thread (``--steps`` of contrastive training on the built-in
digits and captions).

1. The model: one encoder per modality (a small CNN for 28 x 28 digits, a small transformer for
   captions), each followed by a projection head (the two-layer MLP of the chapter's
   ``MultimodalEncoder``) into the same 64-dimensional space, normalised to unit length, so a
   cosine similarity is a dot product.
2. Whether the space relates the modalities, by representational similarity analysis
   (Kriegeskorte et al. 2008, the method that compares brain areas): the 10 x 10 similarities
   of the digits' mean image embeddings against those of their names' embeddings (Spearman
   correlation of the 45 pairs), and how many digits' images lie nearest their own name;
   before training (the architecture alone relates nothing) and after ``--steps``.

For real quality train for minutes (``synesthesia train clip --minutes 5``: 98.6 % zero-shot
in ``benchmarks/RESULTS-clip.md``) and pass its checkpoint with ``--checkpoint``.

    python examples/s13_1_1_cross_modal.py [--steps 100] [--checkpoint runs/clip/checkpoint]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from scipy.stats import spearmanr

from synesthesia.multimodal import JointEmbeddingConfig, JointEmbeddingModel, ZeroShotClassifier
from synesthesia.multimodal.evaluate import build_world_for
from synesthesia.multimodal.train import ClipTrainOptions, train_clip


def geometry(model: JointEmbeddingModel, world) -> tuple[float, int]:
    """(RSA correlation between image and name geometry, digits nearest their own name)."""
    val = world.images["val"]
    images = model.embed_images(val.images)
    means = torch.stack([images[val.labels == c].mean(0) for c in range(10)])
    means = means / means.norm(dim=1, keepdim=True)
    names = ZeroShotClassifier.from_prompts(model).class_embeddings  # 10 x D, unit rows
    i, j = torch.triu_indices(10, 10, offset=1)
    rsa = spearmanr((means @ means.T)[i, j], (names @ names.T)[i, j]).statistic
    own = int(((means @ names.T).argmax(1) == torch.arange(10)).sum())
    return float(rsa), own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="contrastive training steps")
    parser.add_argument("--checkpoint", default=None, help="a `train clip` checkpoint folder")
    parser.add_argument("--out", type=Path, default=Path("runs") / "example-cross-modal")
    args = parser.parse_args()

    config = JointEmbeddingConfig(modalities=("image", "text"))
    torch.manual_seed(0)  # the architecture and seed train_clip starts from
    model = JointEmbeddingModel(config).eval()
    world = build_world_for(model, progress=False)
    for name in config.modalities:
        print(
            f"{name:>5} tower: {model.encoders[name].out_dim} features -> "
            f"{config.embed_dim}-d joint space"
        )
    img = model.embed_images(world.images["val"].images[:4])
    txt = model.embed_texts(["a seven", "the number 3", "a thick two", "a small four"])
    print(
        f"embedding norms: images {img.norm(dim=1).numpy().round(4)}, "
        f"captions {txt.norm(dim=1).numpy().round(4)}"
    )
    assert torch.allclose(img.norm(dim=1), torch.ones(4)) and img.shape == txt.shape

    rsa0, own0 = geometry(model, world)
    print(f"untrained: RSA {rsa0:+.2f}; {own0} of 10 digits nearest their own name")
    if args.checkpoint:
        model = JointEmbeddingModel.from_pretrained(args.checkpoint)
    else:
        options = ClipTrainOptions(
            out_dir=str(args.out),
            modalities=config.modalities,
            max_steps=args.steps,
            precision="fp32",
            progress=False,
        )
        model, result, _ = train_clip(options, world=world)
        print(f"trained {result.step} steps in {result.wall_s:.0f} s")
    rsa, own = geometry(model.eval(), world)
    print(f"trained: RSA {rsa:+.2f}; {own} of 10 digits nearest their own name")
    assert rsa > 0.3 and rsa > rsa0 and own >= 8


if __name__ == "__main__":
    main()
