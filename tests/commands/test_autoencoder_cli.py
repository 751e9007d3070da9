"""``synesthesia train autoencoder`` and ``synesthesia eval`` of an autoencoder checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from synesthesia.cli import main

TRAIN = ["train", "autoencoder", "--data", "digits8x8", "--batch-size", "32", "--no-progress"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A cache holding a quickly trained evaluator for digits8x8 (eval needs one)."""
    from synesthesia.data.images import load_image_splits
    from synesthesia.metrics.evaluator import data_key, train_evaluator

    folder = tmp_path / "cache"
    monkeypatch.setenv("SYNESTHESIA_CACHE", str(folder))
    train, val = load_image_splits("digits8x8")
    train_evaluator(train, val, folder / f"evaluator-{data_key(train)}", steps=3, progress=False)
    return folder


def test_train_then_eval_prints_and_writes_the_scores(tmp_path, cache, capsys):
    from synesthesia.data.images import load_image_splits
    from synesthesia.metrics.evaluator import get_evaluator
    from synesthesia.pipelines.autoencoder import load_autoencoder, reconstruction_scores

    run = tmp_path / "run"
    assert main([*TRAIN, "--max-steps", "6", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "trained 6 steps" in out and "latent 4x2x2" in out and "scaling factor" in out
    scores_path, grid = tmp_path / "s.json", tmp_path / "g.png"
    argv = ["eval", str(run / "checkpoint"), "--json", str(scores_path), "--grid", str(grid)]
    assert main([*argv, "--grid-n", "5", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "PSNR (mean per image)" in out and "latent std after scaling" in out
    scores = json.loads(scores_path.read_text())
    # the same numbers as the library call on the checkpoint's own data
    train, val = load_image_splits("digits8x8")
    evaluator, _ = get_evaluator(train, val, progress=False)
    direct = reconstruction_scores(load_autoencoder(run / "checkpoint"), val, evaluator)
    for key in ("psnr_db", "evaluator_accuracy_reconstruction", "latent_std_scaled"):
        assert scores[key] == pytest.approx(direct[key], rel=1e-6)
    assert scores["scaling"]["step"] == 6
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ctrl_c_saves_says_how_to_resume_and_exits_130(tmp_path, capsys, monkeypatch):
    import synesthesia.pipelines.autoencoder as pipeline

    real = pipeline.autoencoder_loss_fn

    def interrupting(*args, **kwargs):
        loss_fn, calls = real(*args, **kwargs), {"n": 0}

        def wrapped(model, batch, generator):
            calls["n"] += 1
            if calls["n"] == 3:  # what the trainer's handler raises on a second Ctrl-C
                raise KeyboardInterrupt
            return loss_fn(model, batch, generator)

        return wrapped

    monkeypatch.setattr(pipeline, "autoencoder_loss_fn", interrupting)
    out = tmp_path / "run"
    assert main([*TRAIN, "--max-steps", "8", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert f"synesthesia train autoencoder --out {out} --resume" in err and "step 2 of 8" in err
    state = json.loads((out / "checkpoint" / "train" / "trainer_state.json").read_text())
    assert state["step"] == 2
    monkeypatch.setattr(pipeline, "autoencoder_loss_fn", real)
    assert main(["train", "autoencoder", "--out", str(out), "--resume", "--no-progress"]) == 0
    state = json.loads((out / "checkpoint" / "train" / "trainer_state.json").read_text())
    assert state["step"] == 8
    config = json.loads((out / "checkpoint" / "config.json").read_text())
    assert config["data"] == "digits8x8" and config["scaling"]["step"] == 8


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "autoencoder", "--help"])
    text = capsys.readouterr().out
    for option in ("--minutes", "--out", "--resume", "--seed", "--max-steps", "--precision"):
        assert option in text
