"""Cross-attention with a padding mask (issue 9), against hand-written references.

test_unet.py already checks unmasked attention against a naive version, a single context
token, and that the U-Net reads its context as a set; here: the padding mask
(``context_mask``, True where padded), end to end through :class:`TextConditionedUNet`.
"""

from __future__ import annotations

import math

import pytest
import torch

from synesthesia.nets.encoders import TextEncoder, TextEncoderConfig
from synesthesia.nets.layers import Attention
from synesthesia.nets.text_unet import TextConditionedUNet
from synesthesia.nets.unet import UNet, _Block, unet_preset


@pytest.fixture(autouse=True)
def _small_ops_on_one_thread(one_thread):
    """Tiny blocks only (see conftest.py)."""


def _block(seed: int = 0, channels: int = 16, heads: int = 2, context_dim: int = 12) -> Attention:
    torch.manual_seed(seed)
    block = Attention(channels, num_heads=heads, context_dim=context_dim)
    torch.nn.init.normal_(block.proj.weight)  # un-zero the residual branch
    torch.nn.init.normal_(block.proj.bias)
    return block


def _reference(block: Attention, x: torch.Tensor, context: torch.Tensor, keep: torch.Tensor):
    """x + proj(softmax(Q K^T / sqrt(d)) V), one sample at a time, over the kept tokens only.

    Vaswani et al. 2017, eq. 1; the padded keys are removed rather than masked.
    """
    b, c, h, w = x.shape
    d = c // block.num_heads
    w_k, w_v = block.to_kv.weight.chunk(2, dim=0)
    out = []
    for i in range(b):
        tokens = block.norm(x[i : i + 1])[0].flatten(1).T  # (HW, C)
        ctx = context[i][keep[i]]  # (L_i, D): the real tokens only
        q, k, v = tokens @ block.to_q.weight.T, ctx @ w_k.T, ctx @ w_v.T
        heads = []
        for j in range(block.num_heads):
            sl = slice(j * d, (j + 1) * d)
            weights = torch.softmax(q[:, sl] @ k[:, sl].T / math.sqrt(d), dim=-1)
            heads.append(weights @ v[:, sl])
        added = block.proj(torch.cat(heads, dim=1))  # (HW, C)
        out.append(x[i] + added.T.reshape(c, h, w))
    return torch.stack(out)


def test_masked_cross_attention_matches_reference_without_the_padded_keys():
    block = _block(1)
    g = torch.Generator().manual_seed(2)
    x, context = torch.randn(3, 16, 4, 5, generator=g), torch.randn(3, 6, 12, generator=g)
    lengths = torch.tensor([6, 3, 1])  # a full row, a padded row, a [CLS]-only row
    keep = torch.arange(6)[None] < lengths[:, None]
    with torch.no_grad():
        got = block(x, context, ~keep)
        want = _reference(block, x, context, keep)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    # the mask matters: without it, the padded rows read their padding
    with torch.no_grad():
        unmasked = block(x, context)
    assert (unmasked[1:] - want[1:]).abs().max() > 1e-2
    torch.testing.assert_close(unmasked[0], want[0], atol=1e-5, rtol=1e-5)


