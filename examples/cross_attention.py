"""Section 13.3.4: a text encoder's token features read by cross-attention, padding masked.

No training: a second or two on any CPU. It shows

1. the prompt as token ids with a padding mask (the tokenizer pads to the longest prompt);
2. the text encoder's per-token features, what every cross-attention block reads as keys
   and values (Stable Diffusion reads CLIP's last hidden states the same way);
3. the library's cross-attention block against the formula written out by hand
   (softmax(Q K^T / sqrt(d)) V per head, output projection, residual);
4. that padding never changes the output and a real word does;
5. how much attention each word of a prompt receives;
6. where the text-conditioned U-Net has cross-attention, and the pooled prompt that joins
   its time embedding.

    python examples/cross_attention.py
"""

from __future__ import annotations

import torch
from torch import nn

from synesthesia.data.captions import VOCABULARY
from synesthesia.nets.encoders import TextEncoder, TextEncoderConfig
from synesthesia.nets.layers import Attention
from synesthesia.nets.tokenizer import WordTokenizer
from synesthesia.nets.unet import UNet, unet_preset
from synesthesia.pipelines.text2image_train import TEXT_PRESETS


def by_hand(block: Attention, x: torch.Tensor, context: torch.Tensor, pad: torch.Tensor):
    """Cross-attention written out (Vaswani et al. 2017, eq. 1; Rombach et al. 2022, sec. 3.3)."""
    b, c, h, w = x.shape
    heads, d = block.num_heads, c // block.num_heads
    queries = block.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C): one query per pixel
    q = block.to_q(queries).view(b, h * w, heads, d).transpose(1, 2)
    k, v = block.to_kv(context).chunk(2, dim=-1)  # keys and values from the prompt's tokens
    k = k.view(b, -1, heads, d).transpose(1, 2)
    v = v.view(b, -1, heads, d).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / d**0.5  # (B, heads, HW, L)
    scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))  # padding gets weight 0
    weights = scores.softmax(dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(b, h * w, c)
    out = block.proj(out).transpose(1, 2).reshape(b, c, h, w)
    return x + out, weights  # the residual: the block adds to the image features


def main() -> None:
    torch.manual_seed(0)
    prompts = ["a thick seven", "the number 3, written thin and small"]

    # 1. words -> ids; True in the mask marks padding (the first prompt is shorter)
    tokenizer = WordTokenizer(VOCABULARY, max_length=24)
    ids, pad = tokenizer(prompts)
    print("ids:\n", ids, "\npadding:\n", pad.int())

    # 2. per-token features (B, L, 64): the keys and values of cross-attention
    text = TextEncoder(
        TextEncoderConfig(
            vocab_size=len(tokenizer), dim=64, depth=2, heads=4, pad_id=tokenizer.pad_id
        )
    ).eval()
    with torch.no_grad():
        tokens = text.encode_tokens(ids, pad)
    print("token features:", tuple(tokens.shape))

    # 3. a cross-attention block over 7 x 7 image features with 32 channels. Its output
    # projection starts at zero (a new block is the identity in a U-Net); random weights here,
    # so that it does something to look at.
    block = Attention(32, num_heads=4, context_dim=64).eval()
    nn.init.normal_(block.proj.weight, std=0.2)
    x = torch.randn(2, 32, 7, 7)
    with torch.no_grad():
        out = block(x, tokens, pad)
        ref, weights = by_hand(block, x, tokens, pad)
    print(f"library vs by hand: max |difference| {(out - ref).abs().max():.2e}")
    assert (out - ref).abs().max() < 1e-5

    # 4. padding is masked: other features at padded positions change nothing, nor does the
    # amount of padding (the short prompt alone, without the long one beside it, has none);
    # one real word does
    noisy = tokens.clone()
    noisy[pad] = torch.randn_like(noisy[pad]) * 10
    alone_ids, alone_pad = tokenizer(prompts[:1])
    other = tokenizer(["a thin seven", prompts[1]])[0]
    with torch.no_grad():
        same = block(x, noisy, pad)
        alone = block(x[:1], text.encode_tokens(alone_ids, alone_pad), alone_pad)
        changed = block(x, text.encode_tokens(other, pad), pad)
    print(f"padded features replaced: max |difference| {(same - out).abs().max():.2e}")
    print(f"prompt alone (no padding): max |difference| {(alone - out[:1]).abs().max():.2e}")
    print(f"'thick' -> 'thin': max |difference| {(changed - out)[0].abs().max():.2e}")
    assert (same - out).abs().max() < 1e-5 and (alone - out[:1]).abs().max() < 1e-5
    assert (changed - out)[0].abs().max() > 1e-3

    # 5. attention each word of the second prompt receives (mean over heads and pixels)
    words = [tokenizer.tokens[i] for i in ids[1][~pad[1]].tolist()]
    share = weights[1].mean(dim=(0, 1))[~pad[1]]
    print("attention per token:", ", ".join(f"{w} {s:.2f}" for w, s in zip(words, share)))

    # 6. the text-conditioned U-Net of `synesthesia train text2image` (pixel preset "small")
    cfg = unet_preset(
        "small",
        **{**TEXT_PRESETS["small"], "num_classes": None, "context_dim": 64, "pooled_dim": 64},
    )
    unet = UNet(cfg)
    sizes = [28 // 2**level for level in range(len(cfg.channel_mults))]
    crossing = [n for n, m in unet.named_modules() if isinstance(m, Attention) and m.context_dim]
    print(
        f"levels {sizes} px; cross-attention at {[sizes[i] for i in cfg.cross_levels]} px and "
        f"in the middle: {len(crossing)} blocks ({', '.join(crossing)})"
    )
    pooled = TextEncoder.pool(tokens, pad)  # mean over real tokens -> the time embedding
    with torch.no_grad():
        pred = unet(
            torch.randn(2, 1, 28, 28),
            torch.tensor([500.0, 500.0]),
            context=tokens,
            context_mask=pad,
            pooled=pooled,
        )
    print("U-Net prediction:", tuple(pred.shape))


if __name__ == "__main__":
    main()
