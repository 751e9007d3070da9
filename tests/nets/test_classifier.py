"""The hierarchical sensory model used as the digit evaluator: shapes, stages, and what it does
(learns real digits as well as an independent linear classifier)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synesthesia.nets.classifier import ClassifierConfig, HierarchicalSensoryNet


@pytest.mark.parametrize("size", [28, 8])
def test_shapes_and_penultimate_features(size):
    net = HierarchicalSensoryNet(ClassifierConfig(image_size=size)).eval()
    x = torch.rand(4, 1, size, size) * 2 - 1
    feats = net.features(x)
    assert feats.shape == (4, 256)
    logits = net(x)
    assert logits.shape == (4, 10) and logits.dtype == torch.float32
    torch.testing.assert_close(logits, net.decision(feats))


def test_stages_follow_the_ventral_stream():
    net = HierarchicalSensoryNet()
    x = torch.zeros(1, 1, 28, 28)
    v1 = net.v1(x)
    v2 = net.v2_v4(v1)
    it = net.it(v2)
    assert v1.shape[-1] == 14 and v2.shape[-1] == 7 and it.shape[1] == 128


def test_bad_input_and_config():
    with pytest.raises(ValueError, match="x must be"):
        HierarchicalSensoryNet()(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="widths"):
        ClassifierConfig(widths=(1, 2))
    cfg = ClassifierConfig(image_size=8)
    assert ClassifierConfig.from_dict(cfg.to_dict()) == cfg


def test_it_learns_real_digits_as_well_as_a_linear_classifier(one_thread):
    """100 Adam steps on 1,200 of scikit-learn's 8 x 8 digits: held-out accuracy at least that
    of logistic regression on the same pixels (an independent classifier), from chance."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    digits = load_digits()
    images = digits.images / 8.0 - 1.0  # [0, 16] -> [-1, 1]
    order = np.random.default_rng(0).permutation(len(digits.target))
    train, test = order[:1200], order[1200:]
    flat = images.reshape(len(images), -1)
    linear = LogisticRegression(max_iter=500).fit(flat[train], digits.target[train])
    baseline = linear.score(flat[test], digits.target[test])
    assert baseline > 0.95

    torch.manual_seed(0)
    net = HierarchicalSensoryNet(ClassifierConfig(image_size=8, widths=(16, 32, 32),
                                                  feature_dim=64))  # fmt: skip
    x = torch.tensor(images, dtype=torch.float32)[:, None]
    y = torch.tensor(digits.target)
    net.eval()
    with torch.no_grad():
        chance = (net(x[test]).argmax(1) == y[test]).float().mean().item()
    assert chance < 0.3
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(100):
        batch = torch.from_numpy(train)[torch.randint(0, len(train), (64,), generator=g)]
        loss = torch.nn.functional.cross_entropy(net(x[batch]), y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        accuracy = (net(x[test]).argmax(1) == y[test]).float().mean().item()
    assert accuracy >= baseline - 0.02, (accuracy, baseline)


def test_dropout_acts_only_in_training_and_decision_reads_the_features():
    torch.manual_seed(1)
    net = HierarchicalSensoryNet(ClassifierConfig(image_size=8, dropout=0.5))
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    net.eval()
    torch.testing.assert_close(net(x), net(x))
    # decision = Linear(ReLU(features)) by hand (Dropout is the identity in eval mode)
    lin = net.decision[-1]
    torch.testing.assert_close(net(x), torch.relu(net.features(x)) @ lin.weight.T + lin.bias)
    net.train()
    assert not torch.allclose(net(x), net(x))
    # one image's logits do not depend on the others in its batch (GroupNorm is per sample)
    net.eval()
    torch.testing.assert_close(net(x)[:2], net(x[:2]), atol=1e-6, rtol=1e-5)
