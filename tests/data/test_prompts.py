"""Prompt sets for text-to-image scoring and the held-out combinations."""

import numpy as np
import pytest

from synesthesia.data.captions import NUMBER_WORDS, VOCABULARY, measure_attributes, tokenize
from synesthesia.data.images import load_image_splits
from synesthesia.data.prompts import (
    ATTRIBUTE_POLES,
    HELD_OUT_COMBINATIONS,
    PromptSpec,
    all_prompts,
    attribute_prompts,
    held_out_mask,
    held_out_prompts,
    plain_prompts,
)
from synesthesia.errors import InputError


def _rows(words: list[tuple[str, str, str]]) -> dict[str, np.ndarray]:
    cols = list(zip(*words))
    return {
        "thickness_word": np.array(cols[0], dtype=object),
        "slant_word": np.array(cols[1], dtype=object),
        "size_word": np.array(cols[2], dtype=object),
    }


def test_held_out_mask_on_hand_built_rows():
    labels = [7, 7, 7, 2, 2, 1, 4, 4, 2]
    attrs = _rows(
        [
            ("thick", "upright", ""),  # thick seven: out
            ("medium", "left-slanted", "small"),  # a seven, not thick: in
            ("thin", "upright", "large"),  # in
            ("thick", "left-slanted", ""),  # left-slanted two: out
            ("thick", "right-slanted", ""),  # in
            ("thick", "left-slanted", "small"),  # a one: in, whatever its words
            ("thin", "upright", "small"),  # small four: out
            ("thick", "upright", "large"),  # in
            ("medium", "upright", "small"),  # in
        ]
    )
    want = [True, False, False, True, False, False, True, False, False]
    assert held_out_mask(labels, attrs).tolist() == want
    # a custom set: only the sevens' combination
    assert held_out_mask(labels, attrs, [(7, "thickness_word", "thick")]).tolist() == [
        True,
        *[False] * 8,
    ]
    assert not held_out_mask(labels, attrs, []).any()


def test_held_out_mask_rejects_bad_input():
    attrs = _rows([("thick", "upright", "")])
    with pytest.raises(InputError, match="has 1 rows for 2 labels"):
        held_out_mask([7, 7], attrs)
    with pytest.raises(InputError, match="thickness_word must be one of"):
        held_out_mask([7], attrs, [(7, "thickness_word", "fat")])
    with pytest.raises(InputError, match="attribute must be one of"):
        held_out_mask([7], attrs, [(7, "colour", "red")])
    with pytest.raises(InputError, match="digit must be 0..9"):
        held_out_mask([7], attrs, [(11, "thickness_word", "thick")])


def test_the_documented_held_out_counts_on_mnist5k():
    train, val = load_image_splits("mnist5k")
    for data, want in [(train, (134, 59, 79)), (val, (28, 21, 18))]:
        mask = held_out_mask(data.labels, measure_attributes(data.images, data.labels))
        lab = data.labels.numpy()
        got = tuple(int(mask[lab == d].sum()) for d, _, _ in HELD_OUT_COMBINATIONS)
        assert got == want
        assert int(mask.sum()) == sum(want)  # no other digit is touched


def test_prompt_counts_and_groups():
    n_templates = 8
    assert len(plain_prompts()) == 10 * n_templates
    assert len(attribute_prompts()) == (10 * 6 - 3) * n_templates
    assert len(held_out_prompts()) == 3 * n_templates
    assert len(all_prompts(templates=[0, 1])) == (10 + 57 + 3) * 2
    assert {s.group for s in plain_prompts()} == {"plain"}
    assert {s.group for s in attribute_prompts()} == {"attribute"}
    assert {s.group for s in held_out_prompts()} == {"held_out"}


def test_held_out_combinations_appear_only_in_the_held_out_group():
    held = {(d, k, w) for d, k, w in HELD_OUT_COMBINATIONS}
    assert {(s.label, s.attribute, s.value) for s in held_out_prompts()} == held
    assert not {(s.label, s.attribute, s.value) for s in attribute_prompts()} & held
    # every other (digit, pole) combination is asked for
    every = {(d, k, w) for d in range(10) for k, poles in ATTRIBUTE_POLES.items() for w in poles}
    assert {(s.label, s.attribute, s.value) for s in attribute_prompts()} == every - held


def test_prompts_are_worded_as_captions():
    texts = {s.text for s in all_prompts()}
    # hand-written captions the templates must produce
    for want in [
        "a thick seven",
        "the number 3, written thin",
        "a left-slanted two",
        "an image of the number 8, written large",
        "a right-slanted 8",
        "the small number four",
        "an eight",
        "the digit seven",
    ]:
        assert want in texts
    for s in all_prompts():
        tokens = tokenize(s.text)
        assert set(tokens) <= set(VOCABULARY)
        assert NUMBER_WORDS[s.label] in tokens or str(s.label) in tokens
        poles = {w for p in ATTRIBUTE_POLES.values() for w in p}
        named = [t for t in tokens if t in poles]
        assert named == ([] if s.value is None else [s.value])


def test_prompt_spec_checks_its_fields():
    with pytest.raises(InputError, match="both attribute and value"):
        PromptSpec("a seven", 7, attribute="thickness_word")
    with pytest.raises(InputError, match="slant_word must be one of"):
        PromptSpec("an upright seven", 7, "slant_word", "upright", "attribute")
    with pytest.raises(InputError, match="group"):
        PromptSpec("a seven", 7, group="test")
    with pytest.raises(InputError, match="label"):
        PromptSpec("a ten", 10)
    with pytest.raises(InputError, match="template"):
        plain_prompts(templates=[8])
