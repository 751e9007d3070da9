"""The space-time U-Nets: a fresh factorised model is the image model frame by frame (exactly),
masked temporal mixing keeps frames apart, the temporal attention against a naive reference,
the Conv3d baseline's size, bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from synesthesia.errors import InputError
from synesthesia.nets.encoders import TextEncoder, TextEncoderConfig
from synesthesia.nets.unet import UNet, unet_preset
from synesthesia.nets.video_unet import (
    Conv3dUNet,
    TemporalLayer,
    TextConditionedVideoUNet,
    VideoUNet,
    VideoUNetConfig,
    build_video_unet,
    conv3d_config,
    count_parameters,
)


@pytest.fixture(autouse=True)
def _small_ops_on_one_thread(one_thread):
    """Tiny blocks only (see conftest.py)."""


def _spatial(**overrides):
    return unet_preset(
        "tiny", image_size=12, num_classes=None, context_dim=8, pooled_dim=8, **overrides
    )


def _unzero(module: torch.nn.Module, seed: int = 1) -> None:
    """Give the zero-initialised layers of ``module`` random weights."""
    g = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        if p.abs().sum() == 0:
            with torch.no_grad():
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def _cond(b: int, seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    context = torch.randn(b, 4, 8, generator=g)
    mask = torch.zeros(b, 4, dtype=torch.bool)
    mask[:, 3] = True
    return {"context": context, "context_mask": mask, "pooled": torch.randn(b, 8, generator=g)}


def _video(b=2, f=5, seed=0):
    return torch.randn(b, 1, f, 12, 12, generator=torch.Generator().manual_seed(seed))


def test_a_fresh_video_model_is_the_image_model_frame_by_frame_exactly():
    torch.manual_seed(0)
    video = VideoUNet(VideoUNetConfig(_spatial(), frames=5)).eval()
    _unzero(video.unet)  # a trained-looking image model; the temporal layers stay fresh
    image = UNet(_spatial()).eval()
    image.load_state_dict(video.unet.state_dict())  # same parameter names as the image U-Net
    x, t, cond = _video(), torch.tensor([10.0, 700.0]), _cond(2)
    with torch.no_grad():
        out = video(x, t, **cond)
        frames = x.transpose(1, 2).reshape(10, 1, 12, 12)
        rep = {k: v.repeat_interleave(5, dim=0) for k, v in cond.items()}
        ref = image(frames, t.repeat_interleave(5), **rep).reshape(2, 5, 1, 12, 12)
    assert out.shape == x.shape
    assert ref.abs().max() > 0.01  # a real output, not the zero of a fresh U-Net
    assert torch.equal(out, ref.transpose(1, 2))


def _trained_video(**cfg) -> VideoUNet:
    torch.manual_seed(0)
    net = VideoUNet(VideoUNetConfig(_spatial(), frames=5, **cfg)).eval()
    _unzero(net)
    with torch.no_grad():
        for layer in net.temporal.values():
            if layer.attn is not None:
                layer.rel_bias.normal_()
    return net


def test_temporal_mixing_carries_a_change_to_other_frames_and_the_mask_stops_it():
    net = _trained_video()
    x, t, cond = _video(), torch.tensor([300.0, 300.0]), _cond(2)
    y = x.clone()
    y[:, :, 2] += 1.0  # change frame 2 of both videos
    with torch.no_grad():
        mixed = net(x, t, **cond), net(y, t, **cond)
        ind = torch.tensor([True, True])
        apart = net(x, t, **cond, independent=ind), net(y, t, **cond, independent=ind)
    others = [0, 1, 3, 4]
    assert (mixed[0][:, :, others] - mixed[1][:, :, others]).abs().max() > 1e-3
    assert torch.equal(apart[0][:, :, others], apart[1][:, :, others])
    assert (apart[0][:, :, 2] - apart[1][:, :, 2]).abs().max() > 1e-3


def test_a_mixed_batch_treats_each_item_as_if_alone():
    net = _trained_video()
    x, t, cond = _video(), torch.tensor([50.0, 900.0]), _cond(2)
    with torch.no_grad():
        both = net(x, t, **cond, independent=torch.tensor([True, False]))
        alone_video = net(x[1:], t[1:], **{k: v[1:] for k, v in cond.items()})
        alone_frames = net(x[:1], t[:1], **{k: v[:1] for k, v in cond.items()},
                           independent=torch.tensor([True]))  # fmt: skip
    assert torch.allclose(both[1:], alone_video, atol=1e-5)
    assert torch.allclose(both[:1], alone_frames, atol=1e-5)


def _naive_temporal_attention(layer: TemporalLayer, h: torch.Tensor) -> torch.Tensor:
    """h + proj(softmax(Q K^T / sqrt(d) + B[j - i]) V) per sequence and head, in loops."""
    n, c, f = h.shape
    d = c // layer.heads
    wq, wk, wv = layer.attn.weight.chunk(3, dim=0)
    out = torch.empty_like(h)
    for s in range(n):
        tokens = layer.attn_norm(h[s : s + 1])[0].T  # (F, C)
        q, k, v = tokens @ wq.T, tokens @ wk.T, tokens @ wv.T
        heads = []
        for j in range(layer.heads):
            sl = slice(j * d, (j + 1) * d)
            scores = q[:, sl] @ k[:, sl].T / math.sqrt(d)
            bias = torch.tensor(
                [
                    [float(layer.rel_bias[j, b - a + layer.frames - 1]) for b in range(f)]
                    for a in range(f)
                ]
            )
            heads.append(torch.softmax(scores + bias, dim=-1) @ v[:, sl])
        out[s] = h[s] + layer.proj(torch.cat(heads, dim=1)).T
    return out


def test_temporal_attention_matches_a_naive_reference_with_relative_positions():
    torch.manual_seed(4)
    layer = TemporalLayer(16, frames=6, kinds=("attention",), heads=2, groups=8)
    _unzero(layer)
    with torch.no_grad():
        layer.rel_bias.normal_()
        h = torch.randn(3, 16, 6)
        assert torch.allclose(layer(h), _naive_temporal_attention(layer, h), atol=1e-5)
        # fewer frames than the table: the same offsets are read
        assert torch.allclose(
            layer(h[..., :4]), _naive_temporal_attention(layer, h[..., :4]), atol=1e-5
        )


def test_the_relative_bias_makes_attention_know_the_frame_order():
    torch.manual_seed(5)
    layer = TemporalLayer(8, frames=4, kinds=("attention",), heads=2, groups=4)
    _unzero(layer)
    h = torch.randn(2, 8, 4)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        # without a bias, attention over frames is permutation-equivariant ...
        layer.rel_bias.zero_()
        assert torch.allclose(layer(h[..., perm]), layer(h)[..., perm], atol=1e-5)
        # ... with one it is not
        layer.rel_bias.normal_()
        assert not torch.allclose(layer(h[..., perm]), layer(h)[..., perm], atol=1e-3)


def test_temporal_conv_is_a_kernel_3_convolution_over_frames():
    torch.manual_seed(6)
    layer = TemporalLayer(8, frames=8, kinds=("conv",), heads=2, groups=4)
    _unzero(layer)
    h = torch.randn(2, 8, 8)
    with torch.no_grad():
        norm = layer.conv_norm
        normed = F.group_norm(h, norm.num_groups, norm.weight, norm.bias, norm.eps)
        ref = h + F.conv1d(F.silu(normed), layer.conv.weight, layer.conv.bias, padding=1)
        assert torch.allclose(layer(h), ref, atol=1e-6)
        # without the normalisation (whose statistics span the frames), a change in frame 0
        # reaches frame 1 and no further
        layer.conv_norm = torch.nn.Identity()
        g = h.clone()
        g[..., 0] += 1.0
        moved = (layer(h) - layer(g)).abs().amax(dim=(0, 1)) > 0
    assert moved.tolist() == [True, True] + [False] * 6


def test_image_weights_load_into_the_video_model():
    image = UNet(_spatial())
    video = VideoUNet(VideoUNetConfig(_spatial(), frames=4))
    video.unet.load_state_dict(image.state_dict())  # strict: every name matches
    assert set(video.state_dict()) - {f"unet.{k}" for k in image.state_dict()} == {
        k for k in video.state_dict() if k.startswith("temporal.")
    }


def test_per_frame_layout_has_no_temporal_layers_and_levels_select_them():
    assert len(VideoUNet(VideoUNetConfig(_spatial(), temporal=())).temporal) == 0
    some = VideoUNet(VideoUNetConfig(_spatial(), temporal_levels=(1,)))
    every = VideoUNet(VideoUNetConfig(_spatial()))
    assert 0 < len(some.temporal) < len(every.temporal)
    assert all(not name.endswith("0_0") or name.startswith("mid") for name in some.temporal)
    last = VideoUNet(VideoUNetConfig(_spatial(), temporal_levels=(-1,)))  # the lowest: 1 of 0-1
    assert set(last.temporal) == set(some.temporal)


def test_conv_levels_add_convolution_only_layers_at_the_finer_levels():
    cfg = VideoUNetConfig(_spatial(), frames=5, temporal_levels=(-1,), conv_levels=(0,))
    net = VideoUNet(cfg)
    lowest = VideoUNet(VideoUNetConfig(_spatial(), frames=5, temporal_levels=(-1,)))
    finer = set(net.temporal) - set(lowest.temporal)
    assert finer and all(name[-3] == "0" for name in finer)  # down0_*, up0_*
    assert all(net.temporal[n].attn is None and net.temporal[n].conv is not None for n in finer)
    assert all(net.temporal[n].attn is not None for n in lowest.temporal)
    # zero-initialised, so the new layers leave the model the image model on every frame
    image = UNet(cfg.spatial)
    net.unet.load_state_dict(image.state_dict())
    x, t = _video(f=5), torch.tensor([3.0, 700.0])
    want = image(x.transpose(1, 2).reshape(10, 1, 12, 12), t.repeat_interleave(5),
                 **{k: v.repeat_interleave(5, 0) for k, v in _cond(2).items()})  # fmt: skip
    got = net(x, t, **_cond(2)).transpose(1, 2).reshape(10, 1, 12, 12)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    # trained (non-zero), a conv-only layer mixes frames: changing frame 0 changes frame 1
    _unzero(net)
    y = x.clone()
    y[:, :, 0] += 1.0
    assert (net(y, t, **_cond(2))[:, :, 1] - net(x, t, **_cond(2))[:, :, 1]).abs().max() > 1e-4
    again = VideoUNetConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(ValueError, match="conv_levels needs"):
        VideoUNetConfig(_spatial(), temporal=("attention",), conv_levels=(0,))


def test_bad_video_input_is_one_clear_error():
    net = VideoUNet(VideoUNetConfig(_spatial(), frames=4))
    t = torch.tensor([1.0])
    with pytest.raises(InputError, match="5 dimensions"):
        net(torch.zeros(1, 1, 12, 12), t, **_cond(1))
    with pytest.raises(InputError, match="built for at most 4"):
        net(torch.zeros(1, 1, 6, 12, 12), t, **_cond(1))
    with pytest.raises(InputError, match="2 channels"):
        net(torch.zeros(1, 2, 4, 12, 12), t, **_cond(1))
    with pytest.raises(InputError, match="independent"):
        net(torch.zeros(1, 1, 4, 12, 12), t, **_cond(1), independent=torch.tensor([True, False]))


def test_config_json_round_trip_and_unknown_keys():
    cfg = VideoUNetConfig(_spatial(), frames=6, temporal=("conv",), temporal_levels=(1,))
    again = VideoUNetConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(ValueError, match="unknown VideoUNetConfig keys"):
        VideoUNetConfig.from_dict({**cfg.to_dict(), "frame": 3})
    with pytest.raises(ValueError, match="layout"):
        VideoUNetConfig(_spatial(), layout="3d")


def test_conv3d_baseline_matches_the_parameter_count_and_shapes():
    cfg = VideoUNetConfig(_spatial(), frames=4)
    base = conv3d_config(cfg)
    net = build_video_unet(base)
    assert isinstance(net, Conv3dUNet)
    target = count_parameters(VideoUNet(cfg))
    assert abs(count_parameters(net) - target) / target < 0.15
    _unzero(net)
    x = _video(2, 4)
    out = net(x, torch.tensor([3.0, 4.0]), **_cond(2))
    assert out.shape == x.shape and out.abs().max() > 0
    with pytest.raises(InputError, match="cannot mask"):
        net(x, torch.tensor([3.0, 4.0]), **_cond(2), independent=torch.tensor([True, False]))


def test_text_conditioned_video_unet_reads_token_ids():
    torch.manual_seed(0)
    text = TextEncoder(TextEncoderConfig(vocab_size=12, dim=8, depth=1, heads=2))
    model = TextConditionedVideoUNet(VideoUNet(VideoUNetConfig(_spatial(), frames=3)), text)
    _unzero(model.unet)
    ids = torch.tensor([[2, 5, 6, 0], [2, 7, 0, 0]])
    out = model(_video(2, 3), torch.tensor([5.0, 5.0]), ids=ids, mask=ids == 0)
    assert out.shape == (2, 1, 3, 12, 12)
    # the encoded context gives the same as the ids
    cond = model.encode_text(ids, ids == 0)
    again = model(_video(2, 3), torch.tensor([5.0, 5.0]), **cond)
    assert torch.allclose(out, again)
