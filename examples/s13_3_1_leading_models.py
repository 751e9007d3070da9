"""Section 13.3.1: what separates the leading text-to-image designs, measured on small models.

A few seconds on one CPU thread, no training. The section is descriptive: DALL-E 2/3,
Stable Diffusion and Midjourney are not in this library, and nothing here reproduces them or
their results. What the library can show is the design choice the section names for Stable
Diffusion, diffusion in a compressed latent space (Rombach et al. 2022) against diffusion on
pixels (as Imagen and DALL-E 2's decoder do), on its own two text-to-image U-Nets (the
presets of ``synesthesia train text2image``, untrained here):

1. what the sampler draws: 1 x 28 x 28 = 784 pixels, or a 4 x 7 x 7 latent (196 numbers, a
   quarter) that the KL autoencoder's decoder turns into the image once, at the end;
2. the cost of one image at 20 sampler steps, in floating-point operations counted by
   ``torch.utils.flop_counter`` (exact for a given network, unlike a timing): 20 U-Net
   evaluations on pixels, against 20 on the latent plus one decoder pass;
3. the call both share, in the form users of the diffusers library know (``prompt``,
   ``negative_prompt``, ``guidance_scale``, ``num_inference_steps``, ``generator``, ...).

The measured image quality of both models is in ``benchmarks/RESULTS-text2image.md``; to train
them: ``synesthesia train text2image`` (pixels) and ``--latent AUTOENCODER`` (latents), or
``examples/latent_diffusion.py``.

    python examples/s13_3_1_leading_models.py
"""

from __future__ import annotations

import inspect

import torch
from torch.utils.flop_counter import FlopCounterMode

from synesthesia.nets.autoencoder import AutoencoderConfig, AutoencoderKL
from synesthesia.nets.unet import UNet, unet_preset
from synesthesia.pipelines.text2image import TextToImagePipeline
from synesthesia.pipelines.text2image_train import TEXT_PRESETS

TEXT_WIDTH, TOKENS, STEPS = 64, 8, 20


def text_unet(preset: str, channels: int, size: int) -> UNet:
    """The U-Net ``train text2image`` builds for this preset and sample shape."""
    text = {"num_classes": None, "context_dim": TEXT_WIDTH, "pooled_dim": TEXT_WIDTH}
    return UNet(
        unet_preset("small", **TEXT_PRESETS[preset], in_channels=channels, image_size=size, **text)
    ).eval()


def flops(fn) -> int:
    """Floating-point operations of one call of ``fn`` (no gradients)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def main() -> None:
    torch.manual_seed(0)
    ae_config = AutoencoderConfig()
    c, h, w = ae_config.latent_shape
    pixels = 28 * 28
    print(
        f"pixel model draws 1 x 28 x 28 = {pixels}; latent model draws {c} x {h} x {w} = "
        f"{c * h * w} numbers ({c * h * w / pixels:.0%})"
    )
    assert c * h * w * 4 == pixels

    context = {
        "context": torch.randn(1, TOKENS, TEXT_WIDTH),
        "context_mask": torch.zeros(1, TOKENS, dtype=torch.bool),
        "pooled": torch.randn(1, TEXT_WIDTH),
    }
    t = torch.tensor([500.0])
    pixel_unet, latent_unet = text_unet("small", 1, 28), text_unet("latent", c, h)
    decoder = AutoencoderKL(ae_config).eval()
    per_pixel_step = flops(lambda: pixel_unet(torch.randn(1, 1, 28, 28), t, **context))
    per_latent_step = flops(lambda: latent_unet(torch.randn(1, c, h, w), t, **context))
    decode = flops(lambda: decoder.decode_latents(torch.randn(1, c, h, w)))
    pixel_image = STEPS * per_pixel_step
    latent_image = STEPS * per_latent_step + decode
    for name, net in (("pixel", pixel_unet), ("latent", latent_unet)):
        print(f"{name:>6} U-Net: {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M parameters")
    print(
        f"one evaluation: pixel {per_pixel_step / 1e6:.1f} MFLOP, latent "
        f"{per_latent_step / 1e6:.1f} MFLOP; one decode {decode / 1e6:.1f} MFLOP"
    )
    print(
        f"one image at {STEPS} steps: pixel {pixel_image / 1e9:.2f} GFLOP, latent "
        f"{latent_image / 1e9:.2f} GFLOP ({pixel_image / latent_image:.1f}x fewer); with "
        "guidance each evaluation runs twice in both"
    )
    assert latent_image < pixel_image

    call = inspect.signature(TextToImagePipeline.__call__).parameters
    diffusers_names = (
        "prompt",
        "negative_prompt",
        "guidance_scale",
        "num_inference_steps",
        "generator",
        "num_images_per_prompt",
        "output_type",
    )
    print("pipeline call:", ", ".join(call))
    assert all(name in call for name in diffusers_names)


if __name__ == "__main__":
    main()
