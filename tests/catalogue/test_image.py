"""Bad input for the image commands (train image, sample, eval image, demo): one clear line.

``{run}`` is a real short training run (tiny U-Net, 8 x 8 digits) copied into the test's
folder, so a row may corrupt it freely; ``{tmp}`` is the test's temporary folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from catalogue import ROOT, Case, make_file, make_folder, with_run
from synesthesia.cli import main

TRAIN = ["train", "image", "--data", "digits8x8", "--preset", "tiny", "--batch-size", "32"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("image-run") / "run"
    assert main([*TRAIN, "--max-steps", "6", "--out", str(out), "--no-progress"]) == 0
    return out


def _edit_json(rel: str, edit):
    def prepare(tmp: Path) -> None:
        path = tmp / "run" / rel
        path.write_text(edit(path.read_text()))

    return prepare


def _relabel(kind: str):
    def edit(text: str) -> str:
        return json.dumps({**json.loads(text), "kind": kind})

    return _edit_json("checkpoint/config.json", edit)


def _truncate(rel: str, keep: int):
    def prepare(tmp: Path) -> None:
        path = tmp / "run" / rel
        path.write_bytes(path.read_bytes()[:keep])

    return prepare


CKPT = "{tmp}/run/checkpoint"
SAMPLE = ["sample", CKPT, "--n", "2", "--steps", "2", "--no-progress"]
CASES = [
    # output paths, checked before any work, named as given
    Case("sample-out-is-folder", [*SAMPLE, "--out", "{tmp}/adir.png"], "is a folder",
         prepare=make_folder("adir.png")),
    Case("sample-out-under-file", [*SAMPLE, "--out", "{tmp}/t.sh/s.png"], "is a file",
         prepare=make_file("t.sh")),
    Case("sample-out-proc", [*SAMPLE, "--out", "/proc/x.png"], "cannot write in /proc"),
    Case("sample-out-extension", [*SAMPLE, "--out", "{tmp}/x.jpg"], ".png or .npz"),
    Case("sample-out-trailing-slash", [*SAMPLE, "--out", "{tmp}/x/"], "expected a file name"),
    Case("eval-json-is-folder", ["eval", CKPT, "--n-per-class", "1", "--json", "{tmp}/d.json"],
         "is a folder", prepare=make_folder("d.json")),
    Case("eval-json-extension", ["eval", CKPT, "--json", "{tmp}/d.txt"], ".json"),
    Case("train-out-is-file", [*TRAIN, "--max-steps", "1", "--out", "{tmp}/t.sh"], "is a file",
         prepare=make_file("t.sh")),
    Case("train-out-under-file", [*TRAIN, "--max-steps", "1", "--out", "{tmp}/t.sh/run"],
         "is a file", prepare=make_file("t.sh")),
    Case("train-out-proc", [*TRAIN, "--max-steps", "1", "--out", "/proc/run"], "/proc"),
    Case("demo-out-is-file", ["demo", "--out", "{tmp}/t.sh"], "is a file",
         prepare=make_file("t.sh")),
    Case("cache-is-file", ["eval", CKPT, "--n-per-class", "1", "--no-progress"],
         "$SYNESTHESIA_CACHE", prepare=make_file("c.sh"),
         env={"SYNESTHESIA_CACHE": "{tmp}/c.sh"}),
    # sizes and values
    Case("sample-n-huge", [*SAMPLE[:-5], "--n", "99999999999999999999", "--out", "{tmp}/x.png"],
         "--n"),
    Case("sample-n-too-many", [*SAMPLE[:-5], "--n", "2000000", "--out", "{tmp}/x.png"],
         "at most 1,000,000"),
    Case("sample-steps-zero", [*SAMPLE, "--steps", "0", "--out", "{tmp}/x.png"], "--steps"),
    Case("sample-guidance-huge", [*SAMPLE, "--guidance", "1e308", "--out", "{tmp}/x.png"],
         "--guidance"),
    Case("sample-guidance-nan", [*SAMPLE, "--guidance", "nan", "--out", "{tmp}/x.png"],
         "--guidance"),
    Case("sample-guidance-negative", [*SAMPLE, "--guidance", "-3", "--out", "{tmp}/x.png"],
         "--guidance"),
    Case("sample-seed-overflow", [*SAMPLE, "--seed", "99999999999999999999", "--out",
                                  "{tmp}/x.png"], "--seed"),
    Case("sample-seed-negative", [*SAMPLE, "--seed", "-1", "--out", "{tmp}/x.png"], "--seed"),
    Case("sample-class-out-of-range", [*SAMPLE, "--class", "12", "--out", "{tmp}/x.png"],
         "--class 12"),
    Case("sample-method", [*SAMPLE, "--method", "plms", "--out", "{tmp}/x.png"], "--method"),
    Case("sample-precision", [*SAMPLE, "--precision", "fp8", "--out", "{tmp}/x.png"],
         "--precision"),
    Case("train-seed-negative", [*TRAIN, "--seed", "-5", "--out", "{tmp}/r"], "--seed"),
    Case("train-minutes-nan", [*TRAIN, "--minutes", "nan", "--out", "{tmp}/r"], "--minutes"),
    Case("train-batch-huge", [*TRAIN, "--batch-size", "99999999999", "--out", "{tmp}/r"],
         "--batch-size"),
    Case("demo-n-per-class-zero", ["demo", "--n-per-class", "0", "--out", "{tmp}/d"],
         "--n-per-class"),
    # checkpoints and runs
    Case("sample-no-checkpoint", ["sample", "{tmp}/nothing", "--out", "{tmp}/x.png"],
         "no such checkpoint"),
    Case("sample-checkpoint-is-file", ["sample", "{tmp}/t.sh", "--out", "{tmp}/x.png"],
         "is a file", prepare=make_file("t.sh")),
    Case("sample-no-checkpoint-first", ["sample", "--out", "{tmp}/x.png"], "CHECKPOINT"),
    Case("eval-unknown-kind", ["eval", CKPT], "kind 'nonsense'", prepare=_relabel("nonsense")),
    Case("sample-clip-kind", [*SAMPLE, "--out", "{tmp}/x.png"], "has no sample",
         prepare=_relabel("clip")),
    Case("eval-truncated-config", ["eval", CKPT], "corrupted or truncated JSON",
         prepare=_truncate("checkpoint/config.json", 30)),
    Case("eval-truncated-weights", ["eval", CKPT, "--n-per-class", "1"], "model.safetensors",
         prepare=_truncate("checkpoint/model.safetensors", 100)),
    Case("eval-config-not-object", ["eval", CKPT], "no 'kind' entry",
         prepare=_edit_json("checkpoint/config.json", lambda t: "[1, 2]")),
    Case("eval-incomplete-config", ["eval", CKPT], "missing unet",
         prepare=_edit_json("checkpoint/config.json", lambda t: json.dumps(
             {k: v for k, v in json.loads(t).items() if k != "unet"}))),
    Case("eval-wrong-shape", ["eval", CKPT], "do not fit",
         prepare=_edit_json("checkpoint/config.json", lambda t: json.dumps(
             {**json.loads(t), "unet": {**json.loads(t)["unet"], "base_channels": 24}}))),
    Case("resume-nothing", [*TRAIN, "--resume", "--out", "{tmp}/empty"], "no checkpoint"),
    Case("resume-other-preset", ["train", "image", "--resume", "--preset", "small", "--out",
                                 "{tmp}/run"], "--preset: the run"),
    Case("resume-other-data", ["train", "image", "--resume", "--data", "mnist5k", "--out",
                               "{tmp}/run"], "--data: the run"),
    Case("resume-other-batch", ["train", "image", "--resume", "--batch-size", "16", "--out",
                                "{tmp}/run"], "--batch-size: the run"),
    Case("resume-fewer-steps", ["train", "image", "--resume", "--max-steps", "3", "--out",
                                "{tmp}/run"], "already at step 6"),
    Case("resume-corrupted-state", ["train", "image", "--resume", "--out", "{tmp}/run"],
         "trainer_state.json", prepare=_truncate("checkpoint/train/trainer_state.json", 10)),
    Case("resume-corrupted-optimizer", ["train", "image", "--resume", "--max-steps", "8",
                                        "--out", "{tmp}/run"], "optimizer.safetensors",
         prepare=_truncate("checkpoint/train/optimizer.safetensors", 50)),
    Case("train-data-missing", ["train", "image", "--data", "{tmp}/no/such", "--out", "{tmp}/r"],
         "no/such"),
    Case("unknown-command", ["paint"], "invalid choice"),
    Case("grad-accumulation-zero", [*TRAIN, "--grad-accumulation", "0", "--out", "{tmp}/r"],
         "--grad-accumulation: expected a positive integer"),
    Case("batch-not-divisible-by-accumulation",
         [*TRAIN, "--grad-accumulation", "3", "--max-steps", "2", "--out", "{tmp}/r"],
         "batch_size=32 must be divisible by the number of processes (1) times "
         "grad_accumulation (3)"),
    Case("precision-unknown", [*TRAIN, "--precision", "fp8", "--out", "{tmp}/r"],
         "--precision: invalid choice: 'fp8'"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_one_clear_line(case, trained, check_case):
    check_case(with_run(case, trained))


def test_nothing_is_written_when_the_input_is_bad(trained, tmp_path, capsys):
    """A failing sample run leaves an earlier result in place (atomic writes, early checks)."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    out = tmp_path / "s.png"
    out.write_bytes(b"previous result")
    weights = run / "checkpoint" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    assert main(["sample", str(run / "checkpoint"), "--n", "2", "--out", str(out)]) == 2
    assert out.read_bytes() == b"previous result"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".s.png")]


def test_upper_case_extension_and_bom_config_are_fine(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    config = run / "checkpoint" / "config.json"
    config.write_bytes(b"\xef\xbb\xbf" + config.read_bytes())  # as Windows editors save it
    out = tmp_path / "S.PNG"
    argv = ["sample", str(run / "checkpoint"), "--n", "2", "--steps", "2", "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(ROOT, reason="root may write into read-only folders")
def test_read_only_folder(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main([*TRAIN, "--max-steps", "1", "--out", str(ro / "r")]) == 2
        assert "permission denied" in capsys.readouterr().err
    finally:
        ro.chmod(0o755)
