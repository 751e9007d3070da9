from pathlib import Path

import numpy as np
import pytest
import torch

from synesthesia.data.fsdd import FSDD_URL, load_fsdd

SHARED_FSDD = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "fsdd"


def _write(folder: Path, name: str, freq: float, sr: int = 8000, seconds: float = 0.25) -> None:
    import soundfile as sf

    t = np.arange(int(sr * seconds)) / sr
    sf.write(folder / name, 0.3 * np.sin(2 * np.pi * freq * t), sr, subtype="PCM_16")


@pytest.mark.skipif(not SHARED_FSDD.is_dir(), reason="the shared FSDD folder is not here")
def test_reads_the_shared_recordings():
    ds = load_fsdd(SHARED_FSDD)  # the dataset root: its recordings/ folder is found
    files = sorted((SHARED_FSDD / "recordings").glob("*.wav"))
    assert len(ds) == len(files) == 2000
    assert ds.sample_rate == 8000
    assert sorted(set(ds.speakers)) == ["george", "jackson", "nicolas", "yweweler"]
    assert np.bincount(ds.labels.numpy()).tolist() == [200] * 10
    for i in (0, 777, 1999):
        digit, speaker, _ = ds.meta[i]["file"][:-4].split("_")
        assert int(digit) == int(ds.labels[i]) and speaker == ds.speakers[i]
    d = ds.durations()
    assert 0.1 < d.min() and d.max() < 3.0 and 0.3 < np.median(d) < 0.8
    assert all(w.dtype == torch.float32 and w.abs().max() <= 1.0 for w in ds.waveforms[:50])


@pytest.mark.skipif(not SHARED_FSDD.is_dir(), reason="the shared FSDD folder is not here")
def test_speaker_filter_on_the_shared_recordings():
    ds = load_fsdd(SHARED_FSDD / "recordings", speakers=["jackson"])
    assert len(ds) == 500 and set(ds.speakers) == {"jackson"}
    with pytest.raises(ValueError, match="nobody"):
        load_fsdd(SHARED_FSDD, speakers=["nobody"])


def test_layout_labels_and_resampling(tmp_path):
    _write(tmp_path, "3_alice_0.wav", 500.0)
    _write(tmp_path, "3_alice_1.wav", 500.0)
    _write(tmp_path, "7_bob_0.wav", 900.0)
    (tmp_path / "README.md").write_text("not audio")
    ds = load_fsdd(tmp_path)
    assert ds.labels.tolist() == [3, 3, 7]
    assert ds.speakers == ["alice", "alice", "bob"]
    assert [m["index"] for m in ds.meta] == [0, 1, 0]
    assert ds.meta[2]["word"] == "seven"
    assert len(ds.waveforms[0]) == 2000
    up = load_fsdd(tmp_path, sample_rate=16000)
    assert up.sample_rate == 16000 and len(up.waveforms[0]) == 4000
    spec = np.abs(np.fft.rfft(up.waveforms[2].numpy()))
    assert np.fft.rfftfreq(4000, 1 / 16000)[spec.argmax()] == pytest.approx(900.0, abs=4)


def test_missing_folder_says_what_and_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="FSDD folder .*not found") as e:
        load_fsdd(tmp_path / "nope")
    assert FSDD_URL in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(FileNotFoundError, match="holds no"):
        load_fsdd(tmp_path)


def test_badly_named_wav_is_named(tmp_path):
    _write(tmp_path, "3_alice_0.wav", 500.0)
    _write(tmp_path, "hello.wav", 500.0)
    with pytest.raises(ValueError, match="hello.wav"):
        load_fsdd(tmp_path)
