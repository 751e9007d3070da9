"""The joint embedding model: one encoder per modality, projection heads, one L2-normalised space.

This is the chapter's ``MultimodalEncoder`` made real. Each modality (``"image"``, ``"text"``,
``"speech"``, or any other registered in :mod:`synesthesia.multimodal.modalities`) has a tower
(its encoder followed by a :class:`~synesthesia.nets.encoders.ProjectionHead`) whose output is
L2-normalised, so the dot product of two embeddings is their cosine similarity. Training binds
every modality to one *anchor* modality (ImageBind, Girdhar et al. 2023): one contrastive loss
per (anchor, other) pair, each with its own learnable logit scale; modalities that are never
paired directly (text and speech) still meet, through the anchor.

Inputs of the public ``embed_*`` methods are raw: images ``N x 1 x 28 x 28`` in [-1, 1], texts as
a list of strings, audio as waveforms with their sample rate (turned into log-mel features with
the model's own :class:`~synesthesia.data.audio.LogMelConfig`).

``config.json`` (format 2) holds each modality's settings under ``towers``; checkpoints of
format 1 (each encoder's config at the top level, beside ``vocabulary``, ``log_mel`` and
``speech_frames``) load unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from synesthesia.errors import InputError
from synesthesia.multimodal.losses import LogitScale, gather_with_grad
from synesthesia.multimodal.modalities import (
    PROMPT_WORDS,
    default_log_mel,
    default_vocabulary,
    get_modality,
    settings_from_dict,
)
from synesthesia.nets.encoders import ProjectionHead, l2_normalize

__all__ = [
    "CONFIG_FORMAT",
    "MODALITIES",
    "PROMPT_WORDS",
    "JointEmbeddingConfig",
    "JointEmbeddingModel",
    "default_log_mel",
    "default_vocabulary",
]

#: The default modalities of a model (any registered modality may be used).
MODALITIES = ("image", "text", "speech")
#: The layout of config.json written by :meth:`JointEmbeddingConfig.to_dict`.
CONFIG_FORMAT = 2
# format 1: the three built-in towers' fields at the top level of config.json
_FORMAT1_TOWERS = {
    "image": {},
    "text": {"vocabulary": "vocabulary"},
    "speech": {"log_mel": "log_mel", "speech_frames": "frames"},
}


@dataclass
class JointEmbeddingConfig:
    """Everything needed to rebuild a :class:`JointEmbeddingModel` (saved as config.json).

    ``towers`` maps a modality to its settings (the dataclass its registry entry names, or a
    dict of its fields); a modality left out gets the defaults.
    """

    modalities: tuple[str, ...] = MODALITIES
    anchor: str = "image"
    embed_dim: int = 64
    loss: str = "clip"  # "clip" (symmetric InfoNCE) | "siglip" (pairwise sigmoid)
    init_temperature: float = 0.07  # CLIP: logit scale starts at 1 / 0.07
    max_logit_scale: float = 100.0  # CLIP / open_clip clamp
    towers: dict[str, Any] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)  # what it was trained on

    def __post_init__(self) -> None:
        if isinstance(self.modalities, str) or len(set(self.modalities)) != len(
            tuple(self.modalities)
        ):
            raise InputError(f"modalities must be distinct names, got {self.modalities!r}")
        self.modalities = tuple(self.modalities)
        entries = {m: get_modality(m) for m in self.modalities}
        if len(self.modalities) < 2:
            raise InputError(
                f"modalities must be two or more registered modalities, got {list(self.modalities)}"
            )
        if self.anchor not in self.modalities:
            raise InputError(f"anchor {self.anchor!r} is not one of modalities {self.modalities}")
        if self.loss not in ("clip", "siglip"):
            raise InputError(f"loss must be 'clip' or 'siglip', got {self.loss!r}")
        if not isinstance(self.towers, dict):
            raise InputError(f"towers must map a modality to its settings, got {self.towers!r}")
        extra = sorted(set(self.towers) - set(self.modalities))
        if extra:
            raise InputError(f"towers {extra} are not among modalities {list(self.modalities)}")
        self.towers = {
            m: settings_from_dict(e.settings, self.towers.get(m, {}), f"towers.{m}")
            for m, e in entries.items()
        }

    def tower(self, modality: str) -> Any:
        """The settings of ``modality``'s tower (an error naming the model's modalities)."""
        if modality not in self.towers:
            raise InputError(
                f"this model has no {modality!r} tower (modalities: {self.modalities})"
            )
        return self.towers[modality]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with ``"kind": "clip"`` (read by ``synesthesia eval``)."""
        return {"kind": "clip", "format": CONFIG_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], source: str | Path | None = None
    ) -> JointEmbeddingConfig:
        """The config saved by :meth:`to_dict` (format 2) or by the format-1 code.

        Unknown keys and bad values raise :class:`InputError` naming ``source`` (the file).
        """
        where = f"{source}: " if source is not None else ""
        if not isinstance(data, dict):
            raise InputError(f"{where}expected a JSON object, got {type(data).__name__}")
        data = {k: v for k, v in data.items() if k != "kind"}
        fmt = data.pop("format", 1)
        if fmt == 1:
            data = _from_format1(data, where)
        elif fmt != CONFIG_FORMAT:
            raise InputError(
                f"{where}clip config format {fmt!r} is not known here (this version reads "
                f"1 and {CONFIG_FORMAT}); upgrade synesthesia"
            )
        names = [f.name for f in dataclasses.fields(cls)]
        extra = sorted(set(data) - set(names))
        if extra:
            raise InputError(
                f"{where}not a clip config: unknown JointEmbeddingConfig fields {extra} "
                f"(known: {names})"
            )
        try:
            return cls(**data)
        except InputError as exc:
            raise InputError(f"{where}{exc}") from None
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}bad clip config ({exc})") from None


