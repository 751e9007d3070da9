"""Evaluators and scores: sample accuracy, classifier-FID, evaluator accuracy."""

from synesthesia.metrics.evaluator import (
    TRUSTED_ACCURACY,
    classifier_fid,
    evaluator_accuracy,
    get_evaluator,
    load_evaluator,
    sample_accuracy,
    score_class_conditional,
    score_samples,
    train_evaluator,
)
from synesthesia.metrics.fid import feature_frechet_distance, frechet_distance, gaussian_stats
from synesthesia.metrics.text2image import attribute_agreement, prompt_alignment, score_prompts

__all__ = [
    "TRUSTED_ACCURACY",
    "attribute_agreement",
    "classifier_fid",
    "evaluator_accuracy",
    "feature_frechet_distance",
    "frechet_distance",
    "gaussian_stats",
    "get_evaluator",
    "load_evaluator",
    "prompt_alignment",
    "sample_accuracy",
    "score_class_conditional",
    "score_prompts",
    "score_samples",
    "train_evaluator",
]
