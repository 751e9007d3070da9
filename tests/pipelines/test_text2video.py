"""Text-to-video: output types and shapes, save/load round trip, batching, the GIF's frames,
the frame strip, the consistency loss against a hand computation, a tiny run and its resume
(a changed recipe refused), and a start from an image model (equal to it on every frame)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from synesthesia.data.captions import VOCABULARY
from synesthesia.data.images import ImageSet
from synesthesia.data.moving_digits import VIDEO_VOCABULARY
from synesthesia.diffusion import NoiseSchedule
from synesthesia.errors import InputError
from synesthesia.nets.encoders import TextEncoder, TextEncoderConfig
from synesthesia.nets.text_unet import TextConditionedUNet
from synesthesia.nets.tokenizer import WordTokenizer
from synesthesia.nets.unet import UNet, unet_preset
from synesthesia.nets.video_unet import TextConditionedVideoUNet, VideoUNet, VideoUNetConfig
from synesthesia.pipelines.text2image import TextToImagePipeline
from synesthesia.pipelines.text2video import (
    TextToVideoPipeline,
    save_frame_strip,
    save_gif,
    save_videos_gif,
)
from synesthesia.pipelines.text2video_train import (
    VideoRecipe,
    VideoTrainOptions,
    frame_difference_error,
    start_model,
    train_text_to_video,
    video_loss_fn,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks on a shared 2-core machine: one thread (restored afterwards)."""
    threads, _ = torch.get_num_threads(), torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _make_pipe(frames: int = 3, seed: int = 0) -> TextToVideoPipeline:
    torch.manual_seed(seed)
    tok = WordTokenizer(VIDEO_VOCABULARY, max_length=12)
    text = TextEncoder(
        TextEncoderConfig(vocab_size=len(tok), dim=16, depth=1, heads=2, max_length=12)
    )
    spatial = unet_preset("tiny", image_size=30, num_classes=None, context_dim=16, pooled_dim=16)
    model = TextConditionedVideoUNet(VideoUNet(VideoUNetConfig(spatial, frames)), text)
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().max() == 0:
                p.normal_(std=0.05)
    return TextToVideoPipeline(model, tok, NoiseSchedule("cosine", 100), precision="fp32")


def _call(pipe, prompt="a 3 moving left", **kw):
    kw = {"num_inference_steps": 2, "generator": torch.Generator().manual_seed(0), **kw}
    return pipe(prompt, **kw)


def test_output_types_and_shapes():
    pipe = _make_pipe()
    pt = _call(pipe, output_type="pt", num_images_per_prompt=2)
    assert pt.shape == (2, 3, 1, 30, 30) and pt.dtype == torch.float32
    assert pt.min() >= -1 and pt.max() <= 1
    arr = _call(pipe, output_type="np", num_images_per_prompt=2)
    assert arr.shape == (2, 3, 30, 30, 1)
    np.testing.assert_allclose(arr, ((pt + 1) / 2).permute(0, 1, 3, 4, 2).numpy(), atol=1e-6)
    pil = _call(pipe, output_type="pil", num_images_per_prompt=2)
    assert len(pil) == 2 and all(len(v) == 3 for v in pil)
    assert pil[1][2].size == (30, 30)
    with pytest.raises(InputError, match="output_type"):
        _call(pipe, output_type="gif")


def test_save_load_round_trip_gives_the_same_videos(tmp_path):
    pipe = _make_pipe()
    before = _call(pipe, output_type="pt")
    pipe.save_pretrained(tmp_path / "p")
    again = TextToVideoPipeline.from_pretrained(tmp_path / "p", precision="fp32")
    assert again.config.to_dict() == pipe.config.to_dict()
    assert again.frames == 3 and again.sample_shape == (1, 3, 30, 30)
    assert torch.equal(_call(again, output_type="pt"), before)


