"""The joint embedding model: towers, gradients, saving and loading, raw-input embedding."""

import json

import pytest
import torch

from synesthesia.multimodal.losses import info_nce
from synesthesia.multimodal.model import JointEmbeddingConfig, JointEmbeddingModel


def tiny_config(**kw) -> JointEmbeddingConfig:
    return JointEmbeddingConfig(
        embed_dim=8,
        image={"channels": (4, 8)},
        text={"dim": 16, "depth": 1, "heads": 2},
        speech={"n_mels": 40, "channels": (4, 8)},
        speech_frames=20,
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
    assert "a" in config["vocabulary"] and "seven" in config["vocabulary"]
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
