import numpy as np
import pytest
import torch

from synesthesia.data.captions import (
    CAPTION_TEMPLATES,
    NUMBER_WORDS,
    SIZE_THRESHOLDS,
    SIZE_THRESHOLDS_PER_CLASS,
    SLANT_THRESHOLD,
    THICKNESS_THRESHOLDS,
    VOCABULARY,
    attribute_thresholds,
    attributes_row,
    caption,
    captions_for,
    class_prompts,
    measure_attributes,
    tokenize,
)


def _canvas(n: int = 1) -> np.ndarray:
    return -np.ones((n, 1, 28, 28), dtype=np.float32)


def _bar(width: int, length: int, shear: float = 0.0) -> torch.Tensor:
    """A vertical bar of ``width`` x ``length`` pixels; each row moves right by ``shear`` per
    row upwards (positive shear: the top leans right)."""
    img = _canvas()
    top = (28 - length) // 2
    for r in range(top, top + length):
        offset = int(round(shear * ((top + length - 1) - r)))
        c0 = 14 - width // 2 - int(round(shear * (length - 1) / 2)) + offset
        img[0, 0, r, c0 : c0 + width] = 1.0
    return torch.from_numpy(img)


def test_thickness_of_a_bar_is_the_ribbon_formula():
    # hand computation: mass = w L, crack perimeter = 2 (w + L), thickness = 2 mass / perimeter
    for w, length in [(2, 20), (5, 20), (3, 12)]:
        t = measure_attributes(_bar(w, length))["thickness"][0]
        assert t == pytest.approx(w * length / (w + length))


def test_thick_stroke_measures_thicker_than_thin_and_gets_the_words():
    thin = measure_attributes(_bar(1, 20))
    thick = measure_attributes(_bar(5, 20))
    assert thick["thickness"][0] > 2 * thin["thickness"][0]
    assert thin["thickness_word"][0] == "thin"
    assert thick["thickness_word"][0] == "thick"


def test_slant_sign_and_value_of_sheared_bars():
    upright = measure_attributes(_bar(3, 20, 0.0))
    right = measure_attributes(_bar(3, 20, 0.4))
    left = measure_attributes(_bar(3, 20, -0.4))
    assert upright["slant"][0] == pytest.approx(0.0, abs=1e-9)
    assert right["slant"][0] == pytest.approx(0.4, abs=0.05)
    assert left["slant"][0] == pytest.approx(-0.4, abs=0.05)
    assert (upright["slant_word"][0], right["slant_word"][0], left["slant_word"][0]) == (
        "upright",
        "right-slanted",
        "left-slanted",
    )
    assert right["slant_deg"][0] == pytest.approx(np.degrees(np.arctan(right["slant"][0])))


def test_bounding_box_size_and_position():
    img = _canvas()
    img[0, 0, 4:10, 3:15] = 1.0  # rows 4..9, columns 3..14
    a = measure_attributes(img)
    assert (a["height"][0], a["width"][0]) == (6, 12)
    assert (a["cx"][0], a["cy"][0]) == (8.5, 6.5)
    assert a["area"][0] == 72
    assert a["size_word"][0] == "small"  # 72 < global 20% quantile
    big = _canvas()
    big[0, 0, 2:26, 2:26] = 1.0
    assert measure_attributes(big, np.array([1]))["size_word"][0] == "large"


def test_empty_image_gives_nan_and_middle_words():
    a = measure_attributes(_canvas(2))
    assert np.isnan(a["thickness"]).all() and np.isnan(a["slant"]).all()
    assert list(a["slant_word"]) == ["upright"] * 2


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="N x 1 x H x W"):
        measure_attributes(np.zeros((28, 28)))
    with pytest.raises(ValueError, match="labels"):
        measure_attributes(_canvas(2), np.array([1, 12]))


def test_thresholds_are_the_quantiles_of_the_built_in_digits():
    from synesthesia.data.images import load_mnist5k

    d = load_mnist5k()
    th = attribute_thresholds(d.images, d.labels)
    np.testing.assert_allclose(th["thickness"], THICKNESS_THRESHOLDS, rtol=1e-4)
    assert th["slant"] == pytest.approx(SLANT_THRESHOLD, rel=1e-4)
    np.testing.assert_allclose(th["size"], SIZE_THRESHOLDS)
    np.testing.assert_allclose(th["size_per_class"], SIZE_THRESHOLDS_PER_CLASS)
    words = measure_attributes(d.images, d.labels)["thickness_word"]
    counts = {w: int((words == w).sum()) for w in ("thin", "medium", "thick")}
    assert all(abs(c - 5000 / 3) < 5 for c in counts.values()), counts


def test_caption_contents_and_articles():
    row = {"thickness_word": "thick", "slant_word": "right-slanted", "size_word": "small"}
    assert caption(7, row, 0) == "a thick, right-slanted, small seven"
    assert caption(7, row, 1) == "the number 7, written thick, right-slanted and small"
    assert caption(8, None, 0) == "an eight"
    assert caption(8, {**row, "thickness_word": "thin"}, 0).startswith("a thin")
    assert caption(3, {**row, "slant_word": "upright", "thickness_word": ""}, 4) == (
        "an upright, small 3"
    )
    for label in range(10):
        for p in class_prompts(label):
            assert NUMBER_WORDS[label] in p or str(label) in p
            assert not {"thin", "thick", "small", "upright"} & set(tokenize(p))


def test_every_caption_uses_the_vocabulary():
    rng = np.random.default_rng(1)
    for _ in range(300):
        row = {
            "thickness_word": rng.choice(["thin", "medium", "thick"]),
            "slant_word": rng.choice(["upright", "left-slanted", "right-slanted"]),
            "size_word": rng.choice(["small", "large", ""]),
        }
        text = caption(int(rng.integers(10)), row, None, rng, drop_prob=0.3)
        assert set(tokenize(text)) <= set(VOCABULARY), text
    assert tokenize("A thick, right-slanted 7") == ["a", "thick", ",", "right-slanted", "7"]


def test_captions_for_is_reproducible_and_grounded():
    img = torch.cat([_bar(1, 20), _bar(5, 20, 0.4)])
    labels = torch.tensor([1, 1])
    attrs = measure_attributes(img, labels)
    a = captions_for(labels, attrs, per_image=4, seed=3)
    assert a == captions_for(labels, attrs, per_image=4, seed=3)
    assert a != captions_for(labels, attrs, per_image=4, seed=4)
    assert all(len(c) == 4 and len(set(c)) == 4 for c in a)
    assert all("thin" in c for c in a[0]) and all("thick" in c for c in a[1])
    assert all("right-slanted" in c for c in a[1])
    assert attributes_row(attrs, 1)["thickness_word"] == "thick"
    with pytest.raises(ValueError, match="rows"):
        captions_for(torch.tensor([1]), attrs)


def test_caption_rejects_bad_arguments():
    with pytest.raises(ValueError, match="label"):
        caption(10)
    with pytest.raises(ValueError, match="template"):
        caption(1, None, len(CAPTION_TEMPLATES))
    with pytest.raises(ValueError, match="size_word"):
        caption(1, {"thickness_word": "thin", "slant_word": "upright"}, 0)


def test_articles_follow_the_sound_not_the_letter():
    from synesthesia.data.captions import _fix_articles

    assert _fix_articles("a eight") == "an eight"
    assert _fix_articles("a 8 written thin") == "an 8 written thin"
    assert _fix_articles("a upright seven") == "an upright seven"
    assert _fix_articles("a one") == "a one"  # "wun": no "an"
    assert _fix_articles("a thick one") == "a thick one"
