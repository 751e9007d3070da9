"""The autoencoder pipeline: loss, scaling factor, save/load, scores, training and resume."""

from __future__ import annotations

import json
import math

import pytest
import torch

from synesthesia.data.images import ImageSet, load_image_splits
from synesthesia.errors import InputError
from synesthesia.nets.autoencoder import AutoencoderConfig, AutoencoderKL
from synesthesia.pipelines import autoencoder as pipeline
from synesthesia.pipelines.autoencoder import (
    AutoencoderRecipe,
    AutoencoderTrainOptions,
    autoencoder_loss_fn,
    latent_moments,
    load_autoencoder,
    measure_scaling_factor,
    psnr_db,
    read_autoencoder,
    reconstruction_scores,
    save_autoencoder,
    train_autoencoder,
)

TINY = {"channels": (8, 16), "groups": 4}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits() -> tuple[ImageSet, ImageSet]:
    return load_image_splits("digits8x8")


def _tiny_ae(seed: int = 0, **kw) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(AutoencoderConfig(image_size=8, **{**TINY, **kw}))


def _options(tmp_path, **kw) -> AutoencoderTrainOptions:
    base = dict(
        out_dir=str(tmp_path),
        minutes=None,
        max_steps=8,
        batch_size=32,
        warmup_steps=2,
        log_every=2,
        progress=False,
        pick_threads=False,
        precision="fp32",
        config=TINY,
    )
    return AutoencoderTrainOptions(**{**base, **kw})  # fmt: skip


def test_psnr_against_a_hand_computation():
    ref = torch.zeros(2, 1, 4, 4)  # 0.5 on the [0, 1] scale
    img = ref.clone()
    img[0] += 0.2  # 0.1 on [0, 1]: MSE 0.01 -> 20 dB
    img[1, 0, 0, 0] = 5.0  # clamped to 1 -> 1 on [0, 1]: MSE 0.25 / 16 -> 10 log10(64) dB
    got = psnr_db(img, ref)
    torch.testing.assert_close(got, torch.tensor([20.0, 10 * math.log10(64.0)]))


def test_loss_is_the_recipe_formula_with_every_draw_from_the_generator(digits):
    train, _ = digits
    ae = _tiny_ae()
    x = train.images[:4]
    recipe = AutoencoderRecipe(kl_weight=0.5, l1_weight=1.0, mse_weight=2.0)
    loss_fn = autoencoder_loss_fn(recipe)
    loss, extras = loss_fn(ae, (x, train.labels[:4]), torch.Generator().manual_seed(7))
    # by hand, with the same draw
    posterior = ae.encode(x)
    z = posterior.mean + posterior.std * torch.randn(
        posterior.mean.shape, generator=torch.Generator().manual_seed(7)
    )
    err = ae.decode(z) - x
    kl = (0.5 * (posterior.mean**2 + posterior.var - 1 - posterior.logvar)).sum((1, 2, 3)).mean()
    expected = err.abs().mean() + 2.0 * err.pow(2).mean() + 0.5 * kl / 64
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(extras["kl"], kl.detach())
    again, _ = loss_fn(ae, x, torch.Generator().manual_seed(7))  # images alone work too
    other, _ = loss_fn(ae, x, torch.Generator().manual_seed(8))
    assert again.item() == loss.item() and other.item() != loss.item()


def test_feature_loss_needs_the_evaluator_and_uses_its_features(digits):
    from synesthesia.nets.classifier import ClassifierConfig, HierarchicalSensoryNet

    with pytest.raises(ValueError, match="evaluator"):
        autoencoder_loss_fn(AutoencoderRecipe(feature_weight=1.0))
    torch.manual_seed(0)
    evaluator = HierarchicalSensoryNet(ClassifierConfig(image_size=8))
    train, _ = digits
    ae, x = _tiny_ae(), train.images[:4]
    base = autoencoder_loss_fn(AutoencoderRecipe())(ae, x, torch.Generator().manual_seed(1))[0]
    loss, extras = autoencoder_loss_fn(AutoencoderRecipe(feature_weight=3.0), evaluator)(
        ae, x, torch.Generator().manual_seed(1)
    )
    rec = ae(x, torch.Generator().manual_seed(1))[0]
    feat = (evaluator.features(rec) - evaluator.features(x)).pow(2).mean()
    torch.testing.assert_close(loss, base + 3.0 * feat)
    assert not any(p.requires_grad for p in evaluator.parameters())


