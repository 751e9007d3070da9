"""The audio commands end to end: train audio (and resume), generate WAV files, eval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audio_fixtures import fake_fsdd

from synesthesia.cli import main

TRAIN = ["train", "audio", "--n-espeak", "0", "--preset", "tiny", "--batch-size", "8",
         "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("audio-cli")
    fsdd = fake_fsdd(tmp / "fsdd")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYNESTHESIA_CACHE", str(tmp / "cache"))
        assert (
            main([*TRAIN, "--fsdd", str(fsdd), "--max-steps", "2", "--out", str(tmp / "run")]) == 0
        )
    return tmp / "run", fsdd


def test_train_writes_a_checkpoint_that_records_its_data(run):
    out, fsdd = run
    config = json.loads((out / "checkpoint" / "config.json").read_text())
    assert config["kind"] == "text2audio" and config["fsdd_folder"] == str(fsdd)
    assert config["held_out"] == {"fsdd": ["nicolas"]}
    assert config["domain"]["kind"] == "mel" and config["domain"]["sample_rate"] == 8000


def test_generate_writes_one_wav_per_clip_named_by_digit(run, tmp_path, capsys):
    from synesthesia.pipelines.text2audio import read_wav

    out, _ = run
    argv = ["generate", str(out / "checkpoint"), "--audio", "the word seven", "--n", "2",
            "--steps", "2", "--out", str(tmp_path / "clips"), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    files = sorted(p.name for p in (tmp_path / "clips").iterdir())
    assert files == ["7_000.wav", "7_001.wav"]
    x, rate = read_wav(tmp_path / "clips" / "7_001.wav")
    assert rate == 8000 and x.shape == (8000,)
    assert "wrote 2 clips" in capsys.readouterr().out


def test_eval_scores_generated_and_real_clips(run, tmp_path, monkeypatch):
    from synesthesia.data.spoken_digits import fsdd_digits
    from synesthesia.metrics.audio import _fsdd_key, train_speech_classifier

    out, fsdd = run
    monkeypatch.setenv("SYNESTHESIA_CACHE", str(tmp_path / "cache"))
    splits = fsdd_digits(fsdd)  # a 3-step classifier in the cache: eval must not train one
    folder = tmp_path / "cache" / f"speech-classifier-{_fsdd_key(fsdd)}"
    train_speech_classifier(splits["train"], splits["val"], folder, steps=3, progress=False)
    argv = ["eval", str(out / "checkpoint"), "--n-per-digit", "2", "--steps", "1",
            "--json", str(tmp_path / "scores.json"), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    scores = json.loads((tmp_path / "scores.json").read_text())
    # as many real held-out clips per digit as generated ones; distances to the training clips
    assert scores["generated"]["num_clips"] == scores["real"]["num_clips"] == 20
    assert scores["reference_clips"] == len(splits["train"])
    assert scores["classifier"]["test_speakers"] == ["nicolas"]
    for side in ("generated", "real"):
        assert 1.0 <= scores[side]["inception_score"] <= 10.0


def test_resume_extends_the_run(run, tmp_path):
    import shutil

    out, _ = run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    assert main(["train", "audio", "--out", str(copy), "--resume", "--max-steps", "3",
                 "--no-progress"]) == 0  # fmt: skip
    state = json.loads((copy / "checkpoint" / "config.json").read_text())
    assert state["max_steps"] == 3


def test_ctrl_c_saves_prints_the_resume_command_and_exits_130(run, tmp_path, capsys, monkeypatch):
    import synesthesia.pipelines.text2image_train as recipe  # the loss the audio recipe reuses

    _, fsdd = run
    real, calls = recipe.diffusion_loss, []

    def interrupted_at_third_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(recipe, "diffusion_loss", interrupted_at_third_step)
    out = tmp_path / "run"
    argv = [*TRAIN, "--fsdd", str(fsdd), "--max-steps", "4", "--out", str(out)]
    assert main(argv) == 130
    assert f"synesthesia train audio --out {out} --resume" in capsys.readouterr().err
    state = json.loads((out / "checkpoint" / "train" / "trainer_state.json").read_text())
    assert state["step"] == 2
    monkeypatch.undo()
    assert main(["train", "audio", "--out", str(out), "--resume", "--no-progress"]) == 0
    state = json.loads((out / "checkpoint" / "train" / "trainer_state.json").read_text())
    assert state["step"] == 4
