"""The joint embedding model: towers, gradients, saving and loading, raw-input embedding."""

import json
from pathlib import Path

import pytest
import torch

from synesthesia.errors import InputError
from synesthesia.multimodal.losses import info_nce
from synesthesia.multimodal.model import JointEmbeddingConfig, JointEmbeddingModel


def tiny_config(modalities=("image", "text", "speech"), **kw) -> JointEmbeddingConfig:
    towers = {
        "image": {"encoder": {"channels": (4, 8)}},
        "text": {"encoder": {"dim": 16, "depth": 1, "heads": 2}},
        "speech": {"encoder": {"n_mels": 40, "channels": (4, 8)}, "frames": 20},
    }
    return JointEmbeddingConfig(
        modalities=modalities,
        embed_dim=8,
        towers={m: towers[m] for m in modalities},
        **kw,
    )


def _batch(n=4, frames=20):
    g = torch.Generator().manual_seed(0)
    return {
        "image": torch.rand(n, 1, 28, 28, generator=g) * 2 - 1,
        "text": ["a thick seven", "the number 3", "a thin, upright one", "a handwritten 8"][:n],
        "speech": torch.randn(n, 40, frames, generator=g),
    }


def test_gradients_reach_every_tower_and_every_logit_scale():
    torch.manual_seed(0)
    model = JointEmbeddingModel(tiny_config())
    out = model(_batch())
    assert set(out) == {"image", "text", "speech", "logits_text", "logits_speech"} | {
        "scale_text",
        "scale_speech",
    }
    for m in ("image", "text", "speech"):
        torch.testing.assert_close(out[m].norm(dim=1), torch.ones(4))
    torch.testing.assert_close(
        out["logits_speech"], out["scale_speech"] * out["image"] @ out["speech"].t()
    )
    loss = sum(info_nce(out[f"logits_{m}"]) for m in model.others)
    loss.backward()
    for name, p in model.named_parameters():
        if name == "encoders.text.token.weight":
            continue  # only rows of the words used get gradient: checked below
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    grad = model.encoders["text"].token.weight.grad
    used = model.tokenizer(["a thick seven"])[0][0]
    assert (grad[used].abs().sum(dim=1) > 0).all()
    assert set(model.logit_scales) == {"text", "speech"}  # one per pair with the anchor


def test_config_validation():
    with pytest.raises(ValueError, match="anchor"):
        JointEmbeddingConfig(modalities=("text", "speech"), anchor="image")
    with pytest.raises(ValueError, match="two or more"):
        JointEmbeddingConfig(modalities=("image",))
    with pytest.raises(ValueError, match="loss"):
        JointEmbeddingConfig(loss="triplet")


def test_from_pretrained_round_trip(tmp_path):
    torch.manual_seed(1)
    model = JointEmbeddingModel(tiny_config(loss="siglip")).eval()
    batch = _batch()
    model.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["kind"] == "clip" and config["loss"] == "siglip"
    assert config["format"] == 2
    assert "a" in config["towers"]["text"]["vocabulary"]
    assert "seven" in config["towers"]["text"]["vocabulary"]
    loaded = JointEmbeddingModel.from_pretrained(tmp_path / "m")
    assert not loaded.training
    assert loaded.config == model.config
    torch.testing.assert_close(
        loaded.embed_images(batch["image"]), model.embed_images(batch["image"])
    )
    torch.testing.assert_close(loaded.embed_texts(batch["text"]), model.embed_texts(batch["text"]))
    torch.testing.assert_close(
        loaded.embed_speech_features(batch["speech"]), model.embed_speech_features(batch["speech"])
    )
    torch.testing.assert_close(loaded.logit_scales["text"].bias, torch.tensor(-10.0))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        JointEmbeddingModel.from_pretrained(tmp_path / "nowhere")


def test_embed_audio_from_waveforms_of_two_sample_rates():
    torch.manual_seed(0)
    model = JointEmbeddingModel(tiny_config(modalities=("image", "speech")))
    t8 = torch.arange(4000) / 8000
    tone8 = torch.sin(2 * torch.pi * 440 * t8)
    t22 = torch.arange(11025) / 22050
    tone22 = torch.sin(2 * torch.pi * 440 * t22)
    feats = model.speech_features([tone8, tone22], 8000)
    assert feats.shape == (2, 40, 20)
    emb8 = model.embed_audio([tone8], 8000)
    emb22 = model.embed_audio(tone22[None], 22050)
    torch.testing.assert_close(emb8.norm(dim=1), torch.ones(1))
    # the same tone at 8 kHz and 22.05 kHz meets after resampling to the model's rate
    assert torch.nn.functional.cosine_similarity(emb8, emb22).item() > 0.95
    with pytest.raises(ValueError, match="no 'text' tower"):
        model.embed_texts(["a seven"])