def test_recipe_checks_and_round_trip():
    r = AutoencoderRecipe(kl_weight=1e-5, mse_weight=1.0)
    assert AutoencoderRecipe.from_dict(r.to_dict()) == r
    with pytest.raises(ValueError, match="unknown AutoencoderRecipe keys"):
        AutoencoderRecipe.from_dict({"kl": 1})
    with pytest.raises(ValueError, match="kl_weight"):
        AutoencoderRecipe(kl_weight=-1.0)
    with pytest.raises(ValueError, match="reconstruction loss"):
        AutoencoderRecipe(l1_weight=0.0, mse_weight=0.0)


def test_measured_scaling_gives_unit_std_latents(digits):
    train, val = digits
    ae = _tiny_ae().eval()
    factor = measure_scaling_factor(ae, train, batch_size=300, seed=4)
    # a hand computation: 1 / std of every element of the samples, drawn in the same order
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        z = torch.cat([ae.encode(c).sample(gen) for c in torch.split(train.images, 300)])
    assert factor == pytest.approx(1.0 / z.double().std(correction=0).item(), rel=1e-9)
    assert factor != pytest.approx(1.0, abs=0.05)  # a real rescaling, not already unit
    ae.config.scaling_factor = factor
    with torch.no_grad():
        scaled = ae.encode_latents(train.images, torch.Generator().manual_seed(4))
    assert scaled.std().item() == pytest.approx(1.0, rel=1e-4)
    # the means are spread less than the samples (the posterior std adds to them)
    assert latent_moments(ae, train, seed=None)["std"] < 1.0 / factor


def test_save_load_gives_identical_outputs(tmp_path, digits):
    train, _ = digits
    ae = _tiny_ae(3, scaling_factor=0.37).eval()
    folder = save_autoencoder(ae, tmp_path / "ae", data="digits8x8")
    again, config = read_autoencoder(folder)
    assert config["kind"] == "autoencoder" and config["data"] == "digits8x8"
    assert again.config == ae.config and again.scaling_factor == 0.37
    x = train.images[:5]
    with torch.no_grad():
        assert torch.equal(again.encode_latents(x), ae.encode_latents(x))
        z = torch.randn(5, 4, 2, 2)
        assert torch.equal(again.decode_latents(z), ae.decode_latents(z))


def test_load_errors_name_the_file(tmp_path):
    ae = _tiny_ae()
    folder = save_autoencoder(ae, tmp_path / "ae")
    config_path = folder / "config.json"
    good = json.loads(config_path.read_text())

    def rewrite(cfg):
        config_path.write_text(json.dumps(cfg))

    rewrite({**good, "kind": "image"})
    with pytest.raises(InputError, match=r"config\.json: not an autoencoder \(kind='image'\)"):
        load_autoencoder(folder)
    rewrite({**good, "autoencoder": {**good["autoencoder"], "chanels": [8]}})
    with pytest.raises(InputError, match=r"config\.json: bad 'autoencoder' entry .*chanels"):
        load_autoencoder(folder)
    rewrite({**good, "autoencoder": {**good["autoencoder"], "channels": [8, 8]}})
    with pytest.raises(InputError, match=r"model\.safetensors: the weights do not fit"):
        load_autoencoder(folder)
    rewrite({"kind": "autoencoder"})
    with pytest.raises(InputError, match="missing 'autoencoder'"):
        load_autoencoder(folder)
    with pytest.raises(InputError, match="no such checkpoint folder"):
        load_autoencoder(tmp_path / "nothing")


def test_reconstruction_scores_of_a_perfect_and_a_bad_reconstruction(digits):
    """PSNR of decode(encode(x).mean) against psnr_db, and evaluator accuracy on originals
    equals the evaluator's own accuracy."""
    from synesthesia.metrics.evaluator import evaluator_accuracy
    from synesthesia.nets.classifier import ClassifierConfig, HierarchicalSensoryNet

    _, val = digits
    torch.manual_seed(0)
    evaluator = HierarchicalSensoryNet(ClassifierConfig(image_size=8)).eval()
    ae = _tiny_ae().eval()
    scores = reconstruction_scores(ae, val, evaluator, batch_size=100)
    with torch.no_grad():
        rec = ae.decode(ae.encode(val.images).mean)
    assert scores["psnr_db"] == pytest.approx(psnr_db(rec, val.images).mean().item(), rel=1e-5)
    assert scores["psnr_pooled_db"] <= scores["psnr_db"]  # Jensen: PSNR is convex in the MSE
    assert scores["evaluator_accuracy_original"] == evaluator_accuracy(evaluator, val)
    assert scores["latent_shape"] == [4, 2, 2] and scores["num_images"] == len(val)


