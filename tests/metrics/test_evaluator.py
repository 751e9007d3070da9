"""The digit evaluator and the sample scores built on it."""

from __future__ import annotations

import pytest
import torch

from synesthesia.data.images import ImageSet, load_image_splits
from synesthesia.metrics import sample_accuracy, score_samples
from synesthesia.metrics.evaluator import evaluator_accuracy, load_evaluator, random_shift
from synesthesia.nets.classifier import ClassifierConfig, HierarchicalSensoryNet


def test_random_shift_moves_whole_images():
    x = torch.full((3, 1, 6, 6), -1.0)
    x[:, :, 2:4, 2:4] = 1.0
    out = random_shift(x, 2, torch.Generator().manual_seed(0))
    for img in out:
        ys, xs = torch.nonzero(img[0] > 0, as_tuple=True)
        assert len(ys) == 4 and ys.max() - ys.min() == 1 and xs.max() - xs.min() == 1
    assert torch.equal(random_shift(x, 0, torch.Generator()), x)


def test_scores_agree_with_the_network_forward():
    torch.manual_seed(0)
    net = HierarchicalSensoryNet(ClassifierConfig(image_size=8)).eval()
    images = torch.rand(40, 1, 8, 8) * 2 - 1
    labels = torch.randint(0, 10, (40,))
    with torch.no_grad():
        want = (net(images).argmax(1) == labels).float().mean().item()
    assert sample_accuracy(net, images, labels) == pytest.approx(want)
    ref = ImageSet(images[:20], labels[:20])
    scores = score_samples(net, images[:20], labels[:20], ref)
    assert scores["classifier_fid"] == pytest.approx(0.0, abs=1e-6)  # same set: distance 0
    assert scores["evaluator_accuracy"] == pytest.approx(scores["sample_accuracy"])
    with pytest.raises(ValueError, match="labels"):
        sample_accuracy(net, images, labels[:3])


@pytest.mark.slow
def test_evaluator_reaches_97_percent_on_validation(tmp_path):
    from synesthesia.metrics import train_evaluator

    train, val = load_image_splits("mnist5k")
    model, config = train_evaluator(train, val, tmp_path / "ev", progress=False)
    assert config["val_accuracy"] >= 0.97
    again, _ = load_evaluator(tmp_path / "ev")
    assert evaluator_accuracy(again, val) == pytest.approx(config["val_accuracy"])