def _from_format1(data: dict[str, Any], where: str) -> dict[str, Any]:
    """A format-1 config (towers' fields at the top level) in the format-2 layout."""
    core = {f.name for f in dataclasses.fields(JointEmbeddingConfig)} - {"towers"}
    tower_keys = set(_FORMAT1_TOWERS) | {k for v in _FORMAT1_TOWERS.values() for k in v}
    extra = sorted(set(data) - core - tower_keys)
    if extra:
        known = [f.name for f in dataclasses.fields(JointEmbeddingConfig)]
        raise InputError(
            f"{where}not a clip config: unknown JointEmbeddingConfig fields {extra} "
            f"(known: {known})"
        )
    out = {k: v for k, v in data.items() if k in core}
    modalities = out.get("modalities", MODALITIES)
    towers = {}
    for name in modalities if isinstance(modalities, (list, tuple)) else ():
        if name not in _FORMAT1_TOWERS:
            continue
        tower = {"encoder": data[name]} if name in data else {}
        for old, new in _FORMAT1_TOWERS[name].items():
            if old in data:
                tower[new] = data[old]
        towers[name] = tower
    out["towers"] = towers
    return out


def _no_change() -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


class JointEmbeddingModel(nn.Module):
    """Encoders + projection heads for each modality into one L2-normalised joint space."""

    def __init__(self, config: JointEmbeddingConfig | None = None) -> None:
        super().__init__()
        config = config or JointEmbeddingConfig()
        entries = {m: get_modality(m) for m in config.modalities}
        towers = {m: e.complete(config.towers[m]) for m, e in entries.items()}
        self.config = config = dataclasses.replace(config, towers=towers)
        self._entries = entries
        self._inputs = {m: e.prepare_input(towers[m]) for m, e in entries.items()}
        self.encoders = nn.ModuleDict({m: e.build_encoder(towers[m]) for m, e in entries.items()})
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
    def tokenizer(self):
        """The text tower's :class:`~synesthesia.nets.tokenizer.WordTokenizer`."""
        self.config.tower("text")
        return self._inputs["text"].tokenizer

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

        ``inputs``: what the modality's ``prepare_input`` takes: images ``B x 1 x H x W`` for
        "image"; a list of strings (or ``(ids, mask)``) for "text"; log-mel features
        ``B x n_mels x frames`` for "speech".
        """
        if modality not in self.encoders:
            raise InputError(
                f"this model has no {modality!r} tower (modalities: {self.config.modalities})"
            )
        args = self._inputs[modality](inputs, self.device)
        keep_fp32 = self._entries[modality].float32
        # towers marked float32 run outside any autocast (disabling, never entering, bf16)
        with torch.autocast(self.device.type, enabled=False) if keep_fp32 else _no_change():
            features = self.encoders[modality](*args)
        return l2_normalize(self.heads[modality](features).float())

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Embeddings of every modality of this model that ``batch`` holds, and for each other
        modality ``m`` present with the anchor ``logits_m`` (anchor x m, scaled) and ``scale_m``.

        Under several training processes the logits are global: every process's embeddings
        are gathered with gradients (:func:`~synesthesia.multimodal.losses.gather_with_grad`),
        so ``logits_m`` is (P*B) x (P*B) on every rank, the other ranks' items as negatives.
        """
        out = {m: self.encode(m, batch[m]) for m in self.config.modalities if m in batch}
        if self.anchor in out:
            gather = gather_with_grad if torch.is_grad_enabled() else (lambda x: x)
            embeddings = {m: gather(e) for m, e in out.items()}
            for m in self.others:
                if m in out:
                    out[f"logits_{m}"] = self.logits(embeddings, m)
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

    def embed(self, modality: str, items: Any, batch_size: int = 500) -> torch.Tensor:
        """Unit-norm embeddings ``N x D`` of ``items`` of any of the model's modalities (what
        its registry entry's ``prepare_input`` takes), in batches, without gradients."""
        return self._embed(modality, items, batch_size)

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
        tower = self.config.tower("speech")
        config = LogMelConfig.from_dict(tower.log_mel)
        feats = [
            fix_length(f, tower.frames, pad_value=config.floor, align="center")
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
        """A model rebuilt from ``folder`` (written by :meth:`save_pretrained` or the trainer).

        A missing, corrupted or mismatched file raises :class:`InputError` naming it (a config
        of another kind, unknown fields, a tensor whose shape the config does not give).
        """
        from synesthesia.io import CONFIG_NAME, WEIGHTS_NAME, load_pretrained

        folder = Path(folder)
        state, config = load_pretrained(folder)
        source = folder / CONFIG_NAME
        if config.get("kind", "clip") != "clip":
            raise InputError(
                f"{source}: has kind {config.get('kind')!r}, not 'clip'; "
                "load it with the class made for that kind"
            )
        parsed = JointEmbeddingConfig.from_dict(config, source=source)
        try:
            model = cls(parsed)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{source}: cannot build the model ({exc})") from None
        weights = folder / WEIGHTS_NAME
        own = model.state_dict()
        for name, tensor in state.items():
            if name in own and tuple(own[name].shape) != tuple(tensor.shape):
                raise InputError(
                    f"{weights}: tensor {name!r} has shape {tuple(tensor.shape)} where "
                    f"{source.name} gives {tuple(own[name].shape)}; the weights and the config "
                    "do not belong together (restore the checkpoint or train again)"
                )
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise InputError(
                f"{weights}: weights do not match {source.name} (missing {missing[:3]}, "
                f"unexpected {unexpected[:3]})"
            )
        return model.to(device).eval()
