"""The class-to-image pipeline: call options, sampler wiring, persistence, training recipe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synesthesia.diffusion import NoiseSchedule, diffusion_loss, sample
from synesthesia.nets.unet import UNet, unet_preset
from synesthesia.pipelines import ClassToImagePipeline, image_grid
from synesthesia.pipelines.image import ImageRecipe, image_loss_fn


@pytest.fixture(scope="module")
def pipe() -> ClassToImagePipeline:
    torch.manual_seed(0)
    unet = UNet(unet_preset("tiny", image_size=8))
    with torch.no_grad():  # an untrained but non-trivial network (no zero branches)
        for p in unet.parameters():
            if p.abs().max() == 0:
                p.normal_(std=0.05)
    schedule = NoiseSchedule("cosine", 1000)
    return ClassToImagePipeline(unet, schedule, "v", {"data": "digits8x8"}, precision="fp32")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_output_types_and_shapes(pipe):
    pt = pipe([1, 2], num_inference_steps=3, num_images_per_prompt=2, generator=_gen())
    assert pt.shape == (4, 1, 8, 8) and pt.dtype == torch.float32
    assert pt.min() >= -1 and pt.max() <= 1
    arr = pipe(
        [1, 2], num_inference_steps=3, num_images_per_prompt=2, generator=_gen(), output_type="np"
    )
    assert arr.shape == (4, 8, 8, 1) and arr.dtype == np.float32
    np.testing.assert_allclose(arr, ((pt + 1) / 2).permute(0, 2, 3, 1).numpy(), atol=1e-6)
    pil = pipe(3, num_inference_steps=2, generator=_gen(), output_type="pil")
    assert len(pil) == 1 and pil[0].size == (8, 8) and pil[0].mode == "L"


def test_same_seed_same_images_and_batching(pipe):
    a = pipe([0, 5, 9], num_inference_steps=4, generator=_gen(3))
    b = pipe([0, 5, 9], num_inference_steps=4, generator=_gen(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, pipe([0, 5, 9], num_inference_steps=4, generator=_gen(4)))


@pytest.mark.parametrize("w", [0.0, 1.0, 2.5])
def test_guidance_matches_direct_sampler_calls(pipe, w):
    """The pipeline equals the sampler driven by hand with u + w (c - u) (Ho & Salimans eq. 6)."""
    labels = torch.tensor([4, 7])
    got = pipe(
        labels,
        guidance_scale=w,
        num_inference_steps=5,
        method="ddim",
        generator=_gen(1),
    )

    def by_hand(x, t, labels):
        c = pipe.unet(x, t, labels=labels)
        u = pipe.unet(x, t, labels=torch.full_like(labels, 10))
        return u + w * (c - u)

    want = sample(
        by_hand,
        (2, 1, 8, 8),
        pipe.schedule,
        method="ddim",
        steps=5,
        prediction="v",
        generator=_gen(1),
        cond={"labels": labels},
        clip_x0=1.0,
        progress=False,
    )
    torch.testing.assert_close(got, want.clamp(-1, 1), atol=2e-5, rtol=1e-4)


def test_save_is_one_atomic_folder(pipe, tmp_path, monkeypatch):
    """A crash while writing leaves the old folder whole: never new weights beside an old config."""
    import synesthesia.io as io

    folder = pipe.save_pretrained(tmp_path / "p")
    before = {f.name: f.read_bytes() for f in folder.iterdir()}
    other = ClassToImagePipeline(
        UNet(unet_preset("tiny", image_size=8)), pipe.schedule, "v", {"data": "x"}
    )

    def crash(*args, **kwargs):
        raise OSError("disk full")

    real = io.tensors_to_bytes
    monkeypatch.setattr(io.Path, "write_text", crash)  # config.json fails after the weights
    with pytest.raises(OSError, match="disk full"):
        other.save_pretrained(folder)
    monkeypatch.undo()
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before
    assert io.tensors_to_bytes is real


def test_precision_is_resolved_once_and_used_for_every_call(pipe, monkeypatch):
    """The U-Net runs under bf16 autocast only when the resolved precision says bf16."""
    seen = []
    real = pipe.unet.forward

    def spy(*args, **kwargs):
        seen.append(torch.is_autocast_enabled("cpu"))
        return real(*args, **kwargs)

    monkeypatch.setattr(pipe.unet, "forward", spy)
    pipe.set_precision("fp32")
    pipe([1], num_inference_steps=2, generator=_gen())
    assert seen and not any(seen)
    seen.clear()
    pipe.set_precision("bf16")
    pipe([1], num_inference_steps=2, generator=_gen())
    assert seen and all(seen)
    pipe.set_precision("fp32")


def test_bad_arguments(pipe):
    with pytest.raises(ValueError, match="guidance_scale"):
        pipe([1], guidance_scale=float("nan"))
    with pytest.raises(ValueError, match="guidance_scale"):
        pipe([1], guidance_scale=1e308)
    with pytest.raises(ValueError, match="class_labels must lie"):
        pipe([10])
    with pytest.raises(ValueError, match="output_type"):
        pipe([1], output_type="jpg")
    with pytest.raises(ValueError, match="empty"):
        pipe([])
    with pytest.raises(ValueError, match="class-conditional"):
        ClassToImagePipeline(UNet(unet_preset("tiny", num_classes=None)), pipe.schedule)


def test_save_and_load_round_trip(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "p")
    again = ClassToImagePipeline.from_pretrained(tmp_path / "p", precision="fp32")
    assert again.config.kind == "image" and again.config.extra["data"] == "digits8x8"
    assert again.config.to_dict() == pipe.config.to_dict()
    assert again.unet.config == pipe.unet.config and again.prediction == "v"
    a = pipe([2, 3], num_inference_steps=3, generator=_gen())
    b = again([2, 3], num_inference_steps=3, generator=_gen())
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_corrupted_weights_give_a_clear_error(pipe, tmp_path):
    folder = pipe.save_pretrained(tmp_path / "p")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ValueError, match="model.safetensors"):
        ClassToImagePipeline.from_pretrained(folder)
    with pytest.raises(FileNotFoundError, match="nothing"):
        ClassToImagePipeline.from_pretrained(tmp_path / "nothing")


def test_wrong_kind_and_mismatched_weights(pipe, tmp_path):
    import json

    folder = pipe.save_pretrained(tmp_path / "p")
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "kind": "clip"}))
    with pytest.raises(ValueError, match="not a ClassToImagePipeline checkpoint"):
        ClassToImagePipeline.from_pretrained(folder)
    cfg["unet"]["base_channels"] = 32
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="do not fit"):
        ClassToImagePipeline.from_pretrained(folder)


def test_image_grid_layout():
    images = torch.stack([torch.full((1, 2, 3), v) for v in (-1.0, 1.0, 0.0)])
    grid = np.asarray(image_grid(images, nrow=2, padding=1))
    assert grid.shape == (1 + 2 * 3, 1 + 2 * 4)  # 2 rows of height 2, 2 columns of width 3
    assert (grid[1:3, 1:4] == 0).all() and (grid[1:3, 5:8] == 255).all()
    assert (grid[4:6, 1:4] == 128).all()  # 0 in [-1, 1] -> 127.5 -> 128
    assert (grid[0] == 255).all()  # white padding


def test_loss_fn_drops_labels_then_calls_diffusion_loss(pipe):
    recipe = ImageRecipe(cond_drop=0.5)
    schedule = pipe.schedule
    x0 = torch.rand(6, 1, 8, 8) * 2 - 1
    labels = torch.arange(6)
    got = image_loss_fn(recipe, schedule, 10)(pipe.unet, (x0, labels), _gen(5))
    g = _gen(5)
    drop = torch.rand(6, generator=g) < 0.5  # the same draws, done by hand
    want = diffusion_loss(
        pipe.unet,
        x0,
        schedule,
        prediction="v",
        min_snr_gamma=5.0,
        generator=g,
        cond={"labels": torch.where(drop, 10, labels)},
    )
    torch.testing.assert_close(got, want)
    assert 0 < int(drop.sum()) < 6


def test_channels_last_sampling_changes_only_the_rounding(pipe):
    """fp32 on the CPU samples in channels-last layout; the samples equal the default
    layout's to float rounding (the same sampler on the same network)."""
    assert pipe.precision == "no" and pipe.channels_last
    a = pipe([3, 8], num_inference_steps=4, generator=_gen(2))
    torch.testing.assert_close(a, a.contiguous())
    assert a.is_contiguous()
    pipe.set_precision("bf16")
    assert not pipe.channels_last  # bf16: the default layout (channels-last measured slower)
    pipe.set_precision("fp32")
    from synesthesia.diffusion import sample

    want = sample(
        lambda x, t, labels: pipe.unet(x, t, labels=labels),
        (2, 1, 8, 8),
        pipe.schedule,
        method="dpmpp_2m",
        steps=4,
        prediction="v",
        generator=_gen(2),
        cond={"labels": torch.tensor([3, 8])},
        clip_x0=1.0,
        progress=False,
    )
    guided = pipe([3, 8], num_inference_steps=4, generator=_gen(2), guidance_scale=1.0)
    torch.testing.assert_close(guided, want.clamp(-1, 1), atol=1e-5, rtol=1e-4)
