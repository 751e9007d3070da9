"""Bad input for the audio commands (train audio, generate and eval of text2audio): one clear line.

``{tmp}/run`` is a real short training run (tiny U-Net, a fake FSDD folder of tones, 2 steps)
copied into the test's folder, so a row may corrupt it freely.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from audio_fixtures import fake_fsdd

from catalogue import Case, edit_json, make_file, with_run
from synesthesia.cli import main

TRAIN = ["train", "audio", "--n-espeak", "0", "--preset", "tiny", "--batch-size", "8",
         "--max-steps", "1", "--no-progress"]  # fmt: skip
CKPT = "{tmp}/run/checkpoint"
GEN = ["generate", CKPT, "--n", "1", "--steps", "1", "--out", "{tmp}/clips", "--no-progress"]
EVAL = ["eval", CKPT, "--n-per-digit", "1", "--steps", "1", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("audio-run")
    fsdd = fake_fsdd(tmp / "fsdd")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYNESTHESIA_CACHE", str(tmp / "cache"))
        argv = [*TRAIN, "--fsdd", str(fsdd), "--max-steps", "2", "--out", str(tmp / "run")]
        assert main(argv) == 0
    return tmp / "run"


def _no_fsdd(config: dict) -> dict:
    return {**config, "fsdd_folder": None}


def _bad_domain(config: dict) -> dict:
    return {**config, "domain": {**config["domain"], "kind": "midi"}}


def _moved_fsdd(config: dict) -> dict:
    return {**config, "fsdd_folder": "/nonexistent/fsdd"}


TRAIN_CASES = [
    Case("fsdd-missing", [*TRAIN, "--fsdd", "{tmp}/nope", "--out", "{tmp}/r"], "FSDD folder"),
    Case(
        "fsdd-a-file",
        [*TRAIN, "--fsdd", "{tmp}/f.wav", "--out", "{tmp}/r"],
        "is a file",
        prepare=make_file("f.wav"),
    ),  # fmt: skip
    Case("fsdd-empty", [*TRAIN, "--fsdd", "{tmp}", "--out", "{tmp}/r"], "holds no"),
    Case("no-data", [*TRAIN, "--out", "{tmp}/r"], "no training data"),
    Case("espeak-negative", [*TRAIN, "--n-espeak", "-1"], "expected 0..100,000"),
    Case("domain-unknown", [*TRAIN, "--domain", "midi"], "invalid choice"),
    Case("minutes-zero", [*TRAIN, "--minutes", "0"], "positive number"),
    Case("out-a-file", [*TRAIN, "--out", "{tmp}/f"], "is a file", prepare=make_file("f")),
    Case(
        "resume-nothing",
        ["train", "audio", "--resume", "--out", "{tmp}/empty"],
        "no checkpoint to resume",
    ),  # fmt: skip
]

RUN_CASES = [
    Case("prompt-unknown-word", [*GEN, "--audio", "seventy"], "'seventy' not in"),
    Case("prompt-no-digit", [*GEN, "--audio", "the word"], "must name one digit"),
    Case("prompt-two-digits", [*GEN, "--audio", "seven three"], "must name one digit"),
    Case("prompt-missing", GEN, "--audio"),
    Case("negative-unknown", [*GEN, "--audio", "seven", "--negative", "loud"], "'loud' not in"),
    Case(
        "sample-rate-other",
        [*GEN, "--audio", "seven", "--sample-rate", "16000"],
        "trained at 8000 Hz",
    ),  # fmt: skip
    Case("sample-rate-bad", [*GEN, "--audio", "seven", "--sample-rate", "fast"], "rate in Hz"),
    Case("n-zero", [*GEN, "--audio", "seven", "--n", "0"], "positive integer"),
    Case(
        "out-a-file",
        [*GEN[:-3], "--out", "{tmp}/f", "--audio", "7"],
        "is a file",
        prepare=make_file("f"),
    ),  # fmt: skip
    Case(
        "domain-corrupt", [*GEN, "--audio", "seven"], "audio domain", prepare=edit_json(_bad_domain)
    ),  # fmt: skip
    Case("eval-no-fsdd", EVAL, "--fsdd", prepare=edit_json(_no_fsdd)),
    Case("eval-fsdd-moved", EVAL, "not found", prepare=edit_json(_moved_fsdd)),
    Case("eval-fsdd-missing", [*EVAL, "--fsdd", "{tmp}/nope"], "FSDD folder"),
    Case("eval-json-suffix", [*EVAL, "--json", "{tmp}/s.txt"], ".json"),
    Case(
        "resume-other-seed",
        ["train", "audio", "--resume", "--out", "{tmp}/run", "--seed", "5", "--no-progress"],
        "--seed",
    ),  # fmt: skip
]


@pytest.mark.parametrize("case", TRAIN_CASES, ids=lambda c: c.id)
def test_train_audio_bad_input(case, check_case):
    check_case(case)


@pytest.mark.parametrize("case", RUN_CASES, ids=lambda c: c.id)
def test_audio_checkpoint_bad_input(case, trained, check_case):
    check_case(with_run(case, trained))
