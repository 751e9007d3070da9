"""The joint embedding model: one encoder per modality, projection heads, one L2-normalised space.

This is the chapter's ``MultimodalEncoder`` made real. Each modality (``"image"``, ``"text"``,
``"speech"``) has a tower (an encoder from :mod:`synesthesia.nets.encoders` followed by a
:class:`~synesthesia.nets.encoders.ProjectionHead`) whose output is L2-normalised, so the dot
product of two embeddings is their cosine similarity. Training binds every modality to one
*anchor* modality (ImageBind, Girdhar et al. 2023): one contrastive loss per (anchor, other) pair,
each with its own learnable logit scale; modalities that are never paired directly (text and
speech) still meet, through the anchor.

Inputs of the public ``embed_*`` methods are raw: images ``N x 1 x 28 x 28`` in [-1, 1], texts as
a list of strings, audio as waveforms with their sample rate (turned into log-mel features with
the model's own :class:`~synesthesia.data.audio.LogMelConfig`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from synesthesia.multimodal.losses import LogitScale
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
from synesthesia.nets.tokenizer import WordTokenizer

MODALITIES = ("image", "text", "speech")
#: Words a prompt may use beyond the caption vocabulary (digits and number words included).
PROMPT_WORDS = (
    "zero one two three four five six seven eight nine 0 1 2 3 4 5 6 7 8 9 "
    "a an the of number digit numeral handwritten written spoken image photo picture drawing "
    "thin medium thick upright left-slanted right-slanted small large and"
)


def default_vocabulary() -> tuple[str, ...]:
    """The caption vocabulary of :mod:`synesthesia.data.captions` plus :data:`PROMPT_WORDS`."""
    from synesthesia.data.captions import VOCABULARY

    return tuple(dict.fromkeys([*VOCABULARY, *PROMPT_WORDS.split()]))


def default_log_mel(n_mels: int = 40) -> dict[str, Any]:
    """Log-mel settings of the speech tower: 16 kHz, 25 ms windows every 20 ms, 20 Hz - 4 kHz.

    A 20 ms hop (50 frames per second) halves the cost of the speech tower against the usual
    10 ms and still resolves the syllables of a spoken digit.
    """
    from synesthesia.data.audio import LogMelConfig

    return LogMelConfig(hop=320, n_mels=n_mels).to_dict()


@dataclass
class JointEmbeddingConfig:
    """Everything needed to rebuild a :class:`JointEmbeddingModel` (saved as config.json)."""

    modalities: tuple[str, ...] = MODALITIES
    anchor: str = "image"
    embed_dim: int = 64
    loss: str = "clip"  # "clip" (symmetric InfoNCE) | "siglip" (pairwise sigmoid)
    init_temperature: float = 0.07  # CLIP: logit scale starts at 1 / 0.07
    max_logit_scale: float = 100.0  # CLIP / open_clip clamp
    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    speech: AudioEncoderConfig = field(default_factory=AudioEncoderConfig)
    vocabulary: tuple[str, ...] = ()  # () -> default_vocabulary()
    log_mel: dict[str, Any] = field(default_factory=dict)  # LogMelConfig fields ({}: defaults)
    speech_frames: int = 48  # log-mel frames every clip is padded / cropped to (0.96 s at 50/s)
    training_data: dict[str, Any] = field(default_factory=dict)  # what it was trained on

    def __post_init__(self) -> None:
        self.modalities = tuple(self.modalities)
        unknown = [m for m in self.modalities if m not in MODALITIES]
        if unknown or len(set(self.modalities)) < 2:
            raise ValueError(
                f"modalities must be two or more of {MODALITIES}, got {list(self.modalities)}"
            )
        if self.anchor not in self.modalities:
            raise ValueError(f"anchor {self.anchor!r} is not one of modalities {self.modalities}")
        if self.loss not in ("clip", "siglip"):
            raise ValueError(f"loss must be 'clip' or 'siglip', got {self.loss!r}")
        for name, cls in (
            ("image", ImageEncoderConfig),
            ("text", TextEncoderConfig),
            ("speech", AudioEncoderConfig),
        ):
            value = getattr(self, name)
            if isinstance(value, dict):
                value = cls(**value)
            if hasattr(value, "channels"):
                value = dataclasses.replace(value, channels=tuple(value.channels))
            setattr(self, name, value)
        self.vocabulary = tuple(self.vocabulary)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with ``"kind": "clip"`` (read by ``synesthesia eval``)."""
        return {"kind": "clip", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JointEmbeddingConfig:
        """The config saved by :meth:`to_dict` (unknown keys are an error, ``kind`` is dropped)."""
        data = {k: v for k, v in data.items() if k != "kind"}
        names = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(data) - names)
        if extra:
            raise ValueError(f"unknown JointEmbeddingConfig fields {extra}; known: {sorted(names)}")
        return cls(**data)


