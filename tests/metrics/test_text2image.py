"""Text-to-image scores: attribute agreement, prompt alignment, the scoring of a prompt set."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from synesthesia.data.captions import measure_attributes
from synesthesia.data.images import ImageSet, load_image_splits
from synesthesia.data.prompts import PromptSpec, attribute_prompts, held_out_prompts, plain_prompts
from synesthesia.errors import InputError
from synesthesia.metrics import attribute_agreement, prompt_alignment, score_prompts
from synesthesia.metrics.fid import feature_frechet_distance

# ------------------------------------------------------------------ hand-drawn images


def _blank() -> np.ndarray:
    return -np.ones((28, 28), dtype=np.float32)


def _box(width: int, height: int) -> np.ndarray:
    """A filled rectangle of ink (bounding-box area width * height)."""
    img = _blank()
    r0, c0 = (28 - height) // 2, (28 - width) // 2
    img[r0 : r0 + height, c0 : c0 + width] = 1.0
    return img


def _parallelogram(width: int, length: int, shear: float) -> np.ndarray:
    """A stroke ``width`` wide and ``length`` tall whose rows shift right by ``shear`` pixels per
    row going up (positive: the top leans right)."""
    img = _blank()
    top = (28 - length) // 2
    bottom = top + length - 1
    left = 14 - width // 2 - int(round(shear * length / 2))
    for r in range(top, bottom + 1):
        c = left + int(round(shear * (bottom - r)))
        img[r, c : c + width] = 1.0
    return img


def _spec(label, attribute, value):
    return PromptSpec(f"a {value} {label}", label, attribute, value, "attribute")


# (image, spec, binary agreement, strict agreement), each known by construction:
# a w x L stroke has thickness 2 w L / (2 (w + L)) = w L / (w + L); the thin/thick boundary is
# (1.73243 + 2.12594) / 2 = 1.929; slant is the shear; a seven's size boundary is (240+360)/2.
T, S, Z = "thickness_word", "slant_word", "size_word"
CASES = [
    (_box(5, 20), _spec(1, T, "thick"), True, True),  # 100 / 25 = 4.0: thick
    (_box(1, 20), _spec(1, T, "thick"), False, False),  # 20 / 21 = 0.95: thin
    (_box(1, 20), _spec(1, T, "thin"), True, True),
    (_box(2, 20), _spec(1, T, "thin"), True, False),  # 40 / 22 = 1.82: medium, below 1.93
    (_box(2, 20), _spec(1, T, "thick"), False, False),
    (_box(3, 6), _spec(1, T, "thick"), True, False),  # 18 / 9 = 2.0: medium, above 1.93
    (_box(3, 6), _spec(1, T, "thin"), False, False),
    (_parallelogram(3, 20, 0.4), _spec(1, S, "right-slanted"), True, True),
    (_parallelogram(3, 20, 0.4), _spec(1, S, "left-slanted"), False, False),
    (_parallelogram(3, 20, -0.4), _spec(1, S, "left-slanted"), True, True),
    (_parallelogram(3, 20, 0.05), _spec(1, S, "right-slanted"), True, False),  # "upright"
    (_box(10, 10), _spec(7, Z, "small"), True, True),  # area 100 < 240
    (_box(20, 20), _spec(7, Z, "large"), True, True),  # 400 > 360
    (_box(16, 20), _spec(7, Z, "large"), True, False),  # 320: above 300, not above 360
    (_box(16, 20), _spec(7, Z, "small"), False, False),
    (_box(15, 18), _spec(7, Z, "small"), True, False),  # 270: below 300, not below 240
    (_box(15, 18), _spec(1, Z, "small"), False, False),  # a one's boundary is 170
    (_blank(), _spec(1, T, "thin"), False, False),  # no ink: no measurement, no agreement
]


def _images(arrays) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)[:, None])


def test_the_drawings_measure_as_designed():
    attrs = measure_attributes(_images([c[0] for c in CASES]), [c[1].label for c in CASES])
    assert attrs["thickness"][3] == pytest.approx(40 / 22)
    assert attrs["thickness"][5] == pytest.approx(2.0)
    assert attrs["thickness_word"][3] == "medium"
    assert 0.0 < attrs["slant"][10] < 0.13  # right of 0, inside "upright"
    assert attrs["slant"][9] < -0.3 and attrs["slant"][7] > 0.3
    assert attrs["area"][13] == 320 and attrs["area"][15] == 270


def test_attribute_agreement_matches_a_hand_count():
    plain = (_box(5, 20), PromptSpec("a seven", 7), None, None)  # plain specs are skipped
    cases = [*CASES, plain]
    out = attribute_agreement(_images([c[0] for c in cases]), [c[1] for c in cases])
    assert out["n"] == 18
    assert out["binary"] == pytest.approx(11 / 18)
    assert out["strict"] == pytest.approx(6 / 18)
    per = out["per_attribute"]
    assert (per[T]["n"], per[T]["binary"], per[T]["strict"]) == (8, 4 / 8, 2 / 8)
    assert (per[S]["n"], per[S]["binary"], per[S]["strict"]) == (4, 3 / 4, 2 / 4)
    assert (per[Z]["n"], per[Z]["binary"], per[Z]["strict"]) == (6, 4 / 6, 2 / 6)
    val = out["per_value"]
    assert (val["thin"]["n"], val["thin"]["binary"], val["thin"]["strict"]) == (4, 2 / 4, 1 / 4)
    assert (val["large"]["binary"], val["large"]["strict"]) == (1.0, 0.5)
    assert val["small"]["n"] == 4 and val["small"]["binary"] == 0.5


def test_attribute_agreement_without_attribute_prompts_and_bad_input():
    out = attribute_agreement(_images([_box(3, 3)]), [PromptSpec("a one", 1)])
    assert out["n"] == 0 and np.isnan(out["binary"]) and np.isnan(out["strict"])
    with pytest.raises(InputError, match="2 images but 1 prompt specs"):
        attribute_agreement(_images([_box(3, 3)] * 2), [PromptSpec("a one", 1)])


# ------------------------------------------------------------------ prompt alignment


class TableClip:
    """A fake joint embedding: an image's embedding is looked up by the number stored in its
    first pixel, a text's by its string."""

    def __init__(self, image_table: torch.Tensor, text_table: dict[str, torch.Tensor]):
        self.image_table, self.text_table = image_table, text_table

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_table[images[:, 0, 0, 0].round().long()]

    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        return torch.stack([self.text_table[t] for t in texts])


