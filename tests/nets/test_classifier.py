"""The hierarchical sensory model used as the digit evaluator."""

from __future__ import annotations

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
