"""Section 13.6 code lab: train a small class-conditional diffusion model and sample digits.

Runs in about a minute on a laptop CPU with sklearn's 8x8 digits (``--data mnist5k`` and
``--minutes 10`` for the real 28x28 digits). Writes ``runs/example-image/grid.png``.

    python examples/class_to_image.py
"""

from __future__ import annotations

import argparse

import torch

from synesthesia.data.images import load_image_splits
from synesthesia.pipelines import save_image_grid
from synesthesia.pipelines.image_train import ImageTrainOptions, train_class_to_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits8x8")
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--out", default="runs/example-image")
    args = parser.parse_args()

    train, _ = load_image_splits(args.data)
    preset = "tiny" if train.images.shape[-1] <= 8 else "small"
    options = ImageTrainOptions(out_dir=args.out, preset=preset, minutes=args.minutes)
    pipe, result, _ = train_class_to_image(train, options)

    settings = dict(
        class_labels=list(range(10)),
        num_images_per_prompt=8,
        guidance_scale=2.0,
        num_inference_steps=20,
        method="dpmpp_2m",
    )
    images = pipe(**settings, generator=torch.Generator().manual_seed(0))
    path = save_image_grid(images, f"{args.out}/grid.png", nrow=8, scale=4)
    print(f"{result.step} training steps; one row per class in {path}")
    # the same seed gives the same images; the samples are images of the training shape
    assert torch.equal(images, pipe(**settings, generator=torch.Generator().manual_seed(0)))
    assert images.shape == (80, *train.images.shape[1:]) and images.abs().max() <= 1


if __name__ == "__main__":
    main()
