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


def test_an_interrupted_evaluator_is_never_cached(tmp_path, monkeypatch):
    """SIGTERM/Ctrl-C during the first-use training: nothing is cached, the next call retrains."""
    import synesthesia.metrics.evaluator as ev

    train, val = load_image_splits("digits8x8")
    calls = {"n": 0}
    real_loss = ev.evaluator_loss

    def interrupted(model, batch, generator):
        calls["n"] += 1
        if calls["n"] == 4:  # what the trainer sees when SIGTERM/Ctrl-C arrives mid-step
            raise KeyboardInterrupt
        return real_loss(model, batch, generator)

    folder = tmp_path / "evaluator-x"
    monkeypatch.setattr(ev, "evaluator_loss", interrupted)
    with pytest.raises(KeyboardInterrupt, match="nothing was cached"):
        ev.train_evaluator(train, val, folder, steps=8, batch_size=32, progress=False)
    assert not folder.exists() and not folder.with_name(folder.name + "-run").exists()

    monkeypatch.setattr(ev, "evaluator_loss", real_loss)
    trained = []
    real_train = ev.train_evaluator

    def counting(*args, **kwargs):
        trained.append(1)
        return real_train(*args, **{**kwargs, "steps": 8, "batch_size": 32})

    monkeypatch.setattr(ev, "train_evaluator", counting)
    _, config = ev.get_evaluator(train, val, progress=False, folder=folder)
    assert trained == [1] and config["complete"] is True and config["train_steps"] == 8
    _, again = ev.get_evaluator(train, val, progress=False, folder=folder)
    assert trained == [1] and again == config  # complete: loaded, not retrained


def test_an_evaluator_cached_without_the_complete_mark_is_retrained(tmp_path, monkeypatch):
    import json

    import synesthesia.metrics.evaluator as ev

    train, val = load_image_splits("digits8x8")
    folder = tmp_path / "evaluator-y"
    ev.train_evaluator(train, val, folder, steps=4, batch_size=32, progress=False)
    config = json.loads((folder / "config.json").read_text())
    del config["complete"]  # as an older version wrote it, even for a partial evaluator
    (folder / "config.json").write_text(json.dumps(config))
    trained = []
    monkeypatch.setattr(ev, "train_evaluator", lambda *a, **k: trained.append(1) or (None, {}))
    ev.get_evaluator(train, val, progress=False, folder=folder)
    assert trained == [1]
