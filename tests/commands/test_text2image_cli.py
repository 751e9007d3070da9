"""The text-to-image commands end to end: train text2image -> generate -> eval; Ctrl-C; warnings.

One short real training run (tiny U-Net, sklearn's 8 x 8 digits, 3 steps) is shared by the
module. What the commands write is compared with the library called on the same checkpoint.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from synesthesia.cli import main

TRAIN = ["train", "text2image", "--data", "digits8x8", "--preset", "tiny", "--batch-size", "16"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("text2image") / "run"
    argv = [*TRAIN, "--max-steps", "3", "--precision", "fp32", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    return out


def _pipe(run_dir):
    from synesthesia.pipelines.text2image import TextToImagePipeline

    return TextToImagePipeline.from_pretrained(run_dir / "checkpoint", precision="fp32")


def test_train_writes_a_loadable_checkpoint(run_dir):
    ckpt = run_dir / "checkpoint"
    config = json.loads((ckpt / "config.json").read_text())
    assert config["kind"] == "text2image" and config["data"] == "digits8x8"
    assert config["preset"] == "tiny" and config["guidance_scale"] == 3.0
    assert config["autoencoder"] is None and config["text_source"] == "joint"
    assert [list(c) for c in config["held_out"]] == [
        [7, "thickness_word", "thick"],
        [2, "slant_word", "left-slanted"],
        [4, "size_word", "small"],
    ]
    state = json.loads((ckpt / "train" / "trainer_state.json").read_text())
    assert state["step"] == 3
    pipe = _pipe(run_dir)
    assert not pipe.latent and pipe.sample_shape == (1, 8, 8)


def _images(run_dir, prompt: str, n: int, **kw) -> torch.Tensor:
    """What the library gives for what ``generate --n n --steps 2 --seed 0`` asks."""
    return _pipe(run_dir)(
        prompt,
        num_inference_steps=2,
        num_images_per_prompt=n,
        generator=torch.Generator().manual_seed(0),
        output_type="pt",
        **kw,
    )


def test_generate_writes_the_pipelines_images(run_dir, tmp_path, capsys):
    from synesthesia.pipelines import image_grid

    ckpt = str(run_dir / "checkpoint")
    png, npz = tmp_path / "x.png", tmp_path / "x.npz"
    common = ["a thick seven", "--n", "4", "--steps", "2", "--precision", "fp32", "--no-progress"]
    assert main(["generate", ckpt, *common, "--out", str(png)]) == 0
    assert "wrote 4 images of 'a thick seven'" in capsys.readouterr().out
    grid = np.asarray(Image.open(png))
    want = image_grid(_images(run_dir, "a thick seven", 4), nrow=2, scale=2)
    np.testing.assert_array_equal(grid, np.asarray(want))
    assert grid.std() > 0
    negative = [*common, "--out", str(npz), "--negative", "thin", "--guidance", "2"]
    want = _images(run_dir, "a thick seven", 4, negative_prompt="thin", guidance_scale=2.0)
    for kind in ([], ["text2image"]):  # the kind read from config.json, or given first
        assert main(["generate", *kind, ckpt, *negative]) == 0
        saved = np.load(npz)
        assert str(saved["prompt"]) == "a thick seven"
        np.testing.assert_array_equal(saved["images"], want.numpy())


def test_generate_unknown_word_warns_and_still_writes(run_dir, tmp_path, capsys):
    out = tmp_path / "x.npz"
    argv = ["generate", str(run_dir / "checkpoint"), "a purple seven", "--n", "1"]
    assert main([*argv, "--steps", "1", "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "synesthesia: warning:" in err and "'purple'" in err and "[UNK]" in err
    assert "error" not in err and out.is_file()


def test_generate_help_lists_this_kinds_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "text2image", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--negative" in out and "[UNK]" in out


def test_eval_scores_the_pipelines_prompted_samples(run_dir, tmp_path, monkeypatch, capsys):
    """eval wires the checkpoint's pipeline, the cached evaluator and the prompt sets into
    score_prompts (its scores are tested in tests/metrics); here: what it is given, and the
    JSON it writes."""
    import synesthesia.metrics as metrics
    from synesthesia.data.prompts import all_prompts

    seen = {}

    def fake_evaluator(train, val, progress=True):
        seen["data"] = (len(train), len(val))
        return "EVALUATOR", {}

    def fake_score(generate, specs, evaluator, val, n_per_prompt, seed, clip_model, progress):
        seen.update(specs=specs, evaluator=evaluator, n=n_per_prompt, seed=seed)
        seen["images"] = generate(["a seven", "a two"], torch.Generator().manual_seed(5))
        return {"groups": {"plain": {"class_accuracy": 0.25, "classifier_fid": 12.0}}}

    monkeypatch.setattr(metrics, "get_evaluator", fake_evaluator)
    monkeypatch.setattr(metrics, "score_prompts", fake_score)
    scores = tmp_path / "s.json"
    argv = ["eval", str(run_dir / "checkpoint"), "--n-per-prompt", "2", "--steps", "2"]
    assert (
        main([*argv, "--seed", "9", "--json", str(scores), "--precision", "fp32", "--no-progress"])
        == 0
    )
    assert seen["evaluator"] == "EVALUATOR" and seen["n"] == 2 and seen["seed"] == 9
    from synesthesia.data.images import load_image_splits

    train, val = load_image_splits("digits8x8")  # the checkpoint's own data
    assert seen["data"] == (len(train), len(val))
    assert [s.text for s in seen["specs"]] == [s.text for s in all_prompts()]
    want = _pipe(run_dir)(
        ["a seven", "a two"],
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(5),
        output_type="pt",
    )
    torch.testing.assert_close(seen["images"], want, rtol=0, atol=0)
    written = json.loads(scores.read_text())
    assert written["guidance"] == 3.0 and written["steps"] == 2 and written["latent"] is False
    assert written["groups"]["plain"]["class_accuracy"] == 0.25
    out = capsys.readouterr().out
    assert "pixel, guidance 3" in out and "accuracy 0.250" in out


class _CtrlC:
    """``real`` that raises KeyboardInterrupt (what Ctrl-C makes the trainer raise) at call n."""

    def __init__(self, real, n: int) -> None:
        self.real, self.left = real, n

    def __call__(self, *args, **kwargs):
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt
        return self.real(*args, **kwargs)


def test_ctrl_c_saves_says_how_to_resume_and_exits_130(tmp_path, capsys, monkeypatch):
    import synesthesia.pipelines.text2image_train as t2i_train

    monkeypatch.setattr(t2i_train, "diffusion_loss", _CtrlC(t2i_train.diffusion_loss, 3))
    out = tmp_path / "run"
    assert main([*TRAIN, "--max-steps", "4", "--out", str(out), "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert f"synesthesia train text2image --out {out} --resume" in err
    state = json.loads((out / "checkpoint" / "train" / "trainer_state.json").read_text())
    assert state["step"] == 2
    monkeypatch.undo()
    resume = ["train", "text2image", "--data", "digits8x8", "--batch-size", "16"]
    assert main([*resume, "--out", str(out), "--resume", "--no-progress"]) == 0
    state = json.loads((out / "checkpoint" / "train" / "trainer_state.json").read_text())
    assert state["step"] == 4


def test_resume_takes_the_runs_own_data_and_batch_size(run_dir, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    argv = ["train", "text2image", "--out", str(out), "--resume", "--max-steps", "4"]
    assert main([*argv, "--no-progress"]) == 0
    state = json.loads((out / "checkpoint" / "train" / "trainer_state.json").read_text())
    assert state["step"] == 4
