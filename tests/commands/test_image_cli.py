"""The image commands end to end: train -> sample -> eval, clear one-line errors, no overwrites."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from synesthesia.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A short real training run (tiny U-Net, sklearn's 8x8 digits, 40 steps)."""
    out = tmp_path_factory.mktemp("image") / "run"
    rc = main(
        [
            "train",
            "image",
            "--data",
            "digits8x8",
            "--preset",
            "tiny",
            "--max-steps",
            "40",
            "--batch-size",
            "32",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    return out


def _one_line_error(capsys, text: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.startswith("synesthesia: error:") and "\n" not in err and "Traceback" not in err
    assert text in err, err


def test_train_writes_a_checkpoint(run_dir):
    ckpt = run_dir / "checkpoint"
    config = json.loads((ckpt / "config.json").read_text())
    assert config["kind"] == "image" and config["data"] == "digits8x8"
    assert (ckpt / "model.safetensors").is_file()
    state = json.loads((ckpt / "train" / "trainer_state.json").read_text())
    assert state["step"] == 40
    assert (run_dir / "metrics.csv").read_text().count("\n") >= 2


def test_sample_npz_and_png(run_dir, tmp_path, capsys):
    ckpt = str(run_dir / "checkpoint")
    npz = tmp_path / "s.npz"
    assert (
        main(
            [
                "sample",
                ckpt,
                "--class",
                "7",
                "--n",
                "5",
                "--steps",
                "4",
                "--seed",
                "1",
                "--out",
                str(npz),
                "--no-progress",
            ]
        )
        == 0
    )
    with np.load(npz) as f:
        images, labels = f["images"], f["labels"]
    assert images.dtype == np.float32 and images.shape == (5, 1, 8, 8)
    assert labels.dtype == np.int64 and (labels == 7).all()
    assert images.min() >= -1 and images.max() <= 1
    png = tmp_path / "g.png"
    assert (
        main(
            [
                "sample",
                ckpt,
                "--n",
                "20",
                "--steps",
                "3",
                "--method",
                "heun",
                "--guidance",
                "3",
                "--out",
                str(png),
                "--no-progress",
            ]
        )
        == 0
    )
    assert Image.open(png).size == (2 * (10 * 10 + 2), 2 * (2 * 10 + 2))  # 2 rows of 10, x2
    # Same seed, same samples.
    again = tmp_path / "t.npz"
    main(
        [
            "sample",
            ckpt,
            "--class",
            "7",
            "--n",
            "5",
            "--steps",
            "4",
            "--seed",
            "1",
            "--out",
            str(again),
            "--no-progress",
        ]
    )
    with np.load(again) as f:
        np.testing.assert_array_equal(f["images"], images)


def test_eval_prints_a_table_and_writes_json(run_dir, tmp_path, monkeypatch, capsys):
    from synesthesia.data.images import load_image_splits
    from synesthesia.metrics.evaluator import cache_dir, data_key, train_evaluator

    monkeypatch.setenv("SYNESTHESIA_CACHE", str(tmp_path / "cache"))
    # A short evaluator run placed in the cache, where eval must find (not retrain) it.
    train, val = load_image_splits("digits8x8")
    folder = cache_dir() / f"evaluator-{data_key(train)}"
    train_evaluator(train, val, folder, steps=120, progress=False)
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    out = tmp_path / "scores.json"
    rc = main(
        [
            "eval",
            str(run_dir / "checkpoint"),
            "--n-per-class",
            "3",
            "--steps",
            "3",
            "--json",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    scores = json.loads(out.read_text())
    assert scores["num_samples"] == 30 and 0 <= scores["sample_accuracy"] <= 1
    assert scores["classifier_fid"] > 0 and scores["evaluator_accuracy"] > 0.8
    assert "classifier-FID" in capsys.readouterr().out
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_corrupted_checkpoint_is_one_line_and_overwrites_nothing(run_dir, tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(run_dir / "checkpoint", ckpt)
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    out = tmp_path / "old.npz"
    out.write_bytes(b"previous result")
    assert main(["sample", str(ckpt), "--n", "2", "--out", str(out), "--no-progress"]) == 2
    _one_line_error(capsys, "model.safetensors")
    assert out.read_bytes() == b"previous result"


def test_resume_from_a_corrupted_run_fails_cleanly(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    opt = run / "checkpoint" / "train" / "optimizer.safetensors"
    opt.write_bytes(opt.read_bytes()[:50])
    before = {p: p.read_bytes() for p in (run / "checkpoint").rglob("*") if p.is_file()}
    rc = main(
        ["train", "image", "--data", "digits8x8", "--resume", "--out", str(run), "--no-progress"]
    )
    assert rc == 2
    _one_line_error(capsys, "optimizer.safetensors")
    after = {p: p.read_bytes() for p in (run / "checkpoint").rglob("*") if p.is_file()}
    assert after == before


@pytest.mark.parametrize(
    "argv, text",
    [
        (["sample", "no/such/ckpt", "--out", "x.png"], "no/such/ckpt"),
        (["sample", "{ckpt}", "--out", "x.jpg"], ".png or .npz"),
        (["sample", "{ckpt}", "--class", "12", "--out", "x.png"], "--class 12"),
        (["train", "image", "--data", "no/such/folder", "--out", "{tmp}"], "no/such/folder"),
        (["eval", "image", "no/such/ckpt"], "no/such/ckpt"),
    ],
)
def test_user_errors_are_one_line_with_exit_2(run_dir, tmp_path, capsys, argv, text):
    argv = [a.format(ckpt=run_dir / "checkpoint", tmp=tmp_path / "r") for a in argv]
    assert main(argv) == 2
    _one_line_error(capsys, text)


def test_help_is_available(capsys):
    for argv in (["demo", "--help"], ["sample", "--help"], ["train", "image", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    assert "--minutes" in capsys.readouterr().out


def test_ctrl_c_saves_says_how_to_resume_and_exits_130(tmp_path, capsys, monkeypatch):
    import synesthesia.pipelines.image_train as image_train

    real = image_train.image_loss_fn

    def interrupting(*args, **kwargs):
        loss_fn = real(*args, **kwargs)
        calls = {"n": 0}

        def wrapped(model, batch, generator):
            calls["n"] += 1
            if calls["n"] == 3:  # what the trainer's handler raises on a second Ctrl-C
                raise KeyboardInterrupt
            return loss_fn(model, batch, generator)

        return wrapped

    monkeypatch.setattr(image_train, "image_loss_fn", interrupting)
    out = tmp_path / "run"
    argv = ["train", "image", "--data", "digits8x8", "--preset", "tiny", "--batch-size", "32"]
    assert main([*argv, "--max-steps", "8", "--out", str(out), "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert f"synesthesia train image --out {out} --resume" in err and "step 2 of 8" in err
    state = json.loads((out / "checkpoint" / "train" / "trainer_state.json").read_text())
    assert state["step"] == 2
    monkeypatch.setattr(image_train, "image_loss_fn", real)
    assert main(["train", "image", "--out", str(out), "--resume", "--no-progress"]) == 0
    state = json.loads((out / "checkpoint" / "train" / "trainer_state.json").read_text())
    assert state["step"] == 8
