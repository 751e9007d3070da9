"""Evaluation helpers on hand-built embeddings: grounding and the table."""

import numpy as np
import torch

from synesthesia.multimodal.evaluate import format_table, grounding_scores


class _WordModel:
    """Images embed as +e0 when inked heavily and -e0 when not; texts as +e0 for "thick",
    -e0 for "thin", and 0 on e0 otherwise (a hand-built, perfectly grounded joint space)."""

    def embed_images(self, images):
        thick = images.mean(dim=(1, 2, 3)) > 0
        out = torch.zeros(len(images), 3)
        out[:, 0] = torch.where(thick, 1.0, -1.0)
        out[:, 1] = 1.0
        return out / out.norm(dim=1, keepdim=True)

    def embed_texts(self, texts):
        out = torch.zeros(len(texts), 3)
        for i, t in enumerate(texts):
            out[i, 0] = 1.0 if "thick" in t.split() else -1.0 if "thin" in t.split() else 0.0
            out[i, 1] = 1.0
        return out / out.norm(dim=1, keepdim=True)


def test_grounding_of_a_perfectly_grounded_space():
    images = -torch.ones(6, 1, 28, 28)
    images[:3] = 0.5  # heavily inked: "thick"
    labels = torch.tensor([7, 1, 3, 7, 0, 9])
    words = np.array(["thick"] * 3 + ["thin"] * 3, dtype=object)
    attrs = {"thickness_word": words}
    pairs = (("thickness_word", "thick", "thin"), ("thickness_word", "thin", "thick"))
    out = grounding_scores(_WordModel(), images, labels, attrs, pairs)
    assert out["thick_vs_thin"]["accuracy"] == 1.0 and out["thin_vs_thick"]["accuracy"] == 1.0
    assert out["balanced_thickness"]["accuracy"] == 1.0
    # swap the images: every thick image now looks thin, and the score falls to 0
    out = grounding_scores(_WordModel(), images.flip(0), labels, attrs, pairs)
    assert out["balanced_thickness"]["accuracy"] == 0.0
    assert out["thick_vs_thin"]["mean_margin"] < 0


def test_format_table_lists_the_headline_numbers():
    results = {
        "zero_shot": {"image_from_text_prompts": 0.975},
        "retrieval": {
            "speech_image": {
                "speech_to_image": {"R@1": 0.9, "R@5": 1.0, "median_rank": 1.0},
                "image_to_speech": {"R@1": 0.8, "R@5": 1.0, "median_rank": 1.0},
            }
        },
        "baselines": {"raw_pixel_logistic_regression": 0.9},
    }
    table = format_table(results)
    assert "zero-shot images, text prompts (ensemble)   97.50 %" in table
    assert "speech -> image R@1 (same digit)" in table and "90.00 %" in table
    assert "raw pixel logistic regression" in table


def test_consistent_captions_by_hand():
    from synesthesia.multimodal.evaluate import consistent_captions

    labels = torch.tensor([7, 7, 3])
    attrs = {
        "thickness_word": np.array(["thick", "thin", "thick"], dtype=object),
        "slant_word": np.array(["upright", "right-slanted", "upright"], dtype=object),
        "size_word": np.array(["", "small", ""], dtype=object),
    }
    captions = ["a thick seven", "the number 7, written thin and small", "a 3", "a thin seven"]
    rel = consistent_captions(labels, attrs, captions)
    assert rel.tolist() == [
        [True, False, False, False],  # thick upright 7: only "a thick seven"
        [False, True, False, True],  # thin, slanted, small 7
        [False, False, True, False],  # any 3 matches "a 3"
    ]