def test_embed_images_rejects_unscaled_pixels():
    model = JointEmbeddingModel(tiny_config())
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        model.embed_images(torch.full((1, 1, 28, 28), 255.0))


def test_default_vocabulary_knows_every_caption_word():
    from synesthesia.data.captions import VOCABULARY
    from synesthesia.multimodal.zeroshot import DIGIT_TEMPLATES, digit_class_prompts

    model = JointEmbeddingModel(tiny_config(modalities=("image", "text")))
    assert model.tokenizer.unknown_words(" ".join(VOCABULARY)) == []
    prompts = [
        t.format(s) for t in DIGIT_TEMPLATES for v in digit_class_prompts().values() for s in v
    ]
    assert all(model.tokenizer.unknown_words(p) == [] for p in prompts)
    assert model.tokenizer.unknown_words("a purple seven") == ["purple"]


FORMAT1 = Path(__file__).parent / "data" / "clip_format1"


def test_a_format1_checkpoint_loads_and_embeds_as_the_old_code_did():
    ref = json.loads((FORMAT1 / "reference_embeddings.json").read_text())
    model = JointEmbeddingModel.from_pretrained(FORMAT1)
    assert model.config.modalities == ("image", "text", "speech")
    assert model.config.tower("speech").frames == 10
    assert model.config.tower("speech").log_mel["hop"] == 320
    images = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    wave = torch.sin(torch.arange(8000) * 0.05) * 0.5
    texts = ["a thick seven", "the number 3", "zero"]
    # the embeddings the format-1 code wrote (tests/multimodal/data/README.md)
    torch.testing.assert_close(model.embed_images(images), torch.tensor(ref["images"]))
    torch.testing.assert_close(model.embed_texts(texts), torch.tensor(ref["texts"]))
    torch.testing.assert_close(model.embed_audio([wave], 8000), torch.tensor(ref["audio"]))


def test_a_format1_config_saved_again_is_format2_and_equal(tmp_path):
    model = JointEmbeddingModel.from_pretrained(FORMAT1)
    model.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["format"] == 2 and "speech_frames" not in saved
    old = json.loads((FORMAT1 / "config.json").read_text())
    assert saved["towers"]["text"]["vocabulary"] == old["vocabulary"]
    assert saved["towers"]["speech"]["encoder"] == old["speech"]
    again = JointEmbeddingModel.from_pretrained(tmp_path / "m")
    assert again.config == model.config


def _save_tiny(folder: Path) -> JointEmbeddingModel:
    torch.manual_seed(0)
    model = JointEmbeddingModel(tiny_config(modalities=("image", "text")))
    model.save_pretrained(folder)
    return model


def test_a_wrongly_shaped_tensor_names_the_file_and_the_tensor(tmp_path):
    from safetensors.torch import load_file, save_file

    _save_tiny(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    state = load_file(weights)
    name = "heads.text.net.0.weight"
    state[name] = torch.zeros(3, 3)
    save_file(state, weights)
    with pytest.raises(InputError) as info:
        JointEmbeddingModel.from_pretrained(tmp_path / "m")
    message = str(info.value)
    assert str(weights) in message and name in message and "(3, 3)" in message


def test_a_config_of_another_model_relabelled_clip_names_the_file(tmp_path):
    _save_tiny(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    path.write_text(json.dumps({"kind": "clip", "unet": {}, "schedule": {}, "prediction": "v"}))
    with pytest.raises(InputError, match="unknown JointEmbeddingConfig fields") as info:
        JointEmbeddingModel.from_pretrained(tmp_path / "m")
    assert str(path) in str(info.value) and "'unet'" in str(info.value)


def test_bad_tower_settings_name_the_field(tmp_path):
    _save_tiny(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    config["towers"]["text"]["encoder"]["colour"] = "red"
    path.write_text(json.dumps(config))
    with pytest.raises(InputError, match=r"towers\.text\.encoder.*'colour'"):
        JointEmbeddingModel.from_pretrained(tmp_path / "m")
    config["towers"]["text"]["encoder"].pop("colour")
    config["modalities"] = ["image", "smell"]
    path.write_text(json.dumps(config))
    with pytest.raises(InputError, match="unknown modality 'smell'") as info:
        JointEmbeddingModel.from_pretrained(tmp_path / "m")
    assert str(path) in str(info.value)
