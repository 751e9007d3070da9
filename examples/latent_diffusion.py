"""Section 13.3.3: latent diffusion, the text-conditioned U-Net in an autoencoder's latent space.

Runs in well under a minute on a CPU (short budgets: the images are rough; ``--autoencoder``
and ``--checkpoint`` take trained folders, e.g. from ``synesthesia train autoencoder
--minutes 5`` and ``synesthesia train text2image --latent AUTOENCODER --minutes 15``):

1. trains the KL autoencoder (28 x 28 x 1 digits to 4 x 7 x 7 latents: a quarter of the
   pixel count) and reads its measured scaling factor, 1 / std of the training latents
   (Rombach et al. 2022, sec. 4.3);
2. checks that the factor is applied on encode and removed on decode, and that the scaled
   latents have unit standard deviation;
3. trains the text-conditioned U-Net on the scaled latents and samples with the same
   ``TextToImagePipeline`` as in pixel space: the sampler starts from latent noise and the
   decoder turns the final latents into digits.

Writes ``--out``/reconstructions.png (originals above reconstructions) and
``--out``/samples.png.

    python examples/latent_diffusion.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from synesthesia.data.images import load_image_splits
from synesthesia.pipelines import save_image_grid
from synesthesia.pipelines.autoencoder import (
    AutoencoderTrainOptions,
    comparison_grid,
    latent_moments,
    load_autoencoder,
    train_autoencoder,
)
from synesthesia.pipelines.text2image import TextToImagePipeline
from synesthesia.pipelines.text2image_train import TextTrainOptions, train_text_to_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--autoencoder", default=None, help="an autoencoder checkpoint folder")
    parser.add_argument("--checkpoint", default=None, help="a latent text2image checkpoint")
    parser.add_argument("--ae-minutes", type=float, default=0.2)
    parser.add_argument("--minutes", type=float, default=0.3)
    parser.add_argument("--out", default="runs/example-latent")
    args = parser.parse_args()
    out = Path(args.out)
    train, val = load_image_splits("mnist5k")

    # 1. the autoencoder and its scaling factor
    folder = args.autoencoder
    if folder is None:
        ae_options = AutoencoderTrainOptions(
            out_dir=str(out / "autoencoder"), minutes=args.ae_minutes, progress=False
        )
        train_autoencoder(train, ae_options)
        folder = str(out / "autoencoder" / "checkpoint")
    ae = load_autoencoder(folder)
    c, h, w = ae.config.latent_shape
    print(f"latent {c} x {h} x {w} = {c * h * w} numbers for 28 x 28 = 784 pixels")
    raw = latent_moments(ae, train.images)  # posterior samples over the training set
    print(f"scaling factor {ae.scaling_factor:.4f} = 1 / std {raw['std']:.4f} of the latents")

    # 2. scaled on encode, unscaled on decode
    x = val.images[:16]
    with torch.no_grad():
        z = ae.encode_latents(x)  # scaling_factor * posterior mean
        unscaled = ae.encode(x).mode()
        back = ae.decode_latents(z)  # decode(z / scaling_factor)
        direct = ae.decode(unscaled)
    print(
        f"encode_latents / scaling factor vs the posterior mean: "
        f"{(z / ae.scaling_factor - unscaled).abs().max():.1e}"
    )
    print(f"decode_latents vs decode of the unscaled mean: {(back - direct).abs().max():.1e}")
    scaled = latent_moments(ae, train.images, scaled=True)
    print(f"std of the scaled training latents: {scaled['std']:.3f}")
    assert (z / ae.scaling_factor - unscaled).abs().max() < 1e-5
    assert (back - direct).abs().max() < 1e-5
    assert abs(scaled["std"] - 1) < 0.05 and c * h * w * 4 == 28 * 28
    comparison_grid(ae, x, out / "reconstructions.png", nrow=16, scale=2)

    # 3. latent diffusion: the same pipeline class, a latent sample shape, a decoder at the end
    if args.checkpoint:
        pipe = TextToImagePipeline.from_pretrained(args.checkpoint)
    else:
        options = TextTrainOptions(
            out_dir=str(out / "latent"),
            preset="tiny",
            minutes=args.minutes,
            warmup_steps=5,  # a short run: leave the warm-up early
            autoencoder=folder,
            progress=False,
        )
        pipe, result, _ = train_text_to_image(train, options)
        print(f"latent U-Net trained {result.step} steps")
    print(f"latent model: {pipe.latent}; the sampler draws {pipe.sample_shape}")
    images = pipe(
        ["a seven", "a thick three", "a left-slanted five", "a small four"],
        guidance_scale=3.0,
        num_inference_steps=20,
        generator=torch.Generator().manual_seed(0),
        num_images_per_prompt=8,
        output_type="pt",
    )
    save_image_grid(images, out / "samples.png", nrow=8, scale=3)
    print(f"decoded samples {tuple(images.shape)}; wrote {out / 'samples.png'}")


if __name__ == "__main__":
    main()