def test_a_tiny_training_run_lowers_the_loss_and_measures_the_scaling(tmp_path, digits):
    train, val = digits
    before = reconstruction_scores(_tiny_ae(), val)["psnr_db"]
    ae, result, plan = train_autoencoder(train, _options(tmp_path, max_steps=60, lr=3e-3))
    assert result.complete and result.step == 60
    first, last = result.losses[:5], result.losses[-5:]
    assert sum(last) < 0.6 * sum(first)
    assert reconstruction_scores(ae, val)["psnr_db"] > before + 2.0
    # the scaling factor of the EMA model, measured on the training set, is in config.json
    config = json.loads((tmp_path / "checkpoint" / "config.json").read_text())
    assert config["autoencoder"]["scaling_factor"] == ae.config.scaling_factor
    assert config["scaling"]["step"] == 60 and config["scaling"]["items"] == len(train)
    assert ae.config.scaling_factor == pytest.approx(
        measure_scaling_factor(ae, train, seed=0), rel=1e-9
    )
    loaded = load_autoencoder(tmp_path / "checkpoint")
    with torch.no_grad():
        assert torch.equal(loaded.encode_latents(val.images), ae.encode_latents(val.images))


def test_resume_after_an_interrupt_gives_the_uninterrupted_losses(tmp_path, digits, monkeypatch):
    """The rewrite of config.json (the scaling factor) keeps the checkpoint resumable, and a
    resumed run continues exactly."""
    train, _ = digits
    full_ae, full, _ = train_autoencoder(train, _options(tmp_path / "full"))
    real = pipeline.autoencoder_loss_fn

    def interrupting(*args, **kwargs):
        loss_fn, calls = real(*args, **kwargs), {"n": 0}

        def wrapped(model, batch, generator):
            calls["n"] += 1
            if calls["n"] == 4:  # what the trainer's handler raises on a second Ctrl-C
                raise KeyboardInterrupt
            return loss_fn(model, batch, generator)

        return wrapped

    monkeypatch.setattr(pipeline, "autoencoder_loss_fn", interrupting)
    _, first, _ = train_autoencoder(train, _options(tmp_path / "cut"))
    assert first.interrupted and first.step == 3
    cut = json.loads((tmp_path / "cut" / "checkpoint" / "config.json").read_text())
    assert cut["scaling"]["step"] == 3
    monkeypatch.setattr(pipeline, "autoencoder_loss_fn", real)
    ae, rest, _ = train_autoencoder(train, _options(tmp_path / "cut"), resume=True)
    assert rest.step == 8
    assert first.losses + rest.losses == pytest.approx(full.losses, rel=0, abs=0)
    assert ae.config.scaling_factor == full_ae.config.scaling_factor
    # a resumed run refuses another seed, naming it
    with pytest.raises(InputError, match="seed: the run .* used 0, this call gives 1"):
        train_autoencoder(train, _options(tmp_path / "cut", seed=1), resume=True)


def test_comparison_grid_puts_each_row_of_originals_above_its_reconstructions(tmp_path, digits):
    import numpy as np
    from PIL import Image

    from synesthesia.pipelines.autoencoder import comparison_grid, reconstruct

    _, val = digits
    ae, x = _tiny_ae().eval(), val.images[:5]
    path = comparison_grid(ae, x, tmp_path / "g.png", nrow=3, scale=1)
    grid = np.asarray(Image.open(path), dtype=np.float32) / 255.0
    assert grid.shape == (4 * 10 + 2, 3 * 10 + 2)  # rows: originals, reconstructions, twice

    def tile(row: int, col: int) -> np.ndarray:
        y, x0 = 2 + row * 10, 2 + col * 10
        return grid[y : y + 8, x0 : x0 + 8]

    def pixels(img) -> np.ndarray:
        return np.rint((img.clamp(-1, 1).numpy()[0] + 1) / 2 * 255) / 255

    rec = reconstruct(ae, x)
    for i in range(5):
        row, col = divmod(i, 3)
        np.testing.assert_allclose(tile(2 * row, col), pixels(x[i]), atol=1e-6)
        np.testing.assert_allclose(tile(2 * row + 1, col), pixels(rec[i]), atol=1e-6)
    assert tile(2, 2).max() == 0.0 and tile(3, 2).max() == 0.0  # padding tiles are blank


def test_class_spread_takes_the_classes_in_turn():
    from synesthesia.pipelines.autoencoder import class_spread

    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    assert class_spread(labels, 7).tolist() == [0, 3, 5, 1, 4, 6, 2]
    assert class_spread(labels, 100).tolist() == [0, 3, 5, 1, 4, 6, 2, 7, 8]
    shuffled = torch.tensor([2, 0, 1, 0, 2])
    assert shuffled[class_spread(shuffled, 5)].tolist() == [0, 1, 2, 0, 2]