class JointEmbeddingModel(nn.Module):
    """Encoders + projection heads for each modality into one L2-normalised joint space."""

    def __init__(self, config: JointEmbeddingConfig | None = None) -> None:
        super().__init__()
        config = config or JointEmbeddingConfig()
        if "text" in config.modalities:
            if not config.vocabulary:
                config = dataclasses.replace(config, vocabulary=default_vocabulary())
            self.tokenizer = WordTokenizer(config.vocabulary, config.text.max_length)
            config = dataclasses.replace(
                config,
                text=dataclasses.replace(
                    config.text, vocab_size=len(self.tokenizer), pad_id=self.tokenizer.pad_id
                ),
            )
        if "speech" in config.modalities:
            from synesthesia.data.audio import LogMelConfig

            mel = LogMelConfig.from_dict(config.log_mel or default_log_mel(config.speech.n_mels))
            if mel.n_mels != config.speech.n_mels:
                raise ValueError(
                    f"log_mel n_mels={mel.n_mels} differs from the speech encoder's "
                    f"n_mels={config.speech.n_mels}; make them equal"
                )
            config = dataclasses.replace(config, log_mel=mel.to_dict())
        self.config = config
        builders = {
            "image": lambda: ImageEncoder(config.image),
            "text": lambda: TextEncoder(config.text),
            "speech": lambda: AudioEncoder(config.speech),
        }
        self.encoders = nn.ModuleDict({m: builders[m]() for m in config.modalities})
        self.heads = nn.ModuleDict(
            {
                m: ProjectionHead(self.encoders[m].out_dim, config.embed_dim)
                for m in config.modalities
            }
        )
        if config.loss == "siglip":  # SigLIP initialisation: scale 10, bias -10
            scales = {
                m: LogitScale(10.0, config.max_logit_scale, init_bias=-10.0) for m in self.others
            }
        else:
            scales = {
                m: LogitScale(1.0 / config.init_temperature, config.max_logit_scale)
                for m in self.others
            }
        self.logit_scales = nn.ModuleDict(scales)

    @property
    def anchor(self) -> str:
        """The modality every other one is bound to."""
        return self.config.anchor

    @property
    def others(self) -> tuple[str, ...]:
        """The modalities other than the anchor, each with its own loss and logit scale."""
        return tuple(m for m in self.config.modalities if m != self.config.anchor)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ----------------------------------------------------------------------------- encoding
    def encode(self, modality: str, inputs: Any) -> torch.Tensor:
        """L2-normalised embeddings ``B x embed_dim`` of one modality, with gradients.

        ``inputs``: images ``B x 1 x H x W`` for "image"; a list of strings (or ``(ids, mask)``)
        for "text"; log-mel features ``B x n_mels x frames`` for "speech".
        """
        if modality not in self.encoders:
            raise ValueError(
                f"this model has no {modality!r} tower (modalities: {self.config.modalities})"
            )
        if modality == "text":
            if isinstance(inputs, tuple):
                ids, mask = inputs
            else:
                ids, mask = self.tokenizer(inputs)
            # the text tower is tiny and slower in bf16 on CPU: keep it in float32
            with torch.autocast(self.device.type, enabled=False):
                features = self.encoders["text"](ids.to(self.device), mask.to(self.device))
        else:
            features = self.encoders[modality](inputs.to(self.device))
        return l2_normalize(self.heads[modality](features).float())

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Embeddings of every modality of this model that ``batch`` holds, and for each other
        modality ``m`` present with the anchor ``logits_m`` (anchor x m, scaled) and ``scale_m``.
        """
        out = {m: self.encode(m, batch[m]) for m in self.config.modalities if m in batch}
        if self.anchor in out:
            for m in self.others:
                if m in out:
                    out[f"logits_{m}"] = self.logits(out, m)
                    out[f"scale_{m}"] = self.logit_scales[m].scale.detach()
        return out

    def logits(self, embeddings: dict[str, torch.Tensor], modality: str) -> torch.Tensor:
        """Scaled similarities anchor x ``modality`` (plus the SigLIP bias with that loss)."""
        return self.logit_scales[modality](embeddings[self.anchor], embeddings[modality])

    # ----------------------------------------------------------------------------- inference
    @torch.no_grad()
    def _embed(self, modality: str, items: Sequence[Any] | torch.Tensor, batch_size: int):
        was_training = self.training
        self.eval()
        try:
            out = [
                self.encode(modality, items[i : i + batch_size])
                for i in range(0, len(items), batch_size)
            ]
        finally:
            self.train(was_training)
        return torch.cat(out) if out else torch.zeros(0, self.config.embed_dim)

    def embed_images(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Unit-norm embeddings ``N x D`` of images ``N x 1 x 28 x 28`` in [-1, 1]."""
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            raise ValueError("images must be a float tensor N x 1 x H x W in [-1, 1]")
        if images.min() < -1.001 or images.max() > 1.001:
            raise ValueError(
                f"images must lie in [-1, 1], got [{images.min():.3g}, {images.max():.3g}]; "
                "scale 0..255 pixels with x / 127.5 - 1"
            )
        return self._embed("image", images.float(), batch_size)

    def embed_texts(self, texts: Sequence[str], batch_size: int = 500) -> torch.Tensor:
        """Unit-norm embeddings ``N x D`` of a list of strings."""
        if isinstance(texts, str):
            raise ValueError("texts must be a list of strings, got one string; wrap it: [text]")
        return self._embed("text", list(texts), batch_size)

    def speech_features(
        self, waveforms: torch.Tensor | Sequence[torch.Tensor], sample_rate: int
    ) -> torch.Tensor:
        """Log-mel features ``N x n_mels x speech_frames`` of waveforms at ``sample_rate``."""
        from synesthesia.data.audio import LogMelConfig, fix_length, log_mel

        if isinstance(waveforms, torch.Tensor):
            if waveforms.ndim == 1:
                waveforms = waveforms[None]
            if waveforms.ndim != 2:
                raise ValueError(
                    "waveforms must be N x T or a list of 1-D tensors, "
                    f"got {tuple(waveforms.shape)}"
                )
        waves = [torch.as_tensor(w, dtype=torch.float32) for w in waveforms]
        if not waves or any(w.ndim != 1 or w.numel() == 0 for w in waves):
            raise ValueError("waveforms must be one or more non-empty 1-D signals")
        config = LogMelConfig.from_dict(self.config.log_mel)
        feats = [
            fix_length(f, self.config.speech_frames, pad_value=config.floor, align="center")
            for f in log_mel(waves, sample_rate, config)
        ]
        return torch.stack(feats)

    def embed_speech_features(self, features: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Unit-norm embeddings ``N x D`` of log-mel features ``N x n_mels x frames``."""
        return self._embed("speech", features.float(), batch_size)

    def embed_audio(
        self,
        waveforms: torch.Tensor | Sequence[torch.Tensor],
        sample_rate: int,
        batch_size: int = 500,
    ) -> torch.Tensor:
        """Unit-norm embeddings ``N x D`` of waveforms (N x T, or 1-D ones) at ``sample_rate``."""
        return self.embed_speech_features(self.speech_features(waveforms, sample_rate), batch_size)

    # ----------------------------------------------------------------------------- saving
    def save_pretrained(self, folder: str | Path) -> Path:
        """Write ``model.safetensors`` and ``config.json`` (``"kind": "clip"``) into ``folder``."""
        from synesthesia.io import save_pretrained

        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_pretrained(folder, state, self.config.to_dict())
        return Path(folder)

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | torch.device = "cpu"):
        """A model rebuilt from ``folder`` (written by :meth:`save_pretrained` or the trainer)."""
        from synesthesia.io import load_pretrained

        state, config = load_pretrained(folder)
        if config.get("kind", "clip") != "clip":
            raise ValueError(
                f"{folder}: config.json has kind {config.get('kind')!r}, not 'clip'; "
                "load it with the class made for that kind"
            )
        model = cls(JointEmbeddingConfig.from_dict(config))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{folder}: weights do not match config.json (missing {missing[:3]}, "
                f"unexpected {unexpected[:3]})"
            )
        return model.to(device).eval()