def _indexed(n: int) -> torch.Tensor:
    x = torch.zeros(n, 1, 2, 2)
    x[:, 0, 0, 0] = torch.arange(n, dtype=torch.float32)
    return x


def test_a_perfect_model_scores_one_even_when_the_prompts_are_among_the_distractors():
    texts = [f"p{i}" for i in range(5)]
    distractors = [f"d{i}" for i in range(200)] + texts
    eye = torch.eye(205)
    clip = TableClip(eye[:5], {t: eye[k] for k, t in enumerate(texts + distractors[:200])})
    out = prompt_alignment(_indexed(5), texts, clip, distractors, 100, torch.Generator())
    assert out["cosine"] == pytest.approx(1.0)
    assert out["r_precision"] == 1.0


def test_a_model_mapping_everything_to_one_point_scores_chance_by_the_tie_rule():
    texts = ["p0", "p1", "p0"]
    distractors = [f"d{i}" for i in range(150)]
    v = torch.tensor([0.3, -2.0, 1.0])
    clip = TableClip(v.repeat(3, 1), {t: v for t in texts + distractors})
    for n in (2, 10, 100):
        out = prompt_alignment(_indexed(3), texts, clip, distractors, n, torch.Generator())
        assert out["cosine"] == pytest.approx(1.0)
        assert out["r_precision"] == pytest.approx(1 / n)


