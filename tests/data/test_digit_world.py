from pathlib import Path

import numpy as np
import pytest
import torch

from synesthesia.data.audio import fix_length, log_mel
from synesthesia.data.captions import NUMBER_WORDS, tokenize
from synesthesia.data.digit_world import FSDD_VAL_SPEAKERS, ITEM_ATTRIBUTES, DigitWorld
from synesthesia.data.speech import espeak_available, voice_split

SHARED_FSDD = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "fsdd"
pytestmark = pytest.mark.skipif(not espeak_available(), reason="eSpeak NG is not installed")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    fsdd = SHARED_FSDD if SHARED_FSDD.is_dir() else None
    cache = tmp_path_factory.mktemp("cache")
    return DigitWorld.build(n_speech=120, fsdd_folder=fsdd, cache_dir=cache, progress=False)


def _names_digit(text: str, label: int) -> bool:
    tokens = tokenize(text)
    return NUMBER_WORDS[label] in tokens or str(label) in tokens


def test_images_attributes_and_captions_line_up(world):
    assert len(world.images["train"]) == 4000 and len(world.images["val"]) == 1000
    for split in ("train", "val"):
        n = len(world.images[split])
        assert len(world.captions[split]) == n and len(world.attrs[split]["thickness"]) == n
        assert all(len(c) == 5 for c in world.captions[split])
        labels = world.images[split].labels
        for i in (0, n // 2, n - 1):
            assert all(_names_digit(c, int(labels[i])) for c in world.captions[split][i])


def test_triples_pair_the_same_digit_across_modalities(world):
    ds = world.pairs(("image", "text", "speech"), "train")
    pool = world.speech_pool("synthetic", "train")
    assert len(ds) == 4000
    for i in (0, 1234, 3999):
        item = ds[i]
        label = item["label"]
        assert torch.equal(item["image"], world.images["train"].images[i])
        assert item["text"] in world.captions["train"][i] and _names_digit(item["text"], label)
        assert int(pool.clips.labels[item["speech_index"]]) == label
        assert torch.equal(item["speech"], pool.features[item["speech_index"]])
        for key in ITEM_ATTRIBUTES:
            assert item[key] == world.attrs["train"][key][i] or np.isnan(item[key])
        for word_key in ("thickness_word", "slant_word", "size_word"):
            words = {"thin", "medium", "thick", "upright", "left-slanted", "right-slanted"}
            words |= {"small", "large"}
            mentioned = words & set(tokenize(item["text"]))
            assert all(
                w in {item[k] for k in ("thickness_word", "slant_word", "size_word")}
                for w in mentioned
            ), (word_key, item["text"])
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=8, shuffle=False)))
    assert batch["image"].shape == (8, 1, 28, 28) and batch["speech"].shape == (8, 40, 100)
    assert len(batch["text"]) == 8 and batch["label"].dtype == torch.int64


def test_pairs_are_reproducible_and_redrawn_each_epoch(world):
    ds = world.pairs(("image", "speech"), "train", seed=1)
    first = [ds[i]["speech_index"] for i in range(50)]
    assert first == [ds[i]["speech_index"] for i in range(50)]
    assert first == [
        world.pairs(("image", "speech"), "train", seed=1)[i]["speech_index"] for i in range(50)
    ]
    ds.set_epoch(1)
    assert first != [ds[i]["speech_index"] for i in range(50)]
    with pytest.raises(IndexError):
        ds[4000]


def test_speech_splits_hold_out_voices_and_speakers(world):
    train, val = (world.speech_pool("synthetic", s) for s in ("train", "val"))
    assert len(train) + len(val) == 120
    assert {voice_split(v) for v in train.clips.speakers} == {"train"}
    assert {voice_split(v) for v in val.clips.speakers} == {"val"}
    assert train.features.shape == (len(train), 40, 100)
    cfg = world.log_mel_config
    clip = train.clips.waveforms[3]
    expected = fix_length(log_mel(clip, train.clips.sample_rate, cfg), 100, align="center")
    assert torch.allclose(train.features[3], expected, atol=1e-5)
    st = world.pairs(("speech", "text"), "val")
    assert len(st) == len(val)
    item = st[2]
    assert item["speaker"] == val.clips.speakers[2] and _names_digit(item["text"], item["label"])
    assert not {"thin", "thick", "upright"} & set(tokenize(item["text"]))


@pytest.mark.skipif(not SHARED_FSDD.is_dir(), reason="the shared FSDD folder is not here")
def test_fsdd_speakers_are_split(world):
    train, val = (world.speech_pool("fsdd", s) for s in ("train", "val"))
    assert set(val.clips.speakers) == set(FSDD_VAL_SPEAKERS)
    assert not set(train.clips.speakers) & set(FSDD_VAL_SPEAKERS)
    assert len(train) + len(val) == 2000
    both = world.speech_pool("both", "val")
    assert len(both) == len(val) + len(world.speech_pool("synthetic", "val"))
    assert {m["source"] for m in both.clips.meta} == {"synthetic", "fsdd"}
    ds = world.pairs(("image", "speech"), "val", speech_source="fsdd")
    assert {ds[i]["speaker"] for i in range(0, 1000, 97)} <= set(FSDD_VAL_SPEAKERS)


def test_bad_requests_are_named(world):
    with pytest.raises(ValueError, match="modality"):
        world.pairs(("image", "smell"))
    with pytest.raises(ValueError, match="split"):
        world.pairs(("image",), "test")
    with pytest.raises(ValueError, match="source"):
        world.pairs(("speech",), speech_source="radio")
    empty = DigitWorld(world.images, world.attrs, world.captions, {}, world.config)
    with pytest.raises(ValueError, match="no synthetic speech: build with n_speech"):
        empty.pairs(("image", "speech"))
