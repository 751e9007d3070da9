"""Bad input for ``train clip`` and ``eval`` of a clip checkpoint: one clear line, exit 2.

``{tmp}/run`` is a real short training run (images and captions, 2 steps of batch 8) copied
into the test's folder, so a row may corrupt it freely; ``{tmp}/ckpt`` (rows that prepare it)
is a tiny saved model. Every output path is checked before any work and named as given.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from catalogue import Case, make_file, make_folder, with_run
from synesthesia.cli import main

TRAIN = ["train", "clip", "--modalities", "image,text", "--batch-size", "8", "--no-progress"]
SPEECH = ["train", "clip", "--modalities", "image,speech", "--max-steps", "1", "--no-progress"]
RUN = "{tmp}/run"
CKPT = "{tmp}/ckpt"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clip-run") / "run"
    assert main([*TRAIN, "--max-steps", "2", "--out", str(out), "--no-eval"]) == 0
    return out


def _wav(name: str):
    """A short valid 8 kHz WAV named ``name`` (FSDD layout or not)."""

    def prepare(tmp: Path) -> None:
        import numpy as np
        import soundfile as sf

        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp / name, 0.1 * np.sin(np.arange(800) * 0.3), 8000, subtype="PCM_16")

    return prepare


def _tiny_checkpoint(tmp: Path) -> None:
    import torch

    from synesthesia.multimodal.model import JointEmbeddingConfig, JointEmbeddingModel

    torch.manual_seed(0)
    config = JointEmbeddingConfig(
        modalities=("image", "text"),
        embed_dim=8,
        towers={
            "image": {"encoder": {"channels": (4, 8)}},
            "text": {"encoder": {"dim": 16, "depth": 1, "heads": 2}},
        },
    )
    JointEmbeddingModel(config).save_pretrained(tmp / "ckpt")


def _then(first, second):
    def prepare(tmp: Path) -> None:
        first(tmp)
        second(tmp)

    return prepare


def _edit(rel: str, edit):
    def prepare(tmp: Path) -> None:
        path = tmp / rel
        path.write_bytes(edit(path.read_bytes()))

    return prepare


def _reshape_one_tensor(data: bytes) -> bytes:
    import torch
    from safetensors.torch import load, save

    state = load(data)
    state["heads.text.net.0.weight"] = torch.zeros(3, 3)
    return save(state)


def _image_config(data: bytes) -> bytes:
    """An image-diffusion checkpoint's config relabelled ``kind: clip``."""
    return json.dumps(
        {
            "kind": "clip",
            "schedule": {"kind": "cosine", "num_timesteps": 1000},
            "prediction": "v",
            "unet": {"in_channels": 1, "base_channels": 16},
            "recipe": {},
            "data": "mnist5k",
        }
    ).encode()


def _json_edit(fn):
    return lambda data: json.dumps(fn(json.loads(data))).encode()


def _fsdd_with(*names: str):
    def prepare(tmp: Path) -> None:
        for name in names:
            _wav(f"fsdd/{name}")(tmp)

    return prepare


