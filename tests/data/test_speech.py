import sys

import numpy as np
import pytest
import torch

from synesthesia.data.audio import fix_length, log_mel
from synesthesia.data.captions import NUMBER_WORDS
from synesthesia.data.speech import (
    ESPEAK_SAMPLE_RATE,
    ESPEAK_VOICES,
    VAL_LANGUAGES,
    VAL_VARIANTS,
    EspeakNotFoundError,
    SpeechSet,
    SynthesisConfig,
    espeak_available,
    speak,
    synthesize_digits,
    synthesize_syllables,
    trim_silence,
    voice_split,
)

needs_espeak = pytest.mark.skipif(not espeak_available(), reason="eSpeak NG is not installed")
VOICES = ["en-us+m1", "en+f1"]


def _voiced_seconds(x: torch.Tensor, threshold: float = 0.01) -> float:
    nz = np.flatnonzero(np.abs(x.numpy()) > threshold)
    return (nz[-1] - nz[0]) / ESPEAK_SAMPLE_RATE


def _distance(fa: torch.Tensor, fb: torch.Tensor) -> float:
    """Mean absolute difference of two log-mel spectrograms, centre-aligned."""
    n = max(fa.shape[-1], fb.shape[-1])
    return float(
        (fix_length(fa, n, align="center") - fix_length(fb, n, align="center")).abs().mean()
    )


@needs_espeak
def test_speak_duration_follows_the_speaking_rate():
    slow, normal, fast = (speak("seven", "en-us+m1", rate=r) for r in (100, 175, 300))
    assert normal.dtype == torch.float32 and normal.abs().max() <= 1.0
    assert 0.3 < _voiced_seconds(normal) < 0.7  # a two-syllable word at 175 words per minute
    # duration is inversely proportional to the rate: 300 / 100 = 3
    assert _voiced_seconds(slow) / _voiced_seconds(fast) == pytest.approx(3.0, rel=0.2)
    with pytest.raises(ValueError, match="rate"):
        speak("seven", rate=20)
    with pytest.raises(ValueError, match="no voice"):
        speak("seven", "xx-nonexistent")


@needs_espeak
def test_different_digits_differ_more_than_renderings_of_one_digit():
    clips = [speak(w, "en-us+m1", pitch=50) for w in NUMBER_WORDS]
    clips += [speak(w, "en-us+m1", pitch=60, rate=190) for w in NUMBER_WORDS]
    feats = log_mel(clips, ESPEAK_SAMPLE_RATE)
    base, other = dict(zip(NUMBER_WORDS, feats[:10])), dict(zip(NUMBER_WORDS, feats[10:]))
    same = max(_distance(base[w], other[w]) for w in NUMBER_WORDS)
    diff = min(_distance(base[w], base[u]) for w in NUMBER_WORDS for u in NUMBER_WORDS if w < u)
    assert diff > same


@needs_espeak
def test_synthesised_digits_are_cached_and_deterministic(tmp_path):
    ds = synthesize_digits(6, seed=3, cache_dir=tmp_path, progress=False, voices=VOICES)
    assert isinstance(ds, SpeechSet) and len(ds) == 6
    assert ds.sample_rate == ESPEAK_SAMPLE_RATE == 22_050
    assert sorted(ds.labels.tolist()) == [0, 1, 2, 3, 4, 5]
    cfg = SynthesisConfig()
    d = ds.durations()
    assert (d > 0.2).all() and (d < 1.2).all()
    for w, m, s in zip(ds.waveforms, ds.meta, ds.speakers):
        assert m["voice"] == s and s in VOICES and m["word"] in NUMBER_WORDS
        assert float(w.abs().max()) == pytest.approx(m["peak"], rel=1e-5)
        assert cfg.snr_db[0] <= m["noise_snr_db"] <= cfg.snr_db[1]
        assert cfg.rate[0] <= m["rate"] <= cfg.rate[1] and m["split"] == voice_split(s)
    assert [NUMBER_WORDS[int(lab)] for lab in ds.labels] == [m["word"] for m in ds.meta]
    assert len(list((tmp_path / "speech").iterdir())) == 1
    cached = synthesize_digits(6, seed=3, cache_dir=tmp_path, progress=False, voices=VOICES)
    fresh = synthesize_digits(6, seed=3, progress=False, voices=VOICES, cache=False)
    for other in (cached, fresh):
        assert torch.equal(other.labels, ds.labels) and other.meta == ds.meta
        assert all(torch.equal(a, b) for a, b in zip(other.waveforms, ds.waveforms))
    reseeded = synthesize_digits(6, seed=4, progress=False, voices=VOICES, cache=False)
    assert not all(torch.equal(a, b) for a, b in zip(reseeded.waveforms[:1], ds.waveforms))


