"""The 1-D audio U-Net: shapes at any length, conditioning, masking, config JSON."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from synesthesia.nets.audio_unet import AudioUNet, AudioUNetConfig, audio_unet_preset
from synesthesia.nets.encoders import TextEncoder, TextEncoderConfig
from synesthesia.nets.text_unet import TextConditionedUNet


def _randomise_output(net: AudioUNet) -> AudioUNet:
    """Zero-initialised output layers make a fresh U-Net return 0; give them weights."""
    torch.manual_seed(1)
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Linear)) and m.weight.abs().sum() == 0:
            torch.nn.init.normal_(m.weight, std=0.05)
    return net


def _net(**overrides) -> AudioUNet:
    torch.manual_seed(0)
    cfg = audio_unet_preset("tiny", in_channels=4, context_dim=8, pooled_dim=8, **overrides)
    return _randomise_output(AudioUNet(cfg)).eval()


def _context(b: int, length: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    ctx = torch.randn(b, length, 8, generator=g)
    return ctx, torch.zeros(b, length, dtype=torch.bool), ctx.mean(1)


@settings(max_examples=12, deadline=None)
@given(length=st.integers(5, 130), strides=st.sampled_from([(2,), (3,), (4,)]))
def test_output_shape_equals_input_shape_at_any_length(length, strides):
    net = _net(strides=strides)
    x = torch.randn(2, 4, length)
    ctx, mask, pooled = _context(2)
    with torch.no_grad():
        out = net(x, torch.tensor([3.0, 500.0]), ctx, mask, pooled)
    assert out.shape == x.shape


def test_waveform_preset_downsamples_8000_samples_to_31():
    cfg = audio_unet_preset("wave", in_channels=1, context_dim=8, pooled_dim=8)
    net = AudioUNet(cfg)
    lengths = []
    for conv in net.shorten:
        conv.register_forward_hook(lambda m, i, out: lengths.append(out.shape[-1]))
    ctx = torch.zeros(1, 2, 8)
    with torch.no_grad():
        out = net(torch.zeros(1, 1, 8000), torch.tensor([1.0]), ctx, None, ctx[:, 0])
    assert lengths == [2000, 500, 125, 31] and out.shape == (1, 1, 8000)


def test_prompt_time_and_pooled_change_the_output():
    net = _net(cross_attention_levels=(1,))
    x = torch.randn(2, 4, 32, generator=torch.Generator().manual_seed(0))
    ctx, mask, pooled = _context(2)
    t = torch.tensor([100.0, 100.0])
    with torch.no_grad():
        base = net(x, t, ctx, mask, pooled)
        assert not torch.allclose(base, net(x, t, ctx.flip(0), mask, pooled))  # context
        assert not torch.allclose(base, net(x, t, ctx, mask, pooled.flip(0)))  # pooled
        assert not torch.allclose(base, net(x, t + 300, ctx, mask, pooled))  # time


def test_padded_context_tokens_are_ignored():
    net = _net(cross_attention_levels=(0, 1))
    x = torch.randn(1, 4, 20)
    ctx, mask, pooled = _context(1, 3)
    longer = torch.cat([ctx, torch.randn(1, 2, 8)], dim=1)
    longer_mask = torch.tensor([[False, False, False, True, True]])
    with torch.no_grad():
        a = net(x, torch.tensor([10.0]), ctx, mask, pooled)
        b = net(x, torch.tensor([10.0]), longer, longer_mask, pooled)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_config_json_round_trip_and_errors():
    cfg = audio_unet_preset("mel", context_dim=64, pooled_dim=64)
    again = AudioUNetConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(ValueError, match="unknown AudioUNetConfig keys"):
        AudioUNetConfig.from_dict({**cfg.to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="strides"):
        AudioUNetConfig(channel_mults=(1, 2, 2), strides=(2,))
    with pytest.raises(ValueError, match="preset"):
        audio_unet_preset("huge")


def test_plugs_into_the_text_conditioned_unet():
    text = TextEncoder(TextEncoderConfig(vocab_size=20, dim=8, depth=1, heads=2))
    model = TextConditionedUNet(_net(), text)
    ids = torch.tensor([[2, 5, 6], [2, 7, 0]])
    out = model(torch.randn(2, 4, 16), torch.tensor([1.0, 2.0]), ids=ids, mask=ids == 0)
    assert out.shape == (2, 4, 16)
    with pytest.raises(ValueError, match="context"):
        _net()(torch.randn(1, 4, 16), torch.tensor([1.0]), pooled=torch.zeros(1, 8))
