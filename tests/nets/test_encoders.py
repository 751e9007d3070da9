"""Encoders and the word tokenizer of the joint embedding model."""

import pytest
import torch

from synesthesia.nets.encoders import (
    AudioEncoder,
    AudioEncoderConfig,
    ImageEncoder,
    ImageEncoderConfig,
    ProjectionHead,
    TextEncoder,
    TextEncoderConfig,
    l2_normalize,
)
from synesthesia.nets.tokenizer import WordTokenizer, split_words


def test_split_words_keeps_hyphenated_words_and_splits_numerals():
    assert split_words("A thick, right-slanted 17!") == ["a", "thick", "right-slanted", "1", "7"]


def test_tokenizer_ids_padding_and_unknown_words():
    tok = WordTokenizer(["a", "thick", "seven", ",", "7"], max_length=5)
    assert tok.vocabulary == ["a", "thick", "seven", "7"]  # "," has no word in it: skipped
    ids, mask = tok(["a thick seven", "zebra 7"])
    # [PAD]=0 [UNK]=1 [CLS]=2, then the words in order: a=3 thick=4 seven=5 7=6
    assert ids.tolist() == [[2, 3, 4, 5], [2, 1, 6, 0]]
    assert mask.tolist() == [[False] * 4, [False, False, False, True]]
    assert tok.unknown_words("zebra 7") == ["zebra"]
    assert tok.decode(ids[1]) == "[UNK] 7"
    long_ids, _ = tok(["a a a a a a a a"])
    assert long_ids.shape == (1, 5)  # truncated to max_length
    with pytest.raises(ValueError, match="single string"):
        tok("a seven")


def test_image_and_audio_encoders_shapes_and_gain_invariance():
    torch.manual_seed(0)
    img = ImageEncoder(ImageEncoderConfig(channels=(8, 16)))
    assert img(torch.rand(3, 1, 28, 28) * 2 - 1).shape == (3, img.out_dim) == (3, 16)
    audio = AudioEncoder(AudioEncoderConfig(n_mels=20, channels=(4, 8, 8)))
    feats = torch.randn(2, 20, 37)
    out = audio(feats)
    assert out.shape == (2, audio.out_dim) == (2, 2 * 8 * 5)  # 20 -> 10 -> 5 frequency rows
    # a gain change adds a constant to a log spectrogram; the per-clip normalisation removes it
    torch.testing.assert_close(audio(feats + 3.0), out, atol=1e-4, rtol=1e-4)
    # a clip of any length goes in
    assert audio(torch.randn(1, 20, 101)).shape == (1, audio.out_dim)
    with pytest.raises(ValueError, match="n_mels=20"):
        audio(torch.randn(1, 40, 10))


def test_text_encoder_ignores_padding():
    torch.manual_seed(0)
    enc = TextEncoder(TextEncoderConfig(vocab_size=10, dim=16, depth=2, heads=2)).eval()
    ids = torch.tensor([[2, 5, 6]])
    padded = torch.tensor([[2, 5, 6, 0, 0]])
    torch.testing.assert_close(enc(ids), enc(padded), atol=1e-5, rtol=1e-5)
    other = torch.tensor([[2, 6, 5]])  # word order matters (positional embedding)
    assert not torch.allclose(enc(ids), enc(other))


def test_projection_head_and_normalisation():
    head = ProjectionHead(7, 4)
    z = l2_normalize(head(torch.randn(5, 7)))
    torch.testing.assert_close(z.norm(dim=1), torch.ones(5))
