"""Text-to-image (issue 9): the pipeline against direct model calls, persistence, batching,
the latent path's scaling factor, and the training recipe (caption dropout, held-out
combinations, resumption, frozen parts).

The pipelines here are untrained but non-trivial (the zero-initialised residual branches get
random weights), so a prompt, a negative prompt or the null prompt really changes the output.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from synesthesia.data.captions import NUMBER_WORDS, VOCABULARY, measure_attributes
from synesthesia.data.prompts import HELD_OUT_COMBINATIONS, held_out_mask
from synesthesia.diffusion import NoiseSchedule, sample
from synesthesia.errors import InputError
from synesthesia.nets.autoencoder import AutoencoderConfig, AutoencoderKL
from synesthesia.nets.encoders import TextEncoder, TextEncoderConfig
from synesthesia.nets.text_unet import TextConditionedUNet
from synesthesia.nets.tokenizer import WordTokenizer
from synesthesia.nets.unet import UNet, unet_preset
from synesthesia.pipelines import base
from synesthesia.pipelines import text2image_train as t2i_train
from synesthesia.pipelines.text2image import TextToImagePipeline, UnknownWordWarning
from synesthesia.pipelines.text2image_train import (
    TextRecipe,
    TextTrainOptions,
    caption_ids,
    text_loss_fn,
    train_text_to_image,
)

SCALE = 0.37  # a latent scaling factor far from 1, so a missing (or doubled) scaling shows


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks on a shared 2-core machine: one thread (restored afterwards)."""
    threads, _ = torch.get_num_threads(), torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _unzero(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            if p.abs().max() == 0:
                p.normal_(std=0.05)


def _make_pipe(latent: bool, seed: int = 0) -> TextToImagePipeline:
    torch.manual_seed(seed)
    tok = WordTokenizer(VOCABULARY, max_length=24)
    text = TextEncoder(
        TextEncoderConfig(
            vocab_size=len(tok), dim=32, depth=1, heads=4, max_length=24, pad_id=tok.pad_id
        )
    )
    ae = None
    if latent:
        ae = AutoencoderKL(AutoencoderConfig(channels=(8, 16), scaling_factor=SCALE))
        _unzero(ae)
    c, size = (4, 7) if latent else (1, 28)
    unet = UNet(
        unet_preset(
            "tiny",
            in_channels=c,
            image_size=size,
            num_classes=None,
            context_dim=32,
            pooled_dim=32,
        )
    )
    _unzero(unet)
    model = TextConditionedUNet(unet, text, autoencoder=ae)
    schedule = NoiseSchedule("cosine", 1000)
    return TextToImagePipeline(model, tok, schedule, "v", 3.0, {"data": "test"}, "fp32")


@pytest.fixture(scope="module")
def pipe() -> TextToImagePipeline:
    return _make_pipe(latent=False)


@pytest.fixture(scope="module")
def latent_pipe() -> TextToImagePipeline:
    return _make_pipe(latent=True, seed=1)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _gens(*seeds: int) -> list[torch.Generator]:
    return [_gen(s) for s in seeds]


def _direct(pipe: TextToImagePipeline, x: torch.Tensor, t: torch.Tensor, text: str):
    """The model called on one prompt's own encoding (its own tokenizer call, own padding)."""
    ids, mask = pipe.tokenizer([text] * len(x))
    with torch.no_grad():
        return pipe.model(x, t, ids=ids, mask=mask)


@pytest.fixture
def captured(monkeypatch):
    """Replace the pipeline base's sampler by a spy: it keeps the guided denoiser and its cond."""
    seen: dict = {}

    def spy(denoiser, shape, schedule, **kw):
        seen.update(denoiser=denoiser, cond=kw["cond"], shape=shape)
        return torch.zeros(shape)

    monkeypatch.setattr(base, "sample", spy)
    return seen


# --------------------------------------------------------------------- guidance, prompts
def test_null_prompt_at_guidance_zero_is_the_unconditional_model(pipe, captured):
    prompts = ["a thick seven", "the number 3, written thin and small"]
    pipe(prompts, guidance_scale=0.0, num_inference_steps=1, output_type="pt")
    x, t = torch.randn(2, 1, 28, 28, generator=_gen(0)), torch.tensor([900.0, 250.0])
    with torch.no_grad():
        got = captured["denoiser"](x, t, **captured["cond"])
    null = _direct(pipe, x, t, "")  # "" is [CLS] alone
    assert pipe.tokenizer([""])[0].tolist() == [[pipe.tokenizer.cls_id]]
    torch.testing.assert_close(got, null, atol=1e-5, rtol=1e-5)
    # not vacuous: the prompts' own predictions differ from the null one
    assert (_direct(pipe, x[:1], t[:1], prompts[0]) - null[:1]).abs().max() > 1e-3


def test_guidance_one_is_the_conditional_model(pipe, captured):
    pipe(["a two", "an image of a thick, left-slanted nine"], guidance_scale=1.0, output_type="pt")
    x, t = torch.randn(2, 1, 28, 28, generator=_gen(1)), torch.tensor([500.0, 40.0])
    with torch.no_grad():
        got = captured["denoiser"](x, t, **captured["cond"])
    want = torch.cat(
        [
            _direct(pipe, x[:1], t[:1], "a two"),
            _direct(pipe, x[1:], t[1:], "an image of a thick, left-slanted nine"),
        ]
    )
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_negative_prompt_replaces_the_unconditional_branch(pipe):
    """The whole sampled image against a hand-built two-call reference u_neg + w (c - u_neg)
    (Ho & Salimans 2022, eq. 6; diffusers' negative_prompt), each prompt encoded on its own."""
    w = 2.5
    prompts = ["a thick seven", "the number 3, written thin and small"]
    negatives = ["thin", "a seven"]
    got = pipe(
        prompts,
        negative_prompt=negatives,
        guidance_scale=w,
        num_inference_steps=3,
        method="ddim",
        generator=_gens(1, 2),
        output_type="pt",
    )

    def by_hand(x, t):
        rows = []
        for i in range(len(x)):
            c = _direct(pipe, x[i : i + 1], t[i : i + 1], prompts[i])
            u = _direct(pipe, x[i : i + 1], t[i : i + 1], negatives[i])
            rows.append(u + w * (c - u))
        return torch.cat(rows)

    want = sample(
        by_hand,
        (2, 1, 28, 28),
        pipe.schedule,
        method="ddim",
        steps=3,
        prediction="v",
        generator=_gens(1, 2),
        clip_x0=1.0,
        progress=False,
    ).clamp(-1, 1)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    # and it is not the empty-prompt guidance
    plain = pipe(
        prompts,
        guidance_scale=w,
        num_inference_steps=3,
        method="ddim",
        generator=_gens(1, 2),
        output_type="pt",
    )
    assert (plain - got).abs().max() > 1e-2
    # one negative string is used for every prompt
    one = pipe(
        prompts,
        negative_prompt="thin",
        guidance_scale=w,
        num_inference_steps=3,
        method="ddim",
        generator=_gens(1, 2),
        output_type="pt",
    )
    both = pipe(
        prompts,
        negative_prompt=["thin", "thin"],
        guidance_scale=w,
        num_inference_steps=3,
        method="ddim",
        generator=_gens(1, 2),
        output_type="pt",
    )
    torch.testing.assert_close(one, both, atol=1e-5, rtol=1e-5)


def test_guidance_none_is_the_stored_default(pipe):
    assert pipe.guidance_scale == 3.0
    kw = dict(num_inference_steps=2, output_type="pt")
    a = pipe("a seven", guidance_scale=None, generator=_gen(2), **kw)
    b = pipe("a seven", guidance_scale=3.0, generator=_gen(2), **kw)
    c = pipe("a seven", guidance_scale=1.0, generator=_gen(2), **kw)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a - c).abs().max() > 1e-3


