"""Training the image model with the one trainer: interrupted + resumed equals uninterrupted."""

from __future__ import annotations

import pytest
import torch

from synesthesia.data.images import load_image_splits
from synesthesia.diffusion import NoiseSchedule
from synesthesia.nets.unet import UNet, unet_preset
from synesthesia.pipelines.image import ImageRecipe, image_loss_fn


def _trainer(out_dir, loss_fn):
    from synesthesia.training import Trainer, TrainerConfig

    train, _ = load_image_splits("digits8x8")
    torch.manual_seed(0)
    unet = UNet(unet_preset("tiny", image_size=8))
    config = TrainerConfig(
        out_dir=str(out_dir),
        batch_size=16,
        max_steps=8,
        lr=1e-3,
        warmup_steps=2,
        log_every=2,
        progress=False,
        seed=3,
    )
    return Trainer(unet, loss_fn, train, config, model_config={"kind": "image"})


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(tmp_path):
    loss_fn = image_loss_fn(ImageRecipe(), NoiseSchedule("cosine", 1000), null_class=10)
    full = _trainer(tmp_path / "full", loss_fn).fit().losses
    assert len(full) == 8

    calls = {"n": 0}

    def interrupted(model, batch, generator):
        calls["n"] += 1
        if calls["n"] == 4:  # Ctrl-C during step 4: the trainer saves after step 3
            raise KeyboardInterrupt
        return loss_fn(model, batch, generator)

    first = _trainer(tmp_path / "cut", interrupted).fit()
    assert first.stopped == "interrupted" and first.step == 3
    rest = _trainer(tmp_path / "cut", loss_fn).fit(resume=True).losses
    assert first.losses + rest == pytest.approx(full, rel=0, abs=0)


def test_build_model_trains_another_denoiser_with_the_same_recipe(tmp_path):
    """ImageTrainOptions.build_model: the trainer trains the network it returns (benchmarks
    use it for diffusers' U-Net); the default builds our UNet from the same config."""
    from synesthesia.pipelines.image_train import ImageTrainOptions, train_class_to_image

    train, _ = load_image_splits("digits8x8")
    seen = {}

    class Counting(UNet):
        def forward(self, *args, **kwargs):
            seen["calls"] = seen.get("calls", 0) + 1
            return super().forward(*args, **kwargs)

    def build(config):
        seen["config"] = config
        return Counting(config)

    options = ImageTrainOptions(
        out_dir=str(tmp_path),
        preset="tiny",
        max_steps=3,
        batch_size=16,
        progress=False,
        build_model=build,
    )
    pipe, result, _ = train_class_to_image(train, options)
    assert result.step == 3 and seen["calls"] == 3
    assert seen["config"].image_size == 8 and seen["config"].num_classes == 10
    assert isinstance(pipe.unet, Counting)
