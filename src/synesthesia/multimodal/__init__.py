"""Joint embedding models: contrastive losses, zero-shot classification and retrieval.

Public API:

- :class:`JointEmbeddingModel` (``from_pretrained``, ``embed_images``, ``embed_texts``,
  ``embed_audio``) and its :class:`JointEmbeddingConfig`;
- :class:`ZeroShotClassifier` (``from_prompts``, ``from_audio``, ``from_embeddings``);
- losses :func:`info_nce`, :func:`sigmoid_loss`, :class:`LogitScale`;
- retrieval :func:`retrieval_metrics`, :func:`bidirectional_retrieval`;
- training :func:`~synesthesia.multimodal.train.train_clip`, evaluation
  :func:`~synesthesia.multimodal.evaluate.evaluate_clip` (import them from their modules).
"""

from synesthesia.multimodal.losses import LogitScale, contrastive_loss, info_nce, sigmoid_loss
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
    "ZeroShotClassifier",
    "bidirectional_retrieval",
    "contrastive_loss",
    "info_nce",
    "relevance_from_labels",
    "retrieval_metrics",
    "sigmoid_loss",
]