@needs_espeak
def test_added_noise_has_the_requested_snr():
    cfg = SynthesisConfig(snr_db=(20.0, 20.0), noise_colors=("white",), pad_s=(0.2, 0.2))
    ds = synthesize_digits(2, seed=0, progress=False, voices=VOICES, config=cfg, cache=False)
    for w in ds.waveforms:
        x = w.numpy().astype(np.float64)
        pad = int(0.2 * ESPEAK_SAMPLE_RATE)
        p_noise = np.mean(x[:pad] ** 2)
        p_speech = np.mean(x[pad:-pad] ** 2) - p_noise  # speech and noise are independent
        assert 10 * np.log10(p_speech / p_noise) == pytest.approx(20.0, abs=1.0)


@needs_espeak
def test_syllables():
    ds = synthesize_syllables(n_per=1, progress=False, voices=["en+m2"], cache=False)
    assert ds.words == ("ba", "da", "ga") and sorted(ds.labels.tolist()) == [0, 1, 2]
    assert [m["word"] for m in ds.meta] == [ds.words[int(i)] for i in ds.labels]
    assert all(0.1 < d < 0.8 for d in ds.durations())
    with pytest.raises(ValueError, match="n_per"):
        synthesize_syllables(n_per=0)


def test_voice_split_holds_out_the_documented_voices():
    val = [v for v in ESPEAK_VOICES if voice_split(v) == "val"]
    assert val and len(val) < len(ESPEAK_VOICES) / 3
    for v in ESPEAK_VOICES:
        lang, variant = v.split("+")
        assert (voice_split(v) == "val") == (variant in VAL_VARIANTS or lang in VAL_LANGUAGES)
    assert voice_split("en-us+m1") == "train" and voice_split("en+m3") == "val"


def test_missing_espeak_library_gives_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNESTHESIA_ESPEAK_LIBRARY", str(tmp_path / "libespeak-ng.so"))
    assert not espeak_available()
    with pytest.raises(EspeakNotFoundError) as e:
        synthesize_digits(2, progress=False, cache=False)
    msg = str(e.value)
    assert isinstance(e.value, FileNotFoundError) and "\n" not in msg
    assert "libespeak-ng.so" in msg and "pip install espeakng-loader" in msg
    monkeypatch.delenv("SYNESTHESIA_ESPEAK_LIBRARY")
    monkeypatch.setenv("SYNESTHESIA_ESPEAK_DATA", str(tmp_path))
    with pytest.raises(EspeakNotFoundError, match="voice data .* is missing"):
        speak("one")
    monkeypatch.delenv("SYNESTHESIA_ESPEAK_DATA")
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # the package is not installed
    with pytest.raises(EspeakNotFoundError, match="pip install espeakng-loader"):
        speak("one")


def _tiny_set() -> SpeechSet:
    g = torch.Generator().manual_seed(0)
    waves = [torch.randn(n, generator=g) * 0.1 for n in (800, 1600, 1200)]
    return SpeechSet(waves, 8000, torch.tensor([1, 2, 1]), ["a", "b", "a"], [], ("x",), "t")


def test_speech_set_save_load_subset_and_features(tmp_path):
    ds = _tiny_set()
    back = SpeechSet.load(ds.save(tmp_path / "s"))
    assert back.sample_rate == 8000 and back.speakers == ds.speakers and back.words == ("x",)
    assert all(torch.equal(a, b) for a, b in zip(back.waveforms, ds.waveforms))
    sub = ds.subset(np.array([True, False, True]))
    assert sub.labels.tolist() == [1, 1] and len(sub.waveforms[1]) == 1200
    feats = ds.log_mels(frames=15)
    assert feats.shape == (3, 40, 15)
    assert torch.allclose(feats[0], fix_length(log_mel(ds.waveforms[0], 8000), 15))
    (tmp_path / "s" / "speech.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="speech.safetensors"):
        SpeechSet.load(tmp_path / "s")
    with pytest.raises(FileNotFoundError, match="speech.json"):
        SpeechSet.load(tmp_path / "nothing")
    with pytest.raises(ValueError, match="speakers"):
        SpeechSet(ds.waveforms, 8000, ds.labels, ["a"])


def test_trim_silence_keeps_the_sound_and_little_else():
    sr = 22050
    tone = 0.5 * np.sin(2 * np.pi * 300 * np.arange(sr // 2) / sr)
    quiet = 1e-4 * np.random.default_rng(0).standard_normal(2000)  # -68 dB below the tone
    x = np.concatenate([np.zeros(3000), quiet, tone, np.zeros(4000)])
    y = trim_silence(x, top_db=40, frame_length=512, hop=128)
    start = 5000  # where the tone begins
    assert len(tone) <= len(y) <= len(tone) + 2 * 512
    offset = next(i for i in range(len(x)) if np.array_equal(x[i : i + len(y)], y))
    assert start - 512 <= offset <= start and offset + len(y) >= start + len(tone)
    assert trim_silence(np.zeros(1000)).size == 0


@needs_espeak
@pytest.mark.slow
def test_two_full_builds_are_identical():
    a = synthesize_digits(2000, seed=0, progress=False, cache=False)
    b = synthesize_digits(2000, seed=0, progress=False, cache=False)
    assert a.meta == b.meta and all(torch.equal(x, y) for x, y in zip(a.waveforms, b.waveforms))
    assert np.bincount(a.labels.numpy()).tolist() == [200] * 10