def test_alignment_against_a_hand_computed_ranking():
    # all eligible distractors are drawn (n_candidates = 2 distinct distractors + 1)
    s = torch.tensor
    images = s([[2.0, 0.0], [0.0, 1.0], [0.6, 0.8]])  # the first is normalised by the metric
    table = {
        "a": s([0.6, 0.8]),
        "b": s([0.0, 1.0]),
        "c": s([0.6, 0.8]),
        "x": s([1.0, 0.0]),
        "y": s([0.6, 0.8]),
    }
    clip = TableClip(images, table)
    out = prompt_alignment(_indexed(3), ["a", "b", "c"], clip, ["x", "y", "x"], 3)
    # image 0: own 0.6 < x 1.0 -> 0; image 1: own 1.0 > 0.8, 0 -> 1; image 2: own 1.0 ties y -> 1/2
    assert out["r_precision"] == pytest.approx(0.5)
    assert out["cosine"] == pytest.approx((0.6 + 1.0 + 1.0) / 3)


def test_r_precision_follows_the_drawing_of_candidates():
    # the prompt loses only to d0; it is drawn with probability 99 / 200: R = 1 - 99 / 200
    n = 2000
    distractors = [f"d{i}" for i in range(200)]
    table = {d: torch.tensor([0.0, 0.0, 1.0]) for d in distractors}
    table["d0"] = torch.tensor([1.0, 0.0, 0.0])
    table["p"] = torch.tensor([0.5, 0.75**0.5, 0.0])
    clip = TableClip(torch.tensor([[1.0, 0.0, 0.0]]).repeat(n, 1), table)
    images = torch.zeros(n, 1, 2, 2)  # every image looks up row 0
    out = prompt_alignment(
        images, ["p"] * n, clip, distractors, 100, torch.Generator().manual_seed(3)
    )
    assert out["r_precision"] == pytest.approx(1 - 99 / 200, abs=0.045)  # 4 binomial sd
    again = prompt_alignment(
        images, ["p"] * n, clip, distractors, 100, torch.Generator().manual_seed(3)
    )
    assert again == out


def test_alignment_needs_enough_distractors():
    clip = TableClip(torch.eye(2), {t: torch.eye(2)[0] for t in ["p", "d0", "d1"]})
    with pytest.raises(InputError, match="only 2 distinct distractors"):
        prompt_alignment(_indexed(1), ["p"], clip, ["d0", "d1", "d1", "p"], 4)
    with pytest.raises(InputError, match="lists of strings"):
        prompt_alignment(_indexed(1), "p", clip, ["d0"], 2)


# ------------------------------------------------------------------ scoring a prompt set


class CentroidEvaluator(nn.Module):
    """A nearest-class-mean classifier with the evaluator's interface (features, decision)."""

    def __init__(self, centroids: torch.Tensor):
        super().__init__()
        self.register_buffer("centroids", centroids)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return -(torch.cdist(x.flatten(1), self.centroids) ** 2)

    def decision(self, f: torch.Tensor) -> torch.Tensor:
        return f


@pytest.fixture(scope="module")
def digits():
    train, val = load_image_splits("mnist5k")
    flat = train.images.flatten(1).numpy()
    centroids = np.stack([flat[train.labels.numpy() == k].mean(0) for k in range(10)])
    return val, centroids


def _numpy_features(images: torch.Tensor, centroids: np.ndarray) -> np.ndarray:
    flat = images.flatten(1).numpy().astype(np.float64)
    return -(((flat[:, None, :] - centroids[None]) ** 2).sum(-1))


class RealDigits:
    """A fake text-to-image model: for each prompt, a validation digit of the asked class that
    has the asked attribute word (measured with the same function), drawn with the generator."""

    def __init__(self, val: ImageSet, specs: list[PromptSpec]):
        self.val, self.by_text = val, {s.text: s for s in specs}
        self.attrs = measure_attributes(val.images, val.labels)
        self.chosen: list[int] = []
        self.calls: list[int] = []

    def __call__(self, texts: list[str], generator: torch.Generator) -> torch.Tensor:
        self.calls.append(len(texts))
        picks = []
        for t in texts:
            s = self.by_text[t]
            ok = self.val.labels.numpy() == s.label
            if s.attribute is not None:
                ok &= self.attrs[s.attribute] == s.value
            pool = np.flatnonzero(ok)
            picks.append(int(pool[torch.randint(len(pool), (1,), generator=generator)]))
        self.chosen += picks
        return self.val.images[picks]


