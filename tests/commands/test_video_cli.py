"""The video commands end to end: train video -> generate (.gif, .png) -> eval; Ctrl-C.

One short real run (tiny U-Net, 32 x 32 canvas, 3 frames, 2 steps, the built-in digits) is
shared by the module; what the commands write is compared with the library's output.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from synesthesia.cli import main

TRAIN = ["train", "video", "--preset", "tiny", "--canvas", "32", "--frames", "3",
         "--batch-size", "2", "--precision", "fp32", "--no-progress"]  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread():
    threads, _ = torch.get_num_threads(), torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("video") / "run"
    assert main([*TRAIN, "--max-steps", "2", "--out", str(out)]) == 0
    return out


def _pipe(run_dir):
    from synesthesia.pipelines.text2video import TextToVideoPipeline

    return TextToVideoPipeline.from_pretrained(run_dir / "checkpoint", precision="fp32")


def test_train_writes_a_loadable_checkpoint(run_dir):
    config = json.loads((run_dir / "checkpoint" / "config.json").read_text())
    assert config["kind"] == "text2video" and config["data"] == "mnist5k"
    assert config["world"] == {"canvas": 32, "frames": 3, "speeds": [1, 2]}
    assert config["recipe"]["consistency_weight"] == 0.5
    assert _pipe(run_dir).sample_shape == (1, 3, 32, 32)


def test_generate_gif_and_strip_show_the_librarys_videos(run_dir, tmp_path):
    gif = tmp_path / "x.gif"
    argv = ["generate", str(run_dir / "checkpoint"), "a 3 moving left", "--steps", "2",
            "--precision", "fp32", "--no-progress"]  # fmt: skip
    assert main([*argv, "--out", str(gif)]) == 0
    want = _pipe(run_dir)("a 3 moving left", num_inference_steps=2, output_type="pt",
                          generator=torch.Generator().manual_seed(0))  # fmt: skip
    with Image.open(gif) as im:
        assert im.n_frames == 3
        im.seek(1)
        frame = np.asarray(im.convert("L"), dtype=np.float64)
    # one video on a 1 x 1 grid (2-pixel border), each pixel shown 2 x 2
    inner = frame[4:68, 4:68][::2, ::2]
    expected = np.rint((want[0, 1, 0].numpy() + 1) / 2 * 255)
    assert np.abs(inner - expected).max() <= 1
    strip = tmp_path / "x.png"
    assert main([*argv, "--n", "2", "--out", str(strip)]) == 0
    with Image.open(strip) as im:
        assert im.size == (2 * (3 * 34 + 2), 2 * (2 * 34 + 2))


def test_eval_writes_every_score(run_dir, tmp_path, monkeypatch):
    import synesthesia.metrics.evaluator as ev

    class Blind(torch.nn.Module):  # a stand-in evaluator: training the real one takes a minute
        def features(self, x):
            return x.flatten(1)[:, ::40]

        def decision(self, f):
            return f[:, :10]

    monkeypatch.setattr(ev, "get_evaluator", lambda *a, **k: (Blind(), {}))
    out = tmp_path / "scores.json"
    argv = ["eval", str(run_dir / "checkpoint"), "--steps", "1", "--json", str(out),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    scores = json.loads(out.read_text())
    for key in ("frame_accuracy", "identity_consistency", "motion_agreement", "smoothness",
                "frame_fd", "difference_fd", "frame_fd_floor", "difference_fd_floor"):  # fmt: skip
        assert key in scores
    assert scores["num_videos"] == scores["prompts"] == 80  # 10 digits x 4 directions x 2 speeds


def test_ctrl_c_saves_says_how_to_resume_and_exits_130(tmp_path, capsys, monkeypatch):
    import synesthesia.pipelines.text2video_train as train_module

    real = train_module.frame_difference_error
    calls = {"n": 0}

    def ctrl_c(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "frame_difference_error", ctrl_c)
    out = tmp_path / "run"
    assert main([*TRAIN, "--max-steps", "4", "--out", str(out)]) == 130
    assert f"synesthesia train video --out {out} --resume" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["train", "video", "--out", str(out), "--resume", "--no-progress"]) == 0
    state = json.loads((out / "checkpoint" / "train" / "trainer_state.json").read_text())
    assert state["step"] == 4


def test_train_init_from_starts_from_a_checkpoints_u_net_and_text_encoder(run_dir, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "from"
    argv = [
        "train",
        "video",
        "--init-from",
        str(run_dir / "checkpoint"),
        "--frames",
        "3",
        "--batch-size",
        "2",
        "--max-steps",
        "1",
        "--precision",
        "fp32",
        "--no-progress",
    ]
    assert main([*argv, "--out", str(out)]) == 0
    config = json.loads((out / "checkpoint" / "config.json").read_text())
    source = json.loads((run_dir / "checkpoint" / "config.json").read_text())
    assert config["init_from"] == str(run_dir / "checkpoint") and config["preset"] is None
    assert config["video_unet"]["spatial"] == source["video_unet"]["spatial"]
    assert config["vocabulary"] == source["vocabulary"]
    # one training step moved the loaded weights only a little from the source's
    a = load_file(str(out / "checkpoint" / "model.safetensors"))
    b = load_file(str(run_dir / "checkpoint" / "model.safetensors"))
    key = "unet.unet.conv_in.weight"
    assert (a[key] - b[key]).abs().max() < 0.1 * b[key].abs().max()


def test_loaded_lr_scale_slows_the_loaded_weights_only(run_dir, tmp_path):
    out = tmp_path / "slow"
    argv = ["train", "video", "--init-from", str(run_dir / "checkpoint"), "--frames", "3",
            "--batch-size", "2", "--max-steps", "2", "--loaded-lr-scale", "0.25",
            "--precision", "fp32", "--no-progress", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    train = out / "checkpoint" / "train"
    state = json.loads((train / "trainer_state.json").read_text())
    assert state["config"]["lr_scales"] == {"unet.unet.": 0.25, "text_encoder.": 0.25}
    groups = json.loads((train / "optimizer.json").read_text())["param_groups"]
    full = {g["lr"] for g in groups if g["lr_scale"] == 1.0}
    slow = {g["lr"] for g in groups if g["lr_scale"] == 0.25}
    assert len(full) == len(slow) == 1
    lr_full, lr_slow = full.pop(), slow.pop()
    assert lr_full > 0 and lr_slow == pytest.approx(0.25 * lr_full)
    # the new temporal layers are the full-rate groups' parameters
    from synesthesia.pipelines.text2video import TextToVideoPipeline

    model = TextToVideoPipeline.from_pretrained(out / "checkpoint").model
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    n_full = sum(len(g["params"]) for g in groups if g["lr_scale"] == 1.0)
    assert n_full == sum(n.startswith("unet.temporal.") for n in names) > 0


def test_loaded_text_lr_scale_sets_the_text_encoder_apart(run_dir, tmp_path):
    out = tmp_path / "text"
    argv = ["train", "video", "--init-from", str(run_dir / "checkpoint"), "--frames", "3",
            "--batch-size", "2", "--max-steps", "1", "--loaded-lr-scale", "0.25",
            "--loaded-text-lr-scale", "1", "--precision", "fp32", "--no-progress",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    train = out / "checkpoint" / "train"
    state = json.loads((train / "trainer_state.json").read_text())
    assert state["config"]["lr_scales"] == {"unet.unet.": 0.25}  # the text encoder at 1
    groups = json.loads((train / "optimizer.json").read_text())["param_groups"]
    from synesthesia.pipelines.text2video import TextToVideoPipeline

    model = TextToVideoPipeline.from_pretrained(out / "checkpoint").model
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    n_slow = sum(len(g["params"]) for g in groups if g["lr_scale"] == 0.25)
    assert n_slow == sum(n.startswith("unet.unet.") for n in names) > 0


@pytest.mark.parametrize("rho", [0.0, 0.7])
def test_the_network_samples_from_noise_with_the_trained_frame_correlation(run_dir, rho):
    """The sampler runs on y = M^-1 x with white noise; the network must see x_T = M y_T,
    whose frames have correlation rho (checked on 16 videos x 1,024 positions)."""
    pipe = _pipe(run_dir)
    pipe.extra["recipe"]["frame_noise_correlation"] = rho
    seen = []
    forward = pipe.model.forward
    pipe.model.forward = lambda x, t, **kw: seen.append(x.detach().clone()) or forward(x, t, **kw)
    pipe(["a 3 moving left"] * 8, num_inference_steps=1, method="ddim", output_type="pt",
         guidance_scale=1.0, generator=torch.Generator().manual_seed(0))  # fmt: skip
    x_t = seen[0]  # (8, 1, 3, 32, 32) at the first (pure-noise) step
    frames = x_t.transpose(1, 2).reshape(8, 3, -1).transpose(0, 1).reshape(3, -1).double()
    corr = torch.corrcoef(frames)
    off = corr[~torch.eye(3, dtype=torch.bool)]
    # 8,192 positions per frame: a correlation's standard error is about 0.01
    assert off.sub(rho).abs().max() < 0.05
    assert frames.std(dim=1).sub(1.0).abs().max() < 0.05  # each frame's noise standard
    assert pipe.sample_clip == (None if rho > 0 else 1.0)