def test_padding_with_arbitrary_features_changes_nothing():
    block = _block(3)
    g = torch.Generator().manual_seed(4)
    x, context = torch.randn(2, 16, 3, 3, generator=g), torch.randn(2, 4, 12, generator=g)
    mask = torch.tensor([[False, False, False, True], [False, True, True, True]])
    with torch.no_grad():
        base = block(x, context, mask)
        junk = context.clone()
        junk[mask] = 1e3 * torch.randn(int(mask.sum()), 12, generator=g)  # huge padded features
        longer = torch.cat([junk, -50 * torch.randn(2, 5, 12, generator=g)], dim=1)
        long_mask = torch.cat([mask, torch.ones(2, 5, dtype=torch.bool)], dim=1)
        torch.testing.assert_close(block(x, junk, mask), base, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(block(x, longer, long_mask), base, atol=1e-5, rtol=1e-5)
        # a change in a real token does move the output (the test above is not vacuous)
        real = context.clone()
        real[0, 1] += 1.0
        assert (block(x, real, mask)[0] - base[0]).abs().max() > 1e-3
        torch.testing.assert_close(block(x, real, mask)[1], base[1])


def test_padding_is_ignored_under_bf16_autocast():
    """The mask also holds when the attention core runs in float32 under CPU bf16 autocast."""
    block = _block(5)
    g = torch.Generator().manual_seed(6)
    x, context = torch.randn(2, 16, 3, 3, generator=g), torch.randn(2, 3, 12, generator=g)
    mask = torch.tensor([[False, False, True], [False, True, True]])
    longer = torch.cat([context, 100 * torch.randn(2, 4, 12, generator=g)], dim=1)
    long_mask = torch.cat([mask, torch.ones(2, 4, dtype=torch.bool)], dim=1)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        a = block(x, context, mask)
        b = block(x, longer, long_mask)
    # the real tokens give the same bf16 keys and values; only the float32 core's summation
    # order may differ, which at most flips one bf16 rounding of the output projection's input
    torch.testing.assert_close(a, b, atol=1e-3, rtol=2.0**-8)


def test_fully_masked_row_and_bad_mask_shape_are_refused():
    block = _block()
    x, context = torch.randn(2, 16, 3, 3), torch.randn(2, 4, 12)
    mask = torch.zeros(2, 4, dtype=torch.bool)
    mask[1] = True  # every token of sample 1 is padding: softmax over nothing
    with pytest.raises(ValueError, match="pads every token"):
        block(x, context, mask)
    with pytest.raises(ValueError, match=r"context_mask must be \(B, L\)"):
        block(x, context, torch.zeros(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="context"):
        block(x)


def _text_unet(seed: int = 0) -> TextConditionedUNet:
    torch.manual_seed(seed)
    text = TextEncoder(TextEncoderConfig(vocab_size=20, dim=16, depth=1, heads=2, max_length=10))
    unet = UNet(unet_preset("tiny", image_size=8, num_classes=None, context_dim=16, pooled_dim=16))
    with torch.no_grad():  # un-zero the residual branches so the prompt reaches the output
        for p in unet.parameters():
            if p.abs().max() == 0:
                p.normal_(std=0.1)
    return TextConditionedUNet(unet, text).eval()


def test_text_unet_reads_the_prompt_and_ignores_its_padding():
    """End to end (text encoder, pooled vector, every cross-attention block): other words change
    the prediction; more padding, with any ids at the padded places, does not."""
    model = _text_unet(7)
    g = torch.Generator().manual_seed(8)
    x, t = torch.randn(2, 1, 8, 8, generator=g), torch.tensor([30.0, 700.0])
    ids = torch.tensor([[2, 5, 6, 7], [2, 9, 0, 0]])  # [CLS]=2, pad=0
    mask = ids == 0
    with torch.no_grad():
        base = model(x, t, ids=ids, mask=mask)
        padded = torch.cat([ids, torch.zeros(2, 4, dtype=torch.long)], dim=1)
        padded[1, 2:] = torch.tensor([11, 12, 13, 14, 15, 16])  # real ids, marked as padding
        pmask = torch.ones_like(padded, dtype=torch.bool)
        pmask[:, :4] = mask
        torch.testing.assert_close(model(x, t, ids=padded, mask=pmask), base, atol=1e-5, rtol=1e-4)
        other = ids.clone()
        other[0, 2] = 8  # one word of the first prompt
        moved = model(x, t, ids=other, mask=mask)
    assert (moved[0] - base[0]).abs().max() > 1e-3
    torch.testing.assert_close(moved[1], base[1], atol=1e-6, rtol=1e-6)


def test_text_unet_refuses_an_all_padding_prompt():
    model = _text_unet()
    ids = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="pads every token"), torch.no_grad():
        model(torch.randn(1, 1, 8, 8), torch.tensor([5.0]), ids=ids, mask=ids == 0)


def test_cross_attention_levels_place_the_blocks():
    """``cross_attention_levels`` chooses the levels with cross-attention; the middle has it."""
    cfg = unet_preset(
        "tiny", num_classes=None, context_dim=8, attention_levels=(1,), cross_attention_levels=(0,)
    )
    net = UNet(cfg)
    crossed = {n for n, m in net.named_modules() if isinstance(m, _Block) and m.cross is not None}
    # two levels: level 0 is down.0 going down and up.1 going up (the up path runs in reverse)
    assert crossed == {"down.0.0", "mid1", "up.1.0", "up.1.1"}
    assert net.get_submodule("down.0.0").attn is None  # self-attention stays at level 1
    assert net.get_submodule("down.1.0").attn is not None
