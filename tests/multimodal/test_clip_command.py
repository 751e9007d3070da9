"""``synesthesia train clip`` writes a checkpoint that ``synesthesia eval`` loads."""

import json
from pathlib import Path

import pytest

from synesthesia.cli import main
from synesthesia.data.speech import espeak_available


def test_train_clip_errors_are_one_line(capsys):
    assert main(["train", "clip", "--fsdd-speakers", "george"]) == 2
    assert "--fsdd-speakers needs --fsdd" in capsys.readouterr().err
    assert main(["train", "clip", "--modalities", "text,speech"]) == 2  # images are the anchor
    assert "give image" in capsys.readouterr().err


@pytest.mark.skipif(not espeak_available(), reason="needs eSpeak NG (pip install espeakng-loader)")
def test_train_then_eval_through_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SYNESTHESIA_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["train", "clip", "--max-steps", "2", "--batch-size", "16", "--n-speech", "80"]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "trained 2 steps" in printed and "zero-shot images, text prompts" in printed
    ckpt = out / "checkpoint"
    config = json.loads((ckpt / "config.json").read_text())
    assert config["kind"] == "clip" and config["modalities"] == ["image", "text", "speech"]
    assert (ckpt / "model.safetensors").is_file()

    report = tmp_path / "scores.json"
    assert main(["eval", str(ckpt), "--no-baselines", "--json", str(report), "--no-progress"]) == 0
    assert "speech -> image R@1" in capsys.readouterr().out
    scores = json.loads(report.read_text())
    assert 0.0 <= scores["zero_shot"]["image_from_text_prompts"] <= 1.0
    assert set(scores["retrieval"]["speech_image"]) == {"speech_to_image", "image_to_speech"}
    assert scores["training_data"]["n_speech"] == 80

    assert main(["eval", "clip", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err


FAST = ["--modalities", "image,text", "--batch-size", "8", "--no-progress", "--no-eval"]


def test_ctrl_c_saves_prints_the_resume_command_and_exits_130(tmp_path, monkeypatch, capsys):
    """An interrupted run saves, says how to resume, exits 130; resumed, it ends where an
    uninterrupted run ends (identical weights)."""
    import os
    import shlex
    import signal

    from synesthesia.multimodal.train import ContrastiveObjective

    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(["train", "clip", *FAST, "--max-steps", "5", "--out", str(whole)]) == 0
    calls = {"n": 0}
    original = ContrastiveObjective.__call__

    def interrupting(self, model, batch, generator):
        calls["n"] += 1
        if calls["n"] == 2:  # Ctrl-C during the second step
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, model, batch, generator)

    monkeypatch.setattr(ContrastiveObjective, "__call__", interrupting)
    capsys.readouterr()
    assert main(["train", "clip", *FAST, "--max-steps", "5", "--out", str(cut)]) == 130
    printed = capsys.readouterr().out
    assert "interrupted at step 2" in printed
    command = printed.split("Resume with: ")[1].strip()
    assert shlex.split(command)[:4] == ["synesthesia", "train", "clip", "--resume"]
    monkeypatch.setattr(ContrastiveObjective, "__call__", original)
    assert main([*shlex.split(command)[1:], "--no-progress", "--no-eval"]) == 0
    assert "trained 5 steps" in capsys.readouterr().out
    for name in ("model.safetensors", "train/model.safetensors", "train/optimizer.safetensors"):
        a = (whole / "checkpoint" / name).read_bytes()
        assert a == (cut / "checkpoint" / name).read_bytes(), name

    # resume with options that differ from the saved run: refused, or a stated override
    assert main(["train", "clip", "--resume", "--out", str(cut), "--batch-size", "4"]) == 2
    err = capsys.readouterr().err
    assert "--batch-size" in err and "8" in err and "4" in err
    assert main(["train", "clip", "--resume", "--out", str(cut), "--max-steps", "3"]) == 2
    assert "already at step 5" in capsys.readouterr().err
    from synesthesia.training import read_run_state

    saved = read_run_state(cut)["config"]["mixed_precision"]
    other = "bf16" if saved == "no" else "fp32"
    resumed = ["train", "clip", "--resume", "--out", str(cut), "--no-progress", "--no-eval"]
    assert main([*resumed, "--max-steps", "6", "--precision", other]) == 0
    printed = capsys.readouterr().out
    assert "schedule now ends at 6 as asked" in printed
    assert f"goes on in {other} as asked" in printed and "trained 6 steps" in printed
    assert read_run_state(cut)["config"]["mixed_precision"] == ("no" if other == "fp32" else other)


SHARED_FSDD = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "fsdd"


@pytest.mark.skipif(not espeak_available(), reason="needs eSpeak NG (pip install espeakng-loader)")
@pytest.mark.skipif(not SHARED_FSDD.is_dir(), reason="the shared FSDD folder is not here")
def test_training_on_every_fsdd_speaker_is_allowed_and_says_none_is_scored(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("SYNESTHESIA_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    every = "george,jackson,nicolas,yweweler"
    args = ["train", "clip", "--modalities", "image,speech", "--max-steps", "2", "--n-speech", "40"]
    fsdd = ["--fsdd", str(SHARED_FSDD)]
    assert main([*args, *fsdd, "--fsdd-speakers", every, "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "no held-out FSDD speaker is scored" in printed
    report = tmp_path / "scores.json"
    ckpt = str(out / "checkpoint")
    quiet = ["--no-baselines", "--no-progress"]
    assert main(["eval", ckpt, *fsdd, *quiet, "--json", str(report)]) == 0
    assert "note: every FSDD speaker" in capsys.readouterr().out
    scores = json.loads(report.read_text())
    assert scores["fsdd_held_out_speakers"] == []
    assert any("no held-out FSDD speaker is scored" in n for n in scores["notes"])
    assert set(scores["zero_shot"]["fsdd"]) == {"train"}  # the trained speakers, and no "val"


@pytest.mark.skipif(not espeak_available(), reason="needs eSpeak NG (pip install espeakng-loader)")
def test_a_format1_checkpoint_is_evaluated_through_the_command(tmp_path, monkeypatch, capsys):
    """What worked stays working: a checkpoint written before the registry is scored."""
    import shutil

    monkeypatch.setenv("SYNESTHESIA_CACHE", str(tmp_path / "cache"))
    old = Path(__file__).parent / "data" / "clip_format1"
    assert "format" not in json.loads((old / "config.json").read_text())
    shutil.copytree(old, tmp_path / "ckpt")
    out = tmp_path / "s.json"
    argv = ["eval", str(tmp_path / "ckpt"), "--no-baselines", "--no-progress", "--json", str(out)]
    assert main(argv) == 0
    assert "speech -> image R@1" in capsys.readouterr().out
    scores = json.loads(out.read_text())
    assert scores["n_val_speech"] > 0 and 0.0 <= scores["zero_shot"]["image_from_text_prompts"] <= 1
