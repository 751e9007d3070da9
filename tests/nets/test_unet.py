"""The U-Net and its blocks: shapes, conditioning, attention vs a naive version, overfitting."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from synesthesia.nets.layers import Attention, ResBlock, timestep_embedding
from synesthesia.nets.unet import UNet, UNetConfig, unet_preset


@pytest.fixture(autouse=True)
def _small_ops_on_one_thread(one_thread):
    """Every test here runs a tiny U-Net (see conftest.py)."""


def _tiny(**kw) -> UNet:
    torch.manual_seed(0)
    return UNet(unet_preset("tiny", **kw))


def test_timestep_embedding_matches_hand_computation():
    # dim 4: frequencies exp(-ln(10000) * i / 2) for i = 0, 1 -> 1 and 1/100
    emb = timestep_embedding(torch.tensor([0.0, 1.0, 2.5]), 4)
    for row, t in zip(emb, (0.0, 1.0, 2.5)):
        want = [math.cos(t), math.cos(t / 100), math.sin(t), math.sin(t / 100)]
        torch.testing.assert_close(row, torch.tensor(want), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="even"):
        timestep_embedding(torch.zeros(2), 3)


@pytest.mark.parametrize("size", [28, 8])
def test_unet_shapes_dtypes_and_float_timesteps(size):
    net = _tiny(image_size=size)
    x = torch.randn(3, 1, size, size)
    for t in (torch.tensor([0.0, 10.5, 999.0]), torch.tensor(5.0)):
        out = net(x, t, labels=torch.tensor([0, 9, 10]))
        assert out.shape == x.shape and out.dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert net(x, torch.rand(3) * 999).dtype == torch.bfloat16


def test_unet_starts_at_zero_and_conditions_on_time_and_class():
    net = _tiny()
    x = torch.randn(2, 1, 28, 28)
    t = torch.tensor([3.0, 700.0])
    # The output convolution is zero-initialised: an untrained U-Net predicts exactly 0.
    assert net(x, t).abs().max() == 0
    with torch.no_grad():  # un-zero the residual branches so conditioning reaches the output
        for param in net.parameters():
            if param.abs().max() == 0:
                param.normal_(std=0.1)
    a = net(x, t, labels=torch.tensor([1, 1]))
    assert not torch.allclose(a, net(x, t, labels=torch.tensor([2, 2])))
    assert not torch.allclose(a, net(x, t + 100, labels=torch.tensor([1, 1])))
    # No labels means the null class.
    torch.testing.assert_close(net(x, t), net(x, t, labels=torch.tensor([10, 10])))


def test_unet_rejects_bad_inputs():
    net = _tiny()
    x = torch.randn(2, 1, 28, 28)
    with pytest.raises(ValueError, match="labels must lie"):
        net(x, torch.zeros(2), labels=torch.tensor([0, 11]))
    with pytest.raises(ValueError, match="x must be"):
        net(torch.randn(2, 3, 28, 28), torch.zeros(2))
    with pytest.raises(ValueError, match="unconditional"):
        UNet(unet_preset("tiny", num_classes=None))(x, torch.zeros(2), labels=torch.zeros(2))
    with pytest.raises(ValueError, match="unknown preset"):
        unet_preset("huge")
    with pytest.raises(ValueError, match="attention_levels"):
        UNetConfig(channel_mults=(1, 2), attention_levels=(2,))


def test_config_json_round_trip():
    cfg = unet_preset("small", image_size=8)
    again = UNetConfig.from_dict(cfg.to_dict())
    assert again == cfg
    with pytest.raises(ValueError, match="unknown UNetConfig keys"):
        UNetConfig.from_dict({**cfg.to_dict(), "colour": 1})


def _naive_attention(block: Attention, x: torch.Tensor, context=None) -> torch.Tensor:
    b, c, h, w = x.shape
    tokens = block.norm(x).flatten(2).transpose(1, 2)
    src = tokens if context is None else context
    q = block.to_q(tokens)
    k, v = block.to_kv(src).chunk(2, dim=-1)
    d = c // block.num_heads
    outs = []
    for i in range(block.num_heads):
        qi, ki, vi = (z[..., i * d : (i + 1) * d] for z in (q, k, v))
        weights = torch.softmax(qi @ ki.transpose(1, 2) / math.sqrt(d), dim=-1)  # Vaswani eq. 1
        outs.append(weights @ vi)
    out = block.proj(torch.cat(outs, dim=-1))
    return x + out.transpose(1, 2).reshape(b, c, h, w)


def test_attention_matches_naive_implementation():
    torch.manual_seed(1)
    block = Attention(16, num_heads=4)
    torch.nn.init.normal_(block.proj.weight)
    x = torch.randn(2, 16, 5, 5)
    torch.testing.assert_close(block(x), _naive_attention(block, x), atol=1e-5, rtol=1e-5)
    cross = Attention(16, num_heads=2, context_dim=12)
    torch.nn.init.normal_(cross.proj.weight)
    ctx = torch.randn(2, 7, 12)
    torch.testing.assert_close(cross(x, ctx), _naive_attention(cross, x, ctx), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="context"):
        cross(x)


def test_resblock_scale_shift_matches_formula():
    torch.manual_seed(2)
    block = ResBlock(8, 8, emb_dim=6)
    torch.nn.init.normal_(block.conv2.weight)
    x, emb = torch.randn(2, 8, 4, 4), torch.randn(2, 6)
    h = block.norm2(block.conv1(F.silu(block.norm1(x))))
    scale, shift = block.emb_proj(F.silu(emb)).chunk(2, dim=1)
    h = h * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
    torch.testing.assert_close(block(x, emb), x + block.conv2(F.silu(h)))


def test_cross_attention_over_one_token_adds_its_value_everywhere():
    """With a single context token the softmax weight is 1 for every query, so the block adds
    proj(W_v c) at every position, whatever the image (Vaswani et al. 2017, eq. 1)."""
    torch.manual_seed(4)
    cross = Attention(16, num_heads=2, context_dim=12)
    torch.nn.init.normal_(cross.proj.weight)
    x, ctx = torch.randn(2, 16, 5, 5), torch.randn(2, 1, 12)
    added = cross(x, ctx) - x
    _, w_v = cross.to_kv.weight.chunk(2, dim=0)  # to_kv holds the key rows, then the value rows
    want = cross.proj(ctx[:, 0] @ w_v.T)  # (B, C)
    torch.testing.assert_close(added, want[:, :, None, None].expand_as(x), atol=1e-5, rtol=1e-5)


def _context_unet() -> UNet:
    torch.manual_seed(5)
    net = UNet(unet_preset("tiny", image_size=8, context_dim=12)).eval()
    with torch.no_grad():  # un-zero the residual branches so the context reaches the output
        for param in net.parameters():
            if param.abs().max() == 0:
                param.normal_(std=0.1)
    return net


def test_unet_output_follows_the_context_tokens_as_a_set():
    net = _context_unet()
    g = torch.Generator().manual_seed(6)
    x, t = torch.randn(2, 1, 8, 8, generator=g), torch.tensor([10.0, 500.0])
    ctx = torch.randn(2, 3, 12, generator=g)
    with torch.no_grad():
        base = net(x, t, context=ctx)
        changed = ctx.clone()
        changed[0, 1] = torch.randn(12, generator=g)  # one token of the first sample
        other = net(x, t, context=changed)
        # the first sample's output moves; the second sample's does not (per-sample context)
        assert (other[0] - base[0]).abs().max() > 1e-3
        torch.testing.assert_close(other[1], base[1])
        # attention without positions over the context is a function of the set of tokens:
        # reordering them, or repeating every token twice, leaves the output unchanged
        torch.testing.assert_close(net(x, t, context=ctx[:, [2, 0, 1]]), base, atol=1e-5, rtol=1e-4)
        twice = torch.cat([ctx, ctx], dim=1)
        torch.testing.assert_close(net(x, t, context=twice), base, atol=1e-5, rtol=1e-4)
        # but a token's weight grows with its copies: three copies of one token is another set
        assert (net(x, t, context=ctx[:, [0, 0, 0, 1, 2]]) - base).abs().max() > 1e-3
    assert base.shape == (2, 1, 8, 8)


def test_unet_overfits_a_batch_of_eight():
    net = _tiny(image_size=16)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(8, 1, 16, 16, generator=g) * 2 - 1
    noise = torch.randn(8, 1, 16, 16, generator=g)
    t = torch.randint(0, 1000, (8,), generator=g).float()
    labels = torch.arange(8)
    abar = torch.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # cosine schedule
    x_t = abar.sqrt()[:, None, None, None] * x0 + (1 - abar).sqrt()[:, None, None, None] * noise
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = (net(x_t, t, labels) - noise).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 0.9  # a zero prediction of unit noise
    assert min(losses[-5:]) < losses[0] / 10


def test_attention_under_bf16_autocast_runs_its_core_in_float32():
    """Under CPU bf16 autocast the attention core runs in float32 (nets.layers.sdpa): the
    output and the input gradient stay within bf16 rounding of the float32 computation
    (a bf16 core would add its own rounding of the softmax weights on top)."""
    from synesthesia.nets.layers import sdpa

    torch.manual_seed(3)
    q, k, v = (torch.randn(2, 4, 49, 16) for _ in range(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sdpa(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert out.dtype == torch.bfloat16
    reference = _naive_core(q.bfloat16().float(), k.bfloat16().float(), v.bfloat16().float())
    # only the final rounding to bf16 separates them: relative error <= 2^-8
    torch.testing.assert_close(out.float(), reference, atol=1e-6, rtol=2.0**-8)

    block = Attention(16, num_heads=4)
    torch.nn.init.normal_(block.proj.weight)
    x = torch.randn(2, 16, 7, 7, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = block(x)
    (gx,) = torch.autograd.grad(y.float().square().sum(), x)
    x32 = x.detach().clone().requires_grad_(True)
    (g32,) = torch.autograd.grad(_naive_attention(block, x32).square().sum(), x32)
    assert torch.isfinite(gx).all()
    assert (gx - g32).norm() / g32.norm() < 0.05  # bf16 linears around the core


def _naive_core(q, k, v):
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    return weights @ v