def test_score_prompts_on_real_digits_of_the_asked_class(digits):
    val, centroids = digits
    specs = (
        plain_prompts(templates=[0])
        + attribute_prompts(templates=[0])
        + held_out_prompts(templates=[0])
    )
    fake = RealDigits(val, specs)
    evaluator = CentroidEvaluator(torch.from_numpy(centroids).float())
    out = score_prompts(
        fake, specs, evaluator, val, n_per_prompt=2, seed=5, batch_size=32, progress=False
    )
    assert fake.calls == [32, 32, 32, 32, 12]  # 70 specs x 2, in batches of 32
    chosen = np.asarray(fake.chosen)
    asked = np.repeat([s.label for s in specs], 2)
    groups = np.repeat([s.group for s in specs], 2)
    predicted = _numpy_features(val.images[chosen], centroids).argmax(1)
    for g in ("plain", "attribute", "held_out", "all"):
        keep = np.ones(len(asked), bool) if g == "all" else groups == g
        got = out["groups"][g]
        assert got["num_samples"] == int(keep.sum())
        assert got["class_accuracy"] == pytest.approx((predicted[keep] == asked[keep]).mean())
        if g != "plain":  # every image has the word its prompt names
            assert got["attributes"]["strict"] == 1.0 and got["attributes"]["binary"] == 1.0
    assert "attributes" not in out["groups"]["plain"]
    want_fid = feature_frechet_distance(
        _numpy_features(val.images[chosen], centroids), _numpy_features(val.images, centroids)
    )
    assert out["groups"]["all"]["classifier_fid"] == pytest.approx(want_fid, rel=1e-3)
    own = (_numpy_features(val.images, centroids).argmax(1) == val.labels.numpy()).mean()
    assert out["evaluator_accuracy"] == pytest.approx(own)

    again = RealDigits(val, specs)
    twice = score_prompts(again, specs, evaluator, val, 2, 5, batch_size=32, progress=False)
    assert again.chosen == fake.chosen
    # equal, NaN rates (a pole no prompt of the group names) included
    assert json.dumps(twice["groups"], sort_keys=True) == json.dumps(out["groups"], sort_keys=True)
    other = RealDigits(val, specs)
    score_prompts(other, specs[:10], evaluator, val, 2, 6, batch_size=32, progress=False)
    assert other.chosen != fake.chosen[:20]


def test_score_prompts_with_an_embedding_model(digits):
    val, centroids = digits
    specs = plain_prompts(templates=[1]) + held_out_prompts(templates=[1])
    v = torch.tensor([1.0, 2.0])

    class OnePoint:  # every image and text at one point: R-precision is 1 / n_candidates
        def embed_images(self, images):
            return v.repeat(len(images), 1)

        def embed_texts(self, texts):
            return v.repeat(len(texts), 1)

    evaluator = CentroidEvaluator(torch.from_numpy(centroids).float())
    out = score_prompts(
        RealDigits(val, specs),
        specs,
        evaluator,
        val,
        1,
        0,
        clip_model=OnePoint(),
        n_candidates=50,
        progress=False,
    )
    for entry in [out["reference_alignment"], *(g["alignment"] for g in out["groups"].values())]:
        assert entry["r_precision"] == pytest.approx(1 / 50)
        assert entry["cosine"] == pytest.approx(1.0)
    assert set(out["groups"]) == {"plain", "held_out", "all"}
    assert out["reference_alignment"]["n"] == len(val)
    with pytest.raises(InputError, match="no prompt specs"):
        score_prompts(RealDigits(val, specs), [], evaluator, val, progress=False)
