"""Joint embedding models: contrastive losses, zero-shot classification and retrieval.

Public API:

- :class:`JointEmbeddingModel` (``from_pretrained``, ``embed_images``, ``embed_texts``,
  ``embed_audio``, ``embed``) and its :class:`JointEmbeddingConfig`;
- the modality registry: :class:`Modality`, :func:`register_modality`, :func:`get_modality`,
  :func:`modality_names` (one entry adds a modality; see :mod:`~synesthesia.multimodal.modalities`);
- :class:`ZeroShotClassifier` (``from_prompts``, ``from_audio``, ``from_embeddings``);
- losses :func:`info_nce`, :func:`sigmoid_loss`, :class:`LogitScale`;
- retrieval :func:`retrieval_metrics`, :func:`bidirectional_retrieval`;
- training :func:`~synesthesia.multimodal.train.train_clip`, evaluation
  :func:`~synesthesia.multimodal.evaluate.evaluate_clip` (import them from their modules).
"""

from synesthesia.multimodal.losses import LogitScale, contrastive_loss, info_nce, sigmoid_loss
from synesthesia.multimodal.modalities import (
    Modality,
    get_modality,
    modality_names,
    register_modality,
)
from synesthesia.multimodal.model import JointEmbeddingConfig, JointEmbeddingModel
from synesthesia.multimodal.retrieval import (
    bidirectional_retrieval,
    relevance_from_labels,
    retrieval_metrics,
)
from synesthesia.multimodal.zeroshot import ZeroShotClassifier

__all__ = [
    "JointEmbeddingConfig",
    "JointEmbeddingModel",
    "LogitScale",
    "Modality",
    "ZeroShotClassifier",
    "bidirectional_retrieval",
    "contrastive_loss",
    "get_modality",
    "info_nce",
    "modality_names",
    "register_modality",
    "relevance_from_labels",
    "retrieval_metrics",
    "sigmoid_loss",
]
