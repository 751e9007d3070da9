"""``synesthesia train clip`` writes a checkpoint that ``synesthesia eval`` loads."""

import json

import pytest

from synesthesia.cli import main
from synesthesia.data.speech import espeak_available


def test_train_clip_errors_are_one_line(capsys):
    assert main(["train", "clip", "--fsdd-speakers", "george"]) == 2
    assert "--fsdd-speakers needs --fsdd" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "clip", "--modalities", "text,speech"])  # images are the anchor
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
