"""Section 13.3.2: text conditioning with classifier-free guidance, and negative prompts.

Trains a tiny text-to-image model on the captioned digits for ``--minutes`` (default 0.3: the
digits it draws are rough; ``--checkpoint`` takes a trained one, e.g. the folder
``synesthesia train text2image --minutes 15`` writes), then

1. computes classifier-free guidance by hand from two U-Net calls, one with the prompt and
   one with the empty prompt (the null condition: the model was trained with 10 % of its
   captions dropped to the empty prompt; a zero embedding would be a condition it never saw),
   and checks it against the library's ``cfg_denoiser``;
2. samples one prompt at guidance 0 (unconditional), 1 (conditional) and 3, same seeds;
3. samples a prompt with and without a negative prompt, which takes the empty prompt's place
   in the unconditional branch (as in diffusers).

Writes ``--out``/guidance.png (one row per guidance scale) and ``--out``/negative.png.

    python examples/text_to_image_conditioning.py
    python examples/text_to_image_conditioning.py --checkpoint runs/text2image/checkpoint
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from synesthesia.data.images import load_image_splits
from synesthesia.diffusion import cfg_denoiser
from synesthesia.pipelines import save_image_grid
from synesthesia.pipelines.text2image import TextToImagePipeline
from synesthesia.pipelines.text2image_train import TextTrainOptions, train_text_to_image


def load_or_train(args: argparse.Namespace) -> TextToImagePipeline:
    if args.checkpoint:
        return TextToImagePipeline.from_pretrained(args.checkpoint)
    train, _ = load_image_splits("mnist5k")
    options = TextTrainOptions(
        out_dir=str(Path(args.out) / "run"),
        preset="tiny",
        minutes=args.minutes,
        warmup_steps=5,  # a short run: leave the warm-up early
        progress=False,
    )
    pipe, result, _ = train_text_to_image(train, options)
    print(f"trained {result.step} steps in {result.wall_s:.0f} s")
    return pipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="a text2image checkpoint folder")
    parser.add_argument("--minutes", type=float, default=0.3, help="training budget otherwise")
    parser.add_argument("--out", default="runs/example-text2image")
    args = parser.parse_args()
    pipe = load_or_train(args).set_precision("fp32")  # float32: the by-hand check is exact

    # 1. CFG by hand (Ho & Salimans 2022, eq. 6): u + w (c - u), at the sampler's first step
    prompt, w = "a thick seven", 3.0
    both = pipe.encode_prompts([prompt, ""])  # one call: one padded length for both
    cond = {k: v[:1] for k, v in both.items()}
    null = {k: v[1:] for k, v in both.items()}
    denoiser = pipe.denoiser()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, *pipe.sample_shape, generator=gen)  # pure noise, as at t = T
    t = torch.full((1,), float(pipe.schedule.num_timesteps - 1))
    with torch.no_grad():
        c, u = denoiser(x, t, **cond), denoiser(x, t, **null)
        guided = cfg_denoiser(denoiser, w, null)(x, t, **cond)
    by_hand = u + w * (c - u)
    print(f"CFG by hand vs cfg_denoiser: max |difference| {(by_hand - guided).abs().max():.1e}")
    assert (by_hand - guided).abs().max() < 1e-5
    print(f"the prompt moves the prediction by {(c - u).abs().mean():.3f} per pixel (mean)")

    # 2. guidance 0 (unconditional), 1 (conditional), 3 (guided): same seeds in every row
    rows = [
        pipe(
            prompt,
            guidance_scale=scale,
            num_inference_steps=20,
            generator=[torch.Generator().manual_seed(i) for i in range(8)],
            num_images_per_prompt=8,
            output_type="pt",
        )
        for scale in (0.0, 1.0, 3.0)
    ]
    out = Path(args.out)
    save_image_grid(torch.cat(rows), out / "guidance.png", nrow=8, scale=3)

    # 3. a negative prompt replaces the empty prompt in the unconditional branch
    def seven(negative):
        return pipe(
            "a seven",
            negative_prompt=negative,
            guidance_scale=3.0,
            num_inference_steps=20,
            generator=[torch.Generator().manual_seed(i) for i in range(8)],
            num_images_per_prompt=8,
            output_type="pt",
        )

    plain, not_thin = seven(None), seven("a thin seven")
    save_image_grid(torch.cat([plain, not_thin]), out / "negative.png", nrow=8, scale=3)
    ink = [float((im > 0).float().mean()) for im in (plain, not_thin)]
    print(f"ink share: 'a seven' {ink[0]:.3f}; with negative 'a thin seven' {ink[1]:.3f}")
    print(f"wrote {out / 'guidance.png'} (rows: w = 0, 1, 3) and {out / 'negative.png'}")


if __name__ == "__main__":
    main()
