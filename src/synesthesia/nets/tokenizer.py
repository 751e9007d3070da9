"""A small word-level tokenizer for short captions and prompts over a fixed, documented vocabulary.

Text is lower-cased and split into words (runs of letters, hyphens and apostrophes) and single
digits ("17" becomes "1", "7"); punctuation is dropped. Known words map to their index in the
vocabulary; anything else maps to ``[UNK]``, so an unknown word never fails, it just carries no
meaning. Every sequence starts with ``[CLS]`` (the text encoder reads its output there) and is
padded with ``[PAD]`` to the longest sequence of the batch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import torch

PAD, UNK, CLS = "[PAD]", "[UNK]", "[CLS]"
SPECIAL_TOKENS = (PAD, UNK, CLS)
_WORD = re.compile(r"[a-z]+(?:['-][a-z]+)*|\d")


def split_words(text: str) -> list[str]:
    """Lower-case ``text`` and split it into words and single digits (punctuation dropped)."""
    return _WORD.findall(text.lower())


class WordTokenizer:
    """Maps texts to integer ids over ``vocabulary``; unknown words become ``[UNK]``.

    ``max_length`` bounds the sequence length including ``[CLS]``; longer texts are truncated
    (their last words dropped).
    """

    def __init__(self, vocabulary: Iterable[str], max_length: int = 24) -> None:
        words: list[str] = []
        seen = set(SPECIAL_TOKENS)
        for word in vocabulary:
            if not isinstance(word, str) or not word:
                raise ValueError(f"vocabulary entries must be non-empty strings, got {word!r}")
            for w in split_words(word):  # entries without letters or digits (",") are skipped
                if w not in seen:
                    seen.add(w)
                    words.append(w)
        if max_length < 2:
            raise ValueError(
                f"max_length must be at least 2 ([CLS] and one word), got {max_length}"
            )
        self.tokens: list[str] = [*SPECIAL_TOKENS, *words]
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.max_length = max_length
        self.pad_id, self.unk_id, self.cls_id = (self.index[t] for t in SPECIAL_TOKENS)

    @property
    def vocabulary(self) -> list[str]:
        """The words (without the special tokens), in id order; saved in model configs."""
        return self.tokens[len(SPECIAL_TOKENS) :]

    def __len__(self) -> int:
        return len(self.tokens)

    def encode_one(self, text: str) -> list[int]:
        """The ids of one text, starting with ``[CLS]``, truncated to ``max_length``."""
        if not isinstance(text, str):
            raise ValueError(f"texts must be strings, got {type(text).__name__}: {text!r}")
        ids = [self.cls_id] + [self.index.get(w, self.unk_id) for w in split_words(text)]
        return ids[: self.max_length]

    def __call__(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids, padding_mask)``: LongTensor B x L and BoolTensor B x L (True where padded)."""
        if isinstance(texts, str):
            raise ValueError(
                "texts must be a list of strings, got a single string; wrap it: [text]"
            )
        if len(texts) == 0:
            raise ValueError("texts is empty; give at least one string")
        encoded = [self.encode_one(t) for t in texts]
        length = max(len(e) for e in encoded)
        ids = torch.full((len(encoded), length), self.pad_id, dtype=torch.long)
        for i, e in enumerate(encoded):
            ids[i, : len(e)] = torch.tensor(e, dtype=torch.long)
        return ids, ids == self.pad_id

    def decode(self, ids: Sequence[int]) -> str:
        """The words of ``ids`` joined by spaces (special tokens other than ``[UNK]`` dropped)."""
        words = [self.tokens[int(i)] for i in ids]
        return " ".join(w for w in words if w not in (PAD, CLS))

    def unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` that are not in the vocabulary (they would become ``[UNK]``)."""
        return [w for w in split_words(text) if w not in self.index]