def test_empty_negative_prompt_equals_no_negative_prompt(pipe):
    kw = dict(guidance_scale=2.0, num_inference_steps=2, generator=_gens(3, 4), output_type="pt")
    a = pipe(["a five", "a small one"], **kw)
    kw["generator"] = _gens(3, 4)
    b = pipe(["a five", "a small one"], negative_prompt="", **kw)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_unknown_word_is_unk_with_a_warning(pipe):
    with pytest.warns(UnknownWordWarning, match="'purple'"):
        a = pipe("a purple seven", num_inference_steps=2, generator=_gen(5), output_type="pt")
    with pytest.warns(UnknownWordWarning, match="'zzz'"):
        b = pipe("a zzz seven", num_inference_steps=2, generator=_gen(5), output_type="pt")
    ids, _ = pipe.tokenizer(["a purple seven"])
    assert ids[0, 2] == pipe.tokenizer.unk_id
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # both words are [UNK]: same images
    with pytest.warns(UnknownWordWarning, match="negative_prompt"):
        pipe("a seven", negative_prompt="blurry", num_inference_steps=1, generator=_gen(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # known words: no warning at all
        pipe("a thick, right-slanted seven", num_inference_steps=1, generator=_gen(0))


def test_prompt_length_limit_is_the_encoder_context(pipe):
    """[CLS] + 23 words fill the 24 positions; a 24th word is an error, not a truncation."""
    assert pipe.tokenizer.max_length == pipe.model.text_encoder.config.max_length == 24
    pipe(" ".join(["seven"] * 23), num_inference_steps=1, generator=_gen(0))
    with pytest.raises(InputError, match="24 words; the text encoder reads at most 23"):
        pipe(" ".join(["seven"] * 24), num_inference_steps=1)
    with pytest.raises(InputError, match="negative_prompt"):
        pipe("a seven", negative_prompt=" ".join(["thin"] * 30), num_inference_steps=1)


# --------------------------------------------------------------------- outputs, batching
def test_output_types(pipe):
    kw = dict(num_inference_steps=2, num_images_per_prompt=2)
    pt = pipe(["a seven", "a two"], generator=_gen(0), output_type="pt", **kw)
    assert pt.shape == (4, 1, 28, 28) and pt.dtype == torch.float32
    assert pt.min() >= -1 and pt.max() <= 1 and pt.std() > 0
    arr = pipe(["a seven", "a two"], generator=_gen(0), output_type="np", **kw)
    assert arr.shape == (4, 28, 28, 1) and arr.dtype == np.float32
    np.testing.assert_allclose(arr, ((pt + 1) / 2).permute(0, 2, 3, 1).numpy(), atol=1e-6)
    pil = pipe("a seven", generator=_gen(0), output_type="pil", num_inference_steps=2)
    assert len(pil) == 1 and pil[0].size == (28, 28) and pil[0].mode == "L"
    want = np.rint(np.clip(arr[0, :, :, 0], 0, 1) * 255)
    np.testing.assert_array_equal(np.asarray(pil[0]), want.astype(np.uint8))


def test_batched_call_equals_one_call_per_prompt(pipe):
    """Prompts of different lengths (so different padding in the batch) and a negative."""
    prompts = ["a thick, right-slanted seven", "a two", "the number 3, written thin and small"]
    kw = dict(guidance_scale=2.0, num_inference_steps=3, output_type="pt")
    batched = pipe(prompts, negative_prompt=["thin", "", "a three"], generator=_gens(7, 8, 9), **kw)
    single = [
        pipe(p, negative_prompt=n, generator=_gens(s), **kw)
        for p, n, s in zip(prompts, ["thin", "", "a three"], (7, 8, 9))
    ]
    torch.testing.assert_close(batched, torch.cat(single), atol=1e-4, rtol=1e-4)
    # the same in smaller sampler batches
    again = pipe(
        prompts,
        negative_prompt=["thin", "", "a three"],
        generator=_gens(7, 8, 9),
        batch_size=2,
        **kw,
    )
    torch.testing.assert_close(again, batched, atol=1e-4, rtol=1e-4)


def test_num_images_per_prompt_order(pipe):
    """Images come prompt by prompt: [p0, p0, p1, p1], generator i for image i."""
    kw = dict(num_inference_steps=2, output_type="pt", guidance_scale=2.0)
    both = pipe(["a seven", "a two"], num_images_per_prompt=2, generator=_gens(0, 1, 2, 3), **kw)
    sevens = pipe("a seven", num_images_per_prompt=2, generator=_gens(0, 1), **kw)
    twos = pipe("a two", num_images_per_prompt=2, generator=_gens(2, 3), **kw)
    torch.testing.assert_close(both, torch.cat([sevens, twos]), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(
        both[2:3], pipe("a two", generator=_gens(2), **kw), atol=1e-4, rtol=1e-4
    )
    with pytest.raises(InputError, match="3 generators for 4 images"):
        pipe(["a seven", "a two"], num_images_per_prompt=2, generator=_gens(0, 1, 2))


def test_same_seed_same_images_other_seed_other_images(pipe):
    a = pipe("a seven", num_inference_steps=2, generator=_gen(11), output_type="pt")
    b = pipe("a seven", num_inference_steps=2, generator=_gen(11), output_type="pt")
    c = pipe("a seven", num_inference_steps=2, generator=_gen(12), output_type="pt")
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a - c).abs().max() > 1e-2


@pytest.mark.parametrize("which", ["pipe", "latent_pipe"])
def test_save_load_gives_identical_images(which, request, tmp_path):
    pipe = request.getfixturevalue(which)
    folder = pipe.save_pretrained(tmp_path / "ckpt")
    loaded = TextToImagePipeline.from_pretrained(folder, precision="fp32")
    assert loaded.latent == pipe.latent and loaded.guidance_scale == pipe.guidance_scale
    assert loaded.tokenizer.tokens == pipe.tokenizer.tokens
    if pipe.latent:
        assert loaded.autoencoder.scaling_factor == SCALE
    kw = dict(negative_prompt="thin", num_inference_steps=3, output_type="pt")
    a = pipe(["a thick seven", "a two"], generator=_gens(4, 5), **kw)
    b = loaded(["a thick seven", "a two"], generator=_gens(4, 5), **kw)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert a.shape == (2, 1, 28, 28)


# --------------------------------------------------------------------- the latent path
def test_autoencoder_scaling_is_used_in_both_directions(latent_pipe):
    ae = latent_pipe.autoencoder
    x = torch.rand(3, 1, 28, 28, generator=_gen(0)) * 2 - 1
    with torch.no_grad():
        z = ae.encode(x).mean  # unscaled
        scaled = ae.encode_latents(x)
        torch.testing.assert_close(scaled, SCALE * z)  # encode multiplies ...
        torch.testing.assert_close(ae.decode_latents(scaled), ae.decode(z))  # ... decode divides
        # not vacuous: a scaled latent given to the decoder unscaled is another image
        assert (ae.decode(scaled) - ae.decode(z)).abs().max() > 1e-3
        g1, g2 = _gen(3), _gen(3)
        torch.testing.assert_close(ae.encode_latents(x, g1), SCALE * ae.encode(x).sample(g2))


def test_latent_pipeline_decodes_sampled_latents_divided_by_the_scaling(latent_pipe, monkeypatch):
    kept = {}
    generate = base.DiffusionPipeline.generate

    def spy(self, *args, **kw):
        out = generate(self, *args, **kw)
        kept["latents"], kept["shape"] = out, args[1]
        return out

    monkeypatch.setattr(base.DiffusionPipeline, "generate", spy)
    images = latent_pipe(
        ["a seven", "a two"], num_inference_steps=2, generator=_gens(0, 1), output_type="pt"
    )
    assert kept["shape"] == (2, 4, 7, 7) and images.shape == (2, 1, 28, 28)
    with torch.no_grad():
        want = latent_pipe.autoencoder.decode(kept["latents"] / SCALE).clamp(-1, 1)
    torch.testing.assert_close(images, want, atol=1e-6, rtol=1e-6)


def test_latent_training_diffuses_scaled_posterior_samples(monkeypatch):
    """The training side of the scaling: x0 = scaling_factor * (mean + std * eps)."""
    seen = {}

    def spy_loss(model, x0, schedule, **kw):
        seen["x0"] = x0
        return x0.sum() * 0

    monkeypatch.setattr(t2i_train, "diffusion_loss", spy_loss)
    loss_fn = text_loss_fn(TextRecipe(caption_drop=0.0), NoiseSchedule("cosine", 100), 0, 2, SCALE)
    mean = torch.randn(500, 4, 7, 7, generator=_gen(0))
    caps = torch.tensor([[[2, 5, 0]]]).expand(500, 1, 3)
    certain = torch.cat([mean, torch.full_like(mean, -40.0)], dim=1)  # std = e^-20
    loss_fn(None, (certain, caps), _gen(1))
    torch.testing.assert_close(seen["x0"], SCALE * mean, atol=1e-6, rtol=1e-6)
    unit = torch.cat([mean, torch.zeros_like(mean)], dim=1)  # std = 1
    loss_fn(None, (unit, caps), _gen(2))
    eps = seen["x0"] / SCALE - mean
    assert abs(eps.mean().item()) < 0.02 and abs(eps.std().item() - 1) < 0.02  # 24,500 draws


# --------------------------------------------------------------------- training
class _Recorder(torch.nn.Module):
    """A stand-in denoiser that keeps the token ids and masks it is called with."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, x, t, ids, mask):
        self.calls.append((ids, mask))
        return torch.zeros_like(x)


def test_caption_dropout_gives_the_null_prompt_at_the_rate_asked():
    pad, cls = 0, 2
    g = _gen(0)
    n, k, length = 4000, 3, 6
    caps = torch.randint(3, 40, (n, k, length), generator=g)
    caps[..., 0] = cls
    lengths = torch.randint(2, length + 1, (n, k), generator=g)  # every caption has a word
    caps[torch.arange(length)[None, None] >= lengths[..., None]] = pad
    x = torch.zeros(n, 1, 2, 2)
    recipe = TextRecipe(caption_drop=0.25)
    model = _Recorder()
    loss_fn = text_loss_fn(recipe, NoiseSchedule("cosine", 100), pad, cls)
    for step in range(2):
        loss_fn(model, (x, caps), _gen(10 + step))
    null_rows, picks = 0, torch.zeros(k)
    for ids, mask in model.calls:
        torch.testing.assert_close(mask, ids == pad, rtol=0, atol=0)
        is_null = (ids[:, 0] == cls) & (ids[:, 1:] == pad).all(dim=1)
        null_rows += int(is_null.sum())
        # every other row is one of its image's own captions, trimmed of shared padding
        trimmed = caps[..., : ids.shape[1]]
        match = (trimmed == ids[:, None]).all(dim=-1) & (caps[..., ids.shape[1] :] == pad).all(-1)
        assert bool(match[~is_null].any(dim=1).all())
        picks += match[~is_null].float().sum(dim=0)
    rate = null_rows / (2 * n)
    assert abs(rate - 0.25) < 4 * (0.25 * 0.75 / (2 * n)) ** 0.5  # 4 binomial sd
    # the K captions are drawn uniformly
    share = picks / picks.sum()
    assert (share - 1 / k).abs().max() < 4 * ((1 / k) * (1 - 1 / k) / picks.sum()) ** 0.5
    model.calls.clear()
    text_loss_fn(TextRecipe(caption_drop=0.0), NoiseSchedule("cosine", 100), pad, cls)(
        model, (x, caps), _gen(3)
    )
    ids, _ = model.calls[0]
    assert not bool(((ids[:, 0] == cls) & (ids[:, 1:] == pad).all(dim=1)).any())


@pytest.fixture(scope="module")
def digits():
    """Every tenth of the built-in MNIST training digits (400 of 28 x 28), for short runs."""
    from synesthesia.data.images import load_image_splits

    train, _ = load_image_splits("mnist5k")
    return train.subset(torch.arange(0, len(train), 10))


def _options(out, **kw) -> TextTrainOptions:
    base_kw = dict(
        preset="tiny",
        max_steps=3,
        batch_size=16,
        precision="fp32",
        progress=False,
        warmup_steps=1,
        log_every=1,
        text_dim=32,
        text_depth=1,
    )
    return TextTrainOptions(out_dir=str(out), **{**base_kw, **kw})


def test_initial_weights_follow_the_seed_not_the_global_rng(digits, tmp_path, monkeypatch):
    """The whole network (the jointly trained text encoder included) starts from ``seed``
    alone: the same seed gives the same start whatever the global torch RNG state was."""
    from synesthesia.training import budget

    fit, starts = budget.fit_budgeted, []

    def spy(model, *args, **kw):
        starts.append({k: v.clone() for k, v in model.state_dict().items()})
        return fit(model, *args, **kw)

    monkeypatch.setattr(budget, "fit_budgeted", spy)
    for i, global_seed in enumerate((1, 2)):
        torch.manual_seed(global_seed)  # other work done before, in the same process
        train_text_to_image(digits, _options(tmp_path / f"run{i}", max_steps=1))
    for name, a in starts[0].items():
        assert torch.equal(a, starts[1][name]), name


def _has_words(text: str, *words: str) -> bool:
    tokens = text.split()
    return all(w in tokens for w in words)


def test_held_out_combinations_are_absent_from_the_training_data(digits, tmp_path, monkeypatch):
    from synesthesia.training import budget

    fit = budget.fit_budgeted
    kept = {}

    def spy(model, loss_fn, dataset, *args, **kw):
        kept["dataset"] = dataset
        return fit(model, loss_fn, dataset, *args, **kw)

    monkeypatch.setattr(budget, "fit_budgeted", spy)
    pipe, result, plan = train_text_to_image(digits, _options(tmp_path / "run", max_steps=1))
    attrs = measure_attributes(digits.images, digits.labels)
    held = held_out_mask(digits.labels, attrs)
    assert held.sum() > 0 and plan["held_out_items"] == int(held.sum())
    data = kept["dataset"]
    assert plan["train_items"] == len(data) == len(digits) - int(held.sum())
    # the training images are exactly the digits not held out
    index = {digits.images[i].numpy().tobytes(): i for i in range(len(digits))}
    rows = np.array([index[data.x[j].numpy().tobytes()] for j in range(len(data))])
    assert sorted(rows.tolist()) == np.flatnonzero(~held).tolist()
    # and no training caption names a held-out combination ("a thick seven", "the number 7,
    # written thick"), while the same captions of all the digits do
    texts = [pipe.tokenizer.decode(c) for c in data.captions.reshape(-1, data.captions.shape[-1])]
    everything = caption_ids(digits.labels, attrs, pipe.tokenizer, TextRecipe(), seed=0)
    all_texts = [pipe.tokenizer.decode(c) for c in everything.reshape(-1, everything.shape[-1])]
    for digit, _, word in HELD_OUT_COMBINATIONS:
        for number in (NUMBER_WORDS[digit], str(digit)):
            assert not any(_has_words(s, word, number) for s in texts), (word, number)
        assert any(_has_words(s, word, NUMBER_WORDS[digit]) for s in all_texts), word


def _frozen_parts(folder: Path) -> dict:
    """A CLIP checkpoint (its text tower) and an autoencoder saved in ``folder``, untrained;
    the text-to-image options that use both, frozen."""
    from synesthesia.multimodal.model import JointEmbeddingConfig, JointEmbeddingModel
    from synesthesia.pipelines.autoencoder import save_autoencoder

    torch.manual_seed(3)
    clip = JointEmbeddingModel(JointEmbeddingConfig(modalities=("image", "text")))
    clip.save_pretrained(folder / "clip")
    ae = AutoencoderKL(AutoencoderConfig(channels=(8, 16), scaling_factor=SCALE))
    _unzero(ae)
    save_autoencoder(ae, folder / "ae")
    return {"text_encoder": str(folder / "clip"), "autoencoder": str(folder / "ae")}


@pytest.mark.parametrize("space", ["pixel", "latent"])
def test_tiny_run_trains_and_resumes_exactly(space, digits, tmp_path, monkeypatch):
    """Interrupted after 3 steps and resumed to 5 = 5 steps in one go (losses and EMA); the
    latent run also has a frozen CLIP text tower, both rebuilt from the checkpoint on resume."""
    extra = _frozen_parts(tmp_path) if space == "latent" else {}
    reference_pipe, reference, _ = train_text_to_image(
        digits, _options(tmp_path / "ref", max_steps=5, **extra)
    )
    assert reference_pipe.latent == (space == "latent")
    assert reference.step == 5 and reference.stopped == "max_steps"
    assert all(np.isfinite(reference.losses))

    real, steps = t2i_train.diffusion_loss, []

    def ctrl_c_in_step_4(*args, **kw):  # what the trainer's Ctrl-C handler raises
        steps.append(len(steps) + 1)
        if steps[-1] == 4:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(t2i_train, "diffusion_loss", ctrl_c_in_step_4)
    out = tmp_path / "run"
    _, part, _ = train_text_to_image(digits, _options(out, max_steps=5, **extra))
    assert part.stopped == "interrupted" and part.step == 3
    monkeypatch.setattr(t2i_train, "diffusion_loss", real)
    pipe, rest, plan = train_text_to_image(digits, _options(out, max_steps=5, **extra), resume=True)
    assert plan["resumed"] and rest.step == 5 and rest.stopped == "max_steps"
    assert part.losses + rest.losses == reference.losses  # bitwise, CPU float32
    for (name, a), b in zip(
        pipe.model.state_dict().items(), reference_pipe.model.state_dict().values()
    ):
        assert torch.equal(a, b), name
    loaded = TextToImagePipeline.from_pretrained(out / "checkpoint", precision="fp32")
    kw = dict(num_inference_steps=2, output_type="pt")
    torch.testing.assert_close(
        loaded("a seven", generator=_gen(0), **kw),
        pipe("a seven", generator=_gen(0), **kw),
        rtol=0,
        atol=0,
    )
    with pytest.raises(InputError, match="--seed: the run"):
        train_text_to_image(digits, _options(out, max_steps=6, seed=1), resume=True)


def test_frozen_text_tower_and_autoencoder_stay_bit_identical(digits, tmp_path):
    """A latent model with a frozen CLIP text tower: after training, the EMA's (saved) text
    encoder and autoencoder are the frozen weights bit for bit (copied, not averaged)."""
    from synesthesia.multimodal.model import JointEmbeddingModel
    from synesthesia.pipelines.autoencoder import load_autoencoder

    options = _options(tmp_path / "run", max_steps=5, **_frozen_parts(tmp_path))
    pipe, result, _ = train_text_to_image(digits, options)
    assert result.step == 5 and pipe.latent and pipe.model.freeze_text
    text_ref = JointEmbeddingModel.from_pretrained(tmp_path / "clip").encoders["text"].state_dict()
    ae_ref = load_autoencoder(tmp_path / "ae").state_dict()
    loaded = TextToImagePipeline.from_pretrained(tmp_path / "run" / "checkpoint")
    for model in (pipe.model, loaded.model):
        for name, ref in text_ref.items():
            assert torch.equal(model.text_encoder.state_dict()[name], ref), name
        for name, ref in ae_ref.items():
            assert torch.equal(model.autoencoder.state_dict()[name], ref), name
    assert loaded.autoencoder.scaling_factor == SCALE
    # not vacuous: averaging a frozen weight with itself over these 5 EMA updates (decays
    # min(0.999, (1 + n) / (10 + n)), training/schedule.py; the trainer's fused ops) would not
    # keep every bit (the update at n = 3 rounds about one weight in eight)
    ref = text_ref["token.weight"]
    averaged = ref.clone()
    for n in range(result.step):
        decay = min(0.999, (1 + n) / (10 + n))
        averaged.mul_(decay).add_(ref, alpha=1 - decay)
    assert not torch.equal(averaged, ref)