def test_a_batched_call_equals_one_call_per_prompt():
    pipe = _make_pipe()
    prompts = ["a 3 moving left", "a seven moving up fast"]
    gens = [torch.Generator().manual_seed(s) for s in (4, 5)]
    both = pipe(prompts, num_inference_steps=2, generator=gens, output_type="pt")
    one = [
        pipe(p, num_inference_steps=2, generator=torch.Generator().manual_seed(s), output_type="pt")
        for p, s in zip(prompts, (4, 5))
    ]
    assert torch.allclose(both, torch.cat(one), atol=1e-5)
    assert not torch.allclose(one[0], one[1], atol=1e-3)  # the prompt matters


def test_the_gif_has_f_frames_showing_the_video(tmp_path):
    video = torch.linspace(-1, 1, 5 * 30 * 30).reshape(5, 1, 30, 30)
    path = save_gif(video, tmp_path / "v.gif", scale=1)
    with Image.open(path) as im:
        assert im.n_frames == 5
        frames = []
        for k in range(5):
            im.seek(k)
            frames.append(np.asarray(im.convert("L"), dtype=np.float64))
    want = np.rint((video[:, 0].numpy() + 1) / 2 * 255)
    assert np.abs(np.stack(frames) - want).max() <= 1
    videos = torch.rand(3, 4, 1, 30, 30, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with Image.open(save_videos_gif(videos, tmp_path / "g.gif")) as im:
        assert im.n_frames == 4
    # Pillow merges identical consecutive frames into one longer frame: a still video
    with Image.open(save_gif(torch.zeros(4, 1, 30, 30), tmp_path / "s.gif")) as im:
        assert im.n_frames == 1  # one frame shown for 4 x 1/6 s (GIF counts centiseconds)
        assert im.info["duration"] == pytest.approx(4 * 1000 / 6, abs=10)


def test_the_frame_strip_has_one_row_per_video(tmp_path):
    path = save_frame_strip(torch.zeros(2, 4, 1, 30, 30), tmp_path / "s.png", scale=1)
    with Image.open(path) as im:
        assert im.size == (4 * 32 + 2, 2 * 32 + 2)
    with pytest.raises(InputError, match="N, F, C, H, W"):
        save_frame_strip(torch.zeros(4, 1, 30, 30), tmp_path / "t.png")


def test_frame_difference_error_by_hand():
    a = torch.zeros(1, 1, 3, 1, 2)
    b = torch.zeros(1, 1, 3, 1, 2)
    a[0, 0, :, 0, 0] = torch.tensor([0.0, 1.0, 3.0])  # differences 1, 2 against 0, 0
    # mean over (C, F-1, H, W) = 4 entries of 1^2, 2^2, 0, 0
    assert frame_difference_error(a, b).item() == pytest.approx((1 + 4) / 4)


def test_the_consistency_term_of_an_x0_model_by_hand():
    """An x0-predicting model that returns the clean video plus a constant per frame c_k:
    the term is mean_k (c_{k+1} - c_k)^2 (weight 1 without Min-SNR), 0 for independent items."""
    videos = torch.randn(2, 1, 4, 30, 30, generator=torch.Generator().manual_seed(0))
    caps = torch.full((2, 2, 6), 0)
    caps[:, :, 0], caps[:, :, 1] = 2, 5
    offsets = torch.tensor([0.0, 0.5, -0.5, 1.0]).reshape(1, 1, 4, 1, 1)

    def model(x_t, t, ids=None, mask=None, independent=None):
        return videos + offsets

    recipe = VideoRecipe(prediction="x0", min_snr_gamma=None, caption_drop=0.0,
                         consistency_weight=2.0, frames=4, canvas=30, speeds=(1,))  # fmt: skip
    fn = video_loss_fn(recipe, NoiseSchedule("cosine", 100), pad_id=0, cls_id=2)
    g = torch.Generator().manual_seed(1)
    loss, info = fn(model, (videos, caps, torch.tensor([False, False])), g)
    want = ((0.5 - 0) ** 2 + (-0.5 - 0.5) ** 2 + (1.0 + 0.5) ** 2) / 3
    assert info["consistency"] == pytest.approx(want, rel=1e-5)
    mse = float((offsets**2).mean())  # the x0 loss of the same model
    assert loss.item() == pytest.approx(mse + 2.0 * want, rel=1e-5)
    _, info = fn(model, (videos, caps, torch.tensor([True, False])), g)
    assert info["consistency"] == pytest.approx(want / 2, rel=1e-5)  # one item of two


def _blobs(n: int = 20) -> ImageSet:
    g = torch.Generator().manual_seed(0)
    ink = (torch.rand(n, 1, 28, 28, generator=g) > 0.8).float()
    return ImageSet(ink * 2 - 1, torch.arange(n) % 10, "blobs")


def test_a_tiny_run_trains_saves_and_resumes(tmp_path):
    recipe = VideoRecipe(canvas=30, frames=3, speeds=(1,), image_fraction=0.3)
    options = VideoTrainOptions(out_dir=str(tmp_path / "run"), preset="tiny", max_steps=2,
                                batch_size=2, progress=False, recipe=recipe, text_dim=16,
                                text_depth=1, log_every=1)  # fmt: skip
    pipe, result, _ = train_text_to_video(_blobs(), options)
    assert result.step == 2 and pipe.frames == 3
    loaded = TextToVideoPipeline.from_pretrained(tmp_path / "run" / "checkpoint")
    assert loaded.extra["world"] == {"canvas": 30, "frames": 3, "speeds": [1]}
    options.max_steps = 3
    _, again, _ = train_text_to_video(_blobs(), options, resume=True)
    assert again.step == 3
    options.seed = 5
    with pytest.raises(InputError, match="--seed: the run"):
        train_text_to_video(_blobs(), options, resume=True)


# ---------------------------------------------------------------------- resuming keeps the recipe
@pytest.mark.parametrize(
    ("field", "value", "option"),
    [
        ("consistency_weight", 0.0, "--consistency-weight"),
        ("canvas", 32, "--canvas"),
        ("frames", 4, "--frames"),
        ("image_fraction", 0.5, "--image-fraction"),
    ],
)
def test_a_resumption_refuses_a_changed_recipe_naming_both_values(tmp_path, field, value, option):
    """Before issue 10's fix these were silently replaced by the saved values."""
    recipe = VideoRecipe(canvas=30, frames=3, speeds=(1,), image_fraction=0.3)
    options = VideoTrainOptions(
        out_dir=str(tmp_path / "run"),
        preset="tiny",
        max_steps=1,
        batch_size=2,
        progress=False,
        recipe=recipe,
        text_dim=16,
        text_depth=1,
    )
    train_text_to_video(_blobs(), options)
    was = getattr(recipe, field)
    options.recipe = VideoRecipe(**{**asdict(recipe), field: value})
    options.max_steps = 2
    with pytest.raises(
        InputError, match=f"{option}: the run in .* used {was!r}, this call gives {value!r}"
    ):
        train_text_to_video(_blobs(), options, resume=True)


# ---------------------------------------------------------------------- starting from images
def _image_pipe(tmp_path, seed: int = 0) -> tuple[TextToImagePipeline, Path]:
    """A small untrained-but-non-trivial text-to-image pixel model, saved."""
    torch.manual_seed(seed)
    tok = WordTokenizer(VOCABULARY, max_length=12)
    text = TextEncoder(
        TextEncoderConfig(
            vocab_size=len(tok), dim=16, depth=1, heads=2, max_length=12, pad_id=tok.pad_id
        )
    )
    unet = UNet(unet_preset("tiny", image_size=28, num_classes=None, context_dim=16, pooled_dim=16))
    with torch.no_grad():
        for p in unet.parameters():
            if p.abs().max() == 0:
                p.normal_(std=0.05)
    pipe = TextToImagePipeline(
        TextConditionedUNet(unet, text),
        tok,
        NoiseSchedule("cosine", 100),
        "v",
        3.0,
        {"data": "test"},
        "fp32",
    )
    return pipe, pipe.save_pretrained(tmp_path / "image")


def _init_options(tmp_path, folder, **kw) -> VideoTrainOptions:
    recipe = VideoRecipe(canvas=30, frames=3, speeds=(1,))
    return VideoTrainOptions(
        out_dir=str(tmp_path / "run"),
        max_steps=1,
        batch_size=2,
        progress=False,
        recipe=recipe,
        init_from=str(folder),
        **kw,
    )


def test_a_video_model_started_from_an_image_model_is_it_on_every_frame(tmp_path):
    image, folder = _image_pipe(tmp_path)
    model, tok, cfg, frozen, _ = start_model(_init_options(tmp_path, folder), seed=3)
    assert not frozen and cfg.spatial.image_size == 30 and cfg.frames == 3
    # the image model's words keep their ids; the motion words are new, not [UNK]
    assert tok.tokens[: len(image.tokenizer)] == image.tokenizer.tokens
    for word in ("moving", "left", "bouncing", "fast"):
        assert word not in image.tokenizer.index and tok.index[word] >= len(image.tokenizer)
    ids, mask = tok(["a seven", "the digit 3"])
    assert torch.equal(ids, image.tokenizer(["a seven", "the digit 3"])[0])
    g = torch.Generator().manual_seed(0)
    video = torch.randn(2, 1, 3, 30, 30, generator=g)
    t = torch.tensor([40.0, 700.0])
    with torch.no_grad():
        got = model.eval()(video, t, ids=ids, mask=mask)
        # the second implementation: the image model, frame by frame, each with its prompt
        frames = video.transpose(1, 2).reshape(6, 1, 30, 30)
        want = image.model.eval()(
            frames,
            t.repeat_interleave(3),
            ids=ids.repeat_interleave(3, 0),
            mask=mask.repeat_interleave(3, 0),
        )
    torch.testing.assert_close(got.transpose(1, 2).reshape(6, 1, 30, 30), want, rtol=0, atol=1e-6)
    assert want.abs().mean() > 0.01  # a non-trivial model, so equality means something


def test_a_run_started_from_an_image_model_trains_records_it_and_resumes(tmp_path):
    _, folder = _image_pipe(tmp_path)
    options = _init_options(tmp_path, folder)
    pipe, result, _ = train_text_to_video(_blobs(), options)
    assert result.step == 1 and pipe.extra["init_from"] == str(folder)
    assert pipe.extra["preset"] is None and pipe.video_config.spatial.channel_mults == (1, 2)
    options.max_steps = 2
    assert train_text_to_video(_blobs(), options, resume=True)[1].step == 2
    options.init_from = str(tmp_path / "elsewhere")
    with pytest.raises(InputError, match="--init-from: the run in .* started from"):
        train_text_to_video(_blobs(), options, resume=True)


def _edited(folder: Path, edit) -> Path:
    import json

    path = folder / "config.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return folder


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: {**c, "kind": "image"}, "a 'image' checkpoint"),
        (lambda c: {**c, "autoencoder": {"channels": [8]}}, "latent text-to-image model"),
        (lambda c: {**c, "freeze_text": True}, "frozen CLIP tower"),
        (lambda c: {**c, "unet": {**c["unet"], "in_channels": 3}}, "do not fit"),
    ],
)
def test_init_from_refuses_a_checkpoint_that_cannot_start_a_pixel_video_model(
    tmp_path, edit, message
):
    _, folder = _image_pipe(tmp_path)
    options = _init_options(tmp_path, _edited(folder, edit))
    with pytest.raises(InputError, match=f"^--init-from: .*{message}"):
        start_model(options, seed=0)


def test_init_from_refuses_a_missing_folder_and_the_conv3d_layout(tmp_path):
    with pytest.raises(InputError, match="^--init-from: .*no such checkpoint folder"):
        start_model(_init_options(tmp_path, tmp_path / "none"), seed=0)
    _, folder = _image_pipe(tmp_path)
    with pytest.raises(InputError, match="^--init-from: the conv3d layout"):
        start_model(_init_options(tmp_path, folder, layout="conv3d"), seed=0)
