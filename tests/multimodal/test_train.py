"""The contrastive objective: data checks, augmentation, positives, and that training learns."""

import pytest
import torch

from synesthesia.multimodal.augment import shift_images, spec_augment
from synesthesia.multimodal.losses import info_nce
from synesthesia.multimodal.modalities import LabelPool
from synesthesia.multimodal.model import JointEmbeddingConfig, JointEmbeddingModel
from synesthesia.multimodal.train import ClipData, ContrastiveObjective
from synesthesia.multimodal.zeroshot import ZeroShotClassifier


def test_clip_data_checks_its_inputs():
    images = torch.zeros(4, 1, 28, 28)
    with pytest.raises(ValueError, match="one non-empty list per item"):
        ClipData(torch.arange(4), {"image": images, "text": [["a"]] * 3})
    with pytest.raises(ValueError, match="no speech clip for labels \\[3\\]"):
        ClipData(
            torch.arange(4),
            {"image": images, "speech": LabelPool(torch.zeros(3, 40, 10), torch.arange(3))},
        )
    with pytest.raises(ValueError, match="N labels"):
        ClipData(torch.arange(5), {"image": images})
    data = ClipData(
        torch.arange(4),
        {
            "image": images,
            "text": [["a"]] * 4,
            "speech": LabelPool(torch.zeros(4, 40, 10), torch.arange(4)),
        },
    )
    assert data.modalities == ("image", "text", "speech") and len(data) == 4


def test_shift_images_moves_a_pixel_by_at_most_the_shift_and_is_seeded():
    img = -torch.ones(50, 1, 28, 28)
    img[:, 0, 10, 12] = 1.0
    out = shift_images(img, 2, torch.Generator().manual_seed(0))
    again = shift_images(img, 2, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, again)
    ys, xs = (out[:, 0] == 1.0).nonzero()[:, 1], (out[:, 0] == 1.0).nonzero()[:, 2]
    assert len(ys) == 50  # the pixel survives in every image, nothing else is inked
    assert ((ys - 10).abs() <= 2).all() and ((xs - 12).abs() <= 2).all()
    assert len({(int(y), int(x)) for y, x in zip(ys, xs)}) > 10  # offsets vary
    assert (out == -1.0).sum() == 50 * (28 * 28 - 1)


def test_spec_augment_masks_with_the_clip_mean():
    feats = torch.arange(2 * 6 * 20, dtype=torch.float32).reshape(2, 6, 20)
    out = spec_augment(feats, torch.Generator().manual_seed(1), max_shift=0, freq_mask=2)
    changed = out != feats
    for i in range(2):
        assert torch.all(out[i][changed[i]] == feats[i].mean())
    assert changed.any()


def test_positive_masks(bars):
    data, _ = _tiny_world(bars)
    objective = ContrastiveObjective(data, ("image", "text", "speech"))
    labels = torch.tensor([7, 7, 3])
    inputs = {"text": ["a seven", "a thick seven", "a seven"], "speech": None}
    text = objective.positive_mask("text", inputs, labels)
    assert text.tolist() == [[True, False, True], [False, True, False], [True, False, True]]
    speech = objective.positive_mask("speech", inputs, labels)
    assert speech.tolist() == [[True, True, False], [True, True, False], [False, False, True]]


def _tiny_world(bars):
    g = torch.Generator().manual_seed(0)
    images, labels = bars(64, g)
    words = ["zero", "one"]
    captions = [[f"a {words[c]}", f"the number {c}"] for c in labels.tolist()]
    speech = torch.randn(20, 40, 12, generator=g)
    speech_labels = torch.arange(20) % 2
    speech[speech_labels == 1, :20] += 3.0  # "one" has energy in the low bands
    data = ClipData(
        labels, {"image": images, "text": captions, "speech": LabelPool(speech, speech_labels)}
    )
    torch.manual_seed(0)
    model = JointEmbeddingModel(
        JointEmbeddingConfig(
            embed_dim=16,
            towers={
                "image": {"encoder": {"channels": (8, 16)}},
                "text": {"encoder": {"dim": 32, "depth": 1, "heads": 2}},
                "speech": {"encoder": {"channels": (4, 8)}, "frames": 12},
            },
        )
    )
    return data, model


def test_objective_equals_the_loss_of_its_drawn_inputs(bars):
    data, model = _tiny_world(bars)
    objective = ContrastiveObjective(data, ("image", "text", "speech"))
    batch = torch.utils.data.default_collate([data[i] for i in range(16)])
    loss, logs = objective(model, batch, torch.Generator().manual_seed(5))
    # the same draws, by hand: one InfoNCE per pair with the positives of each modality
    inputs = objective.draw_inputs(batch, torch.Generator().manual_seed(5))
    assert inputs["text"] != objective.draw_inputs(batch, torch.Generator().manual_seed(6))["text"]
    with torch.no_grad():
        out = model(inputs)
        expected = 0.0
        for m in ("text", "speech"):
            mask = objective.positive_mask(m, inputs, batch["label"])
            loss_m = info_nce(out[f"logits_{m}"], mask)
            assert logs[f"loss_{m}"] == pytest.approx(loss_m.item(), rel=1e-5)
            expected = expected + loss_m
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert logs["scale_text"] == pytest.approx(1 / 0.07, rel=1e-5)


def test_training_aligns_images_text_and_speech(bars):
    data, model = _tiny_world(bars)
    objective = ContrastiveObjective(data, ("image", "text", "speech"))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for step in range(30):  # warm-up and clipping as the trainer does them
        for group in opt.param_groups:
            group["lr"] = 3e-3 * min(1.0, (step + 1) / 10)
        idx = torch.randperm(64, generator=g)[:16]
        batch = torch.utils.data.default_collate([data[int(i)] for i in idx])
        loss, _ = objective(model, batch, g)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    model.eval()
    test_images, test_labels = bars(40, torch.Generator().manual_seed(99))
    clf = ZeroShotClassifier.from_prompts(model, ["zero", "one"], templates=["a {}"])
    assert clf.accuracy(model.embed_images(test_images), test_labels) >= 0.95
    # speech and text never met in training: they meet through the images
    pool = data.banks["speech"]
    assert clf.accuracy(model.embed_speech_features(pool.items), pool.labels) >= 0.9
