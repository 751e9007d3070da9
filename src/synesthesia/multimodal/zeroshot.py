"""Zero-shot classification in a joint embedding space, from text or speech prompts.

A class is represented by the mean of the unit embeddings of its prompts, re-normalised: CLIP's
prompt ensembling (Radford et al. 2021, section 3.1.4), where every class name is put into every
template ("a {}", "the number {}", ...). An input is assigned the class of highest cosine
similarity. With spoken prompts the class embedding is the mean over recordings of the word.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch

from synesthesia.nets.encoders import l2_normalize

_A_BEFORE_VOWEL = re.compile(r"\b([Aa]) (?!one\b)(?=[aeiouAEIOU8]|eleven\b|eighteen\b)")

ClassPrompts = Mapping[str, str | Sequence[str]] | Sequence[str | Sequence[str]]


def digit_class_prompts() -> dict[str, list[str]]:
    """The ten digit classes "0".."9", each named by its number word and its numeral."""
    from synesthesia.data.captions import NUMBER_WORDS

    return {str(d): [word, str(d)] for d, word in enumerate(NUMBER_WORDS)}


#: Default templates: the caption templates of the digit world, without attributes.
DIGIT_TEMPLATES: tuple[str, ...] = (
    "a {}",
    "the number {}",
    "a handwritten {}",
    "the digit {}",
    "an image of a {}",
    "the {}",
)


def fill_template(template: str, name: str) -> str:
    """``template.format(name)`` with "a" turned into "an" before a vowel sound ("an eight")."""
    return _A_BEFORE_VOWEL.sub(r"\1n ", template.format(name))


def _normalise_prompts(class_prompts: ClassPrompts) -> tuple[list[str], list[list[str]]]:
    if isinstance(class_prompts, Mapping):
        names = [str(k) for k in class_prompts]
        values = list(class_prompts.values())
    elif isinstance(class_prompts, str):
        raise ValueError("class_prompts must be a list or dict of classes, got one string")
    else:
        values = list(class_prompts)
        names = [v if isinstance(v, str) else str(v[0]) for v in values]
    synonyms = [[v] if isinstance(v, str) else list(v) for v in values]
    if len(synonyms) < 2:
        raise ValueError(f"zero-shot needs at least two classes, got {len(synonyms)}")
    for name, syn in zip(names, synonyms):
        if not syn or not all(isinstance(s, str) and s for s in syn):
            raise ValueError(f"class {name!r}: give one or more non-empty prompt strings")
    return names, synonyms


class ZeroShotClassifier:
    """Nearest class embedding by cosine similarity; ``class_embeddings`` is ``C x D``."""

    def __init__(self, class_embeddings: torch.Tensor, class_names: Sequence[str]) -> None:
        if class_embeddings.ndim != 2 or class_embeddings.shape[0] != len(class_names):
            raise ValueError(
                f"class_embeddings must be {len(class_names)} x D (one row per class name), "
                f"got {tuple(class_embeddings.shape)}"
            )
        self.class_embeddings = l2_normalize(class_embeddings.float())
        self.class_names = list(class_names)

    @classmethod
    def from_embeddings(
        cls, prompt_embeddings: Sequence[torch.Tensor], class_names: Sequence[str]
    ) -> ZeroShotClassifier:
        """Ensemble: each class's prompt embeddings (``k_c x D``) averaged and re-normalised."""
        if len(prompt_embeddings) != len(class_names):
            raise ValueError(
                f"{len(prompt_embeddings)} groups of prompt embeddings "
                f"for {len(class_names)} classes"
            )
        rows = []
        for name, emb in zip(class_names, prompt_embeddings):
            if emb.ndim != 2 or emb.shape[0] == 0:
                raise ValueError(f"class {name!r}: prompt embeddings must be k x D with k >= 1")
            # prompt ensembling (CLIP, section 3.1.4): mean of unit embeddings, re-normalised
            rows.append(l2_normalize(emb.float()).mean(0))
        return cls(torch.stack(rows), class_names)

    @classmethod
    def from_prompts(
        cls,
        model,
        class_prompts: ClassPrompts | None = None,
        templates: Sequence[str] | None = DIGIT_TEMPLATES,
    ) -> ZeroShotClassifier:
        """A classifier from text prompts, embedded by ``model.embed_texts``.

        ``class_prompts``: a list of class names (each a string or a list of synonyms) or a dict
        ``name -> string or synonyms``; None gives the ten digits. Every synonym is put into every
        template (``"{}"`` marks the slot); ``templates=None`` uses the prompts as they are.
        """
        names, synonyms = _normalise_prompts(
            digit_class_prompts() if class_prompts is None else class_prompts
        )
        templates = ["{}"] if templates is None else list(templates)
        for t in templates:
            if "{}" not in t:
                raise ValueError(f"template {t!r} has no '{{}}' slot for the class name")
        groups = [[fill_template(t, s) for t in templates for s in syn] for syn in synonyms]
        flat = [p for g in groups for p in g]
        emb = model.embed_texts(flat).cpu()
        sizes = [len(g) for g in groups]
        return cls.from_embeddings(list(torch.split(emb, sizes)), names)

    @classmethod
    def from_audio(
        cls,
        model,
        class_waveforms: Mapping[str, Sequence[torch.Tensor]],
        sample_rate: int,
    ) -> ZeroShotClassifier:
        """A classifier from spoken prompts: each class's recordings embedded and averaged."""
        names = list(class_waveforms)
        if len(names) < 2:
            raise ValueError(f"zero-shot needs at least two classes, got {len(names)}")
        groups = []
        for name in names:
            waves = list(class_waveforms[name])
            if not waves:
                raise ValueError(f"class {name!r} has no recordings")
            groups.append(model.embed_audio(waves, sample_rate).cpu())
        return cls.from_embeddings(groups, names)

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Cosine similarities ``N x C`` of ``embeddings`` (``N x D``) to the classes."""
        if embeddings.ndim != 2 or embeddings.shape[1] != self.class_embeddings.shape[1]:
            raise ValueError(
                f"embeddings must be N x {self.class_embeddings.shape[1]}, "
                f"got {tuple(embeddings.shape)}"
            )
        return l2_normalize(embeddings.float().cpu()) @ self.class_embeddings.t()

    def predict(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Class indices ``N`` of highest similarity."""
        return self.logits(embeddings).argmax(dim=1)

    def accuracy(self, embeddings: torch.Tensor, labels: torch.Tensor) -> float:
        """Fraction of ``embeddings`` assigned their class index in ``labels``."""
        labels = torch.as_tensor(labels).cpu()
        if labels.shape != (embeddings.shape[0],):
            raise ValueError(
                f"labels must have shape ({embeddings.shape[0]},), got {tuple(labels.shape)}"
            )
        return float((self.predict(embeddings) == labels).float().mean())