CASES = [
    # output paths, checked before any work, named as given
    Case("train-out-is-file", [*TRAIN, "--out", "{tmp}/t.sh"], "is a file",
         prepare=make_file("t.sh")),
    Case("train-out-under-file", [*TRAIN, "--out", "{tmp}/t.sh/run"], "t.sh is a file",
         prepare=make_file("t.sh")),
    Case("train-out-read-only", [*TRAIN, "--out", "/proc/run"], "--out /proc/run: cannot write"),
    Case("train-cache-dir-is-file", [*SPEECH, "--out", "{tmp}/r", "--cache-dir", "{tmp}/t.sh"],
         "--cache-dir", prepare=make_file("t.sh")),
    Case("train-cache-dir-under-file", [*SPEECH, "--out", "{tmp}/r", "--cache-dir",
                                        "{tmp}/t.sh/c"], "t.sh is a file",
         prepare=make_file("t.sh")),
    Case("train-cache-dir-read-only", [*SPEECH, "--out", "{tmp}/r", "--cache-dir", "/proc/c"],
         "cannot write in /proc"),
    Case("train-cache-env-is-file", [*SPEECH, "--out", "{tmp}/r"], "$SYNESTHESIA_CACHE",
         prepare=make_file("t.sh"), env={"SYNESTHESIA_CACHE": "{tmp}/t.sh"}),
    # the FSDD folder
    Case("train-fsdd-missing", [*SPEECH, "--out", "{tmp}/r", "--fsdd", "{tmp}/nowhere"],
         "nowhere not found"),
    Case("train-fsdd-is-file", [*SPEECH, "--out", "{tmp}/r", "--fsdd", "{tmp}/t.sh"],
         "is a file", prepare=make_file("t.sh")),
    Case("train-fsdd-empty", [*SPEECH, "--out", "{tmp}/r", "--fsdd", "{tmp}/fsdd"],
         "holds no", prepare=make_folder("fsdd")),
    Case("train-fsdd-bad-name", [*SPEECH, "--out", "{tmp}/r", "--fsdd", "{tmp}/fsdd"],
         "x.wav: fsdd file names", prepare=_fsdd_with("x.wav")),
    Case("train-fsdd-unknown-speaker", [*SPEECH, "--out", "{tmp}/r", "--fsdd", "{tmp}/fsdd",
                                        "--fsdd-speakers", "bob"], "['bob'] are not in",
         prepare=_fsdd_with("0_alice_0.wav")),
    Case("train-fsdd-speakers-without-fsdd", [*TRAIN, "--fsdd-speakers", "george"],
         "needs --fsdd"),
    Case("train-fsdd-corrupt-wav", [*SPEECH, "--out", "{tmp}/r", "--fsdd", "{tmp}/fsdd",
                                    "--n-speech", "10"], "0_alice_1.wav: cannot read wav",
         prepare=_then(_fsdd_with("0_alice_0.wav"), make_file("fsdd/0_alice_1.wav", b"RIFF..."))),
    # values
    Case("train-seed-negative", [*TRAIN, "--seed", "-5", "--out", "{tmp}/r"], "--seed"),
    Case("train-seed-overflow", [*TRAIN, "--seed", "99999999999999999999", "--out", "{tmp}/r"],
         "--seed"),
    Case("train-n-speech-huge", [*SPEECH, "--n-speech", "1000000000000", "--out", "{tmp}/r"],
         "--n-speech"),
    Case("train-n-speech-zero", [*SPEECH, "--n-speech", "0", "--out", "{tmp}/r"], "--n-speech"),
    Case("train-minutes-nan", [*TRAIN, "--minutes", "nan", "--out", "{tmp}/r"], "--minutes"),
    Case("train-minutes-zero", [*TRAIN, "--minutes", "0", "--out", "{tmp}/r"], "--minutes"),
    Case("train-lr-negative", [*TRAIN, "--lr", "-1", "--out", "{tmp}/r"], "--lr"),
    Case("train-batch-zero", [*TRAIN, "--batch-size", "0", "--out", "{tmp}/r"], "--batch-size"),
    Case("train-modalities-no-image", ["train", "clip", "--modalities", "text,speech"],
         "give image"),
    Case("train-modalities-unknown", ["train", "clip", "--modalities", "image,smell"],
         "unknown modality 'smell'"),
    Case("train-precision", [*TRAIN, "--precision", "fp8", "--out", "{tmp}/r"], "--precision"),
    Case("train-loss", [*TRAIN, "--loss", "triplet", "--out", "{tmp}/r"], "--loss"),
    # resuming
    Case("resume-nothing", [*TRAIN, "--resume", "--out", "{tmp}/empty"], "no checkpoint"),
    Case("resume-corrupted-state", ["train", "clip", "--resume", "--out", RUN],
         "trainer_state.json", prepare=_edit("run/checkpoint/train/trainer_state.json",
                                             lambda d: d[:10])),
    Case("resume-corrupted-config", ["train", "clip", "--resume", "--out", RUN],
         "config.json: corrupted", prepare=_edit("run/checkpoint/config.json", lambda d: d[:20])),
    Case("resume-other-batch", ["train", "clip", "--resume", "--batch-size", "4", "--out", RUN],
         "--batch-size: the run"),
    Case("resume-other-modalities", ["train", "clip", "--resume", "--modalities", "image,speech",
                                     "--out", RUN], "--modalities: the run"),
    Case("resume-other-seed", ["train", "clip", "--resume", "--seed", "3", "--out", RUN],
         "--seed: the run"),
    Case("resume-other-lr", ["train", "clip", "--resume", "--lr", "0.1", "--out", RUN],
         "--lr: the run"),
    Case("resume-other-loss", ["train", "clip", "--resume", "--loss", "siglip", "--out", RUN],
         "--loss: the run"),
    Case("resume-fewer-steps", ["train", "clip", "--resume", "--max-steps", "1", "--out", RUN],
         "already at step 2"),
    Case("resume-other-fsdd-speakers", ["train", "clip", "--resume", "--fsdd", "{tmp}/fsdd",
                                        "--fsdd-speakers", "alice", "--out", RUN],
         "--fsdd-speakers: the run", prepare=_fsdd_with("0_alice_0.wav")),
    Case("resume-image-run", ["train", "clip", "--resume", "--out", RUN], "not a clip config",
         prepare=_edit("run/checkpoint/config.json", _image_config)),
    # the checkpoint given to eval
    Case("eval-missing", ["eval", "clip", "{tmp}/nothing"], "no such checkpoint"),
    Case("eval-missing-no-kind", ["eval", "{tmp}/nothing"], "no such checkpoint"),
    Case("eval-is-file", ["eval", "clip", "{tmp}/t.sh"], "is a file", prepare=make_file("t.sh")),
    Case("eval-no-config", ["eval", "clip", "{tmp}/d"], "config.json", prepare=make_folder("d")),
    Case("eval-corrupted-config", ["eval", CKPT], "corrupted or truncated json",
         prepare=_then(_tiny_checkpoint, _edit("ckpt/config.json", lambda d: d[:40]))),
    Case("eval-truncated-weights", ["eval", CKPT], "corrupted or truncated safetensors",
         prepare=_then(_tiny_checkpoint, _edit("ckpt/model.safetensors", lambda d: d[:100]))),
    Case("eval-wrong-shape", ["eval", CKPT], "tensor 'heads.text.net.0.weight' has shape (3, 3)",
         prepare=_then(_tiny_checkpoint, _edit("ckpt/model.safetensors", _reshape_one_tensor))),
    Case("eval-image-relabelled-clip", ["eval", CKPT],
         "ckpt/config.json: not a clip config: unknown JointEmbeddingConfig fields",
         prepare=_then(_tiny_checkpoint, _edit("ckpt/config.json", _image_config))),
    Case("eval-unknown-modality", ["eval", CKPT], "unknown modality 'smell'",
         prepare=_then(_tiny_checkpoint, _edit("ckpt/config.json", _json_edit(
             lambda c: {**c, "modalities": ["image", "smell"]})))),
    Case("eval-bad-tower-field", ["eval", CKPT], "towers.text.encoder: unknown",
         prepare=_then(_tiny_checkpoint, _edit("ckpt/config.json", _json_edit(
             lambda c: {**c, "towers": {**c["towers"], "text": {"encoder": {"size": 3}}}})))),
    Case("eval-future-format", ["eval", CKPT], "format 9",
         prepare=_then(_tiny_checkpoint, _edit("ckpt/config.json", _json_edit(
             lambda c: {**c, "format": 9})))),
    # eval's outputs, checked before loading anything
    Case("eval-json-is-folder", ["eval", CKPT, "--json", "{tmp}/d.json"], "is a folder",
         prepare=_then(_tiny_checkpoint, make_folder("d.json"))),
    Case("eval-json-under-file", ["eval", CKPT, "--json", "{tmp}/t.sh/s.json"], "t.sh is a file",
         prepare=_then(_tiny_checkpoint, make_file("t.sh"))),
    Case("eval-json-read-only", ["eval", CKPT, "--json", "/proc/x.json"],
         "--json /proc/x.json: cannot write", prepare=_tiny_checkpoint),
    Case("eval-json-extension", ["eval", CKPT, "--json", "{tmp}/s.txt"], ".json",
         prepare=_tiny_checkpoint),
    Case("eval-plot-extension", ["eval", CKPT, "--plot", "{tmp}/x.xyz"], "must end in .png",
         prepare=_tiny_checkpoint),
    Case("eval-plot-is-folder", ["eval", CKPT, "--plot", "{tmp}/p.png"], "is a folder",
         prepare=_then(_tiny_checkpoint, make_folder("p.png"))),
    Case("eval-plot-read-only", ["eval", CKPT, "--plot", "/proc/x.png"], "cannot write",
         prepare=_tiny_checkpoint),
    Case("eval-fsdd-missing", ["eval", CKPT, "--fsdd", "{tmp}/nowhere"], "nowhere not found",
         prepare=_tiny_checkpoint),
    Case("eval-unknown-option", ["eval", CKPT, "--guidance", "2"], "unrecognized arguments",
         prepare=_tiny_checkpoint),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_one_clear_line(case, trained, check_case):
    check_case(with_run(case, trained))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_checkpoint(tmp_path, capsys):
    _tiny_checkpoint(tmp_path)
    weights = tmp_path / "ckpt" / "model.safetensors"
    weights.chmod(0)
    try:
        assert main(["eval", str(tmp_path / "ckpt")]) == 2
        assert "permission denied" in capsys.readouterr().err
    finally:
        weights.chmod(0o644)
