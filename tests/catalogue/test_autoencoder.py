"""Bad input for the autoencoder commands (train autoencoder, eval autoencoder): one clear line.

``{tmp}/run`` is a real short training run (6 steps on the 8 x 8 digits) copied into the
test's folder, so a row may corrupt it freely.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from catalogue import Case, damaged, edit_json, make_file, make_folder, with_run
from synesthesia.cli import main

TRAIN = ["train", "autoencoder", "--data", "digits8x8", "--batch-size", "32", "--no-progress"]
RESUME = ["train", "autoencoder", "--resume", "--out", "{tmp}/run", "--no-progress"]
CKPT = "{tmp}/run/checkpoint"
EVAL = ["eval", CKPT, "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("autoencoder-run") / "run"
    assert main([*TRAIN, "--max-steps", "6", "--out", str(out)]) == 0
    return out


def _network(**changes):
    return edit_json(lambda c: {**c, "autoencoder": {**c["autoencoder"], **changes}})


CASES = [
    # values, checked at parse time
    Case("train-minutes-zero", [*TRAIN, "--minutes", "0", "--out", "{tmp}/r"], "--minutes"),
    Case("train-minutes-negative", [*TRAIN, "--minutes", "-2", "--out", "{tmp}/r"], "--minutes"),
    Case("train-minutes-nan", [*TRAIN, "--minutes", "nan", "--out", "{tmp}/r"], "--minutes"),
    Case("train-minutes-word", [*TRAIN, "--minutes", "five", "--out", "{tmp}/r"], "--minutes"),
    Case("train-max-steps-zero", [*TRAIN, "--max-steps", "0", "--out", "{tmp}/r"],
         "--max-steps"),
    Case("train-batch-zero", [*TRAIN, "--batch-size", "0", "--out", "{tmp}/r"], "--batch-size"),
    Case("train-batch-huge", [*TRAIN, "--batch-size", "99999999999", "--out", "{tmp}/r"],
         "--batch-size"),
    Case("train-seed-negative", [*TRAIN, "--seed", "-1", "--out", "{tmp}/r"], "--seed"),
    Case("train-seed-overflow", [*TRAIN, "--seed", "99999999999999999999", "--out", "{tmp}/r"],
         "--seed"),
    Case("train-precision", [*TRAIN, "--precision", "fp8", "--out", "{tmp}/r"], "--precision"),
    # output folders, checked before any work
    Case("train-out-is-file", [*TRAIN, "--max-steps", "1", "--out", "{tmp}/t.sh"], "is a file",
         prepare=make_file("t.sh")),
    Case("train-out-under-file", [*TRAIN, "--max-steps", "1", "--out", "{tmp}/t.sh/run"],
         "is a file", prepare=make_file("t.sh")),
    Case("train-out-proc", [*TRAIN, "--max-steps", "1", "--out", "/proc/run"], "/proc"),
    Case("train-data-missing", [*TRAIN[:2], "--data", "{tmp}/no/such", "--out", "{tmp}/r"],
         "no/such"),
    # resuming
    Case("resume-nothing", [*TRAIN, "--resume", "--out", "{tmp}/empty"], "no checkpoint"),
    Case("resume-other-seed", [*RESUME, "--seed", "1"], "--seed: the run"),
    Case("resume-other-data", [*RESUME, "--data", "mnist5k"], "--data: the run"),
    Case("resume-other-batch", [*RESUME, "--batch-size", "16"], "--batch-size: the run"),
    Case("resume-fewer-steps", [*RESUME, "--max-steps", "3"], "already at step 6"),
    Case("resume-image-run", RESUME, "not an autoencoder run (kind='image')",
         prepare=edit_json(lambda c: {**c, "kind": "image"})),
    Case("resume-corrupted-state", RESUME, "trainer_state.json",
         prepare=damaged("checkpoint/train/trainer_state.json", 10)),
    Case("resume-corrupted-optimizer", [*RESUME, "--max-steps", "8"], "optimizer.safetensors",
         prepare=damaged("checkpoint/train/optimizer.safetensors", 50)),
    # checkpoints given to eval
    Case("eval-no-checkpoint", ["eval", "{tmp}/nothing"], "no such checkpoint"),
    Case("eval-checkpoint-is-file", ["eval", "{tmp}/t.sh"], "is a file",
         prepare=make_file("t.sh")),
    Case("eval-kind-no-checkpoint", ["eval", "autoencoder", "{tmp}/nothing"],
         "no such checkpoint folder"),
    Case("eval-truncated-config", EVAL, "corrupted or truncated JSON",
         prepare=damaged("checkpoint/config.json", 30)),
    Case("eval-truncated-weights", EVAL, "model.safetensors",
         prepare=damaged("checkpoint/model.safetensors", 100)),
    Case("eval-missing-weights", EVAL, "weights file not found",
         prepare=damaged("checkpoint/model.safetensors")),
    Case("eval-wrong-kind", ["eval", "autoencoder", CKPT, "--no-progress"],
         "not an autoencoder (kind='nonsense')",
         prepare=edit_json(lambda c: {**c, "kind": "nonsense"})),
    Case("eval-missing-network", EVAL, "missing 'autoencoder'",
         prepare=edit_json(lambda c: {k: v for k, v in c.items() if k != "autoencoder"})),
    Case("eval-unknown-key", EVAL, "unknown AutoencoderConfig keys ['chanels']",
         prepare=_network(chanels=[8])),
    Case("eval-bad-scaling", EVAL, "scaling_factor", prepare=_network(scaling_factor=-1.0)),
    Case("eval-too-large-latent", EVAL, "more than a quarter", prepare=_network(channels=[32])),
    Case("eval-weights-do-not-fit", EVAL, "do not fit", prepare=_network(channels=[16, 64])),
    Case("eval-other-image-size", EVAL, "takes (1, 28, 28) images",
         prepare=edit_json(lambda c: {**c, "autoencoder": {**c["autoencoder"],
                                                              "image_size": 28}})),
    # eval outputs and options
    Case("eval-json-extension", [*EVAL, "--json", "{tmp}/s.txt"], ".json"),
    Case("eval-json-is-folder", [*EVAL, "--json", "{tmp}/d.json"], "is a folder",
         prepare=make_folder("d.json")),
    Case("eval-grid-extension", [*EVAL, "--grid", "{tmp}/g.jpg"], ".png"),
    Case("eval-grid-under-file", [*EVAL, "--grid", "{tmp}/t.sh/g.png"], "is a file",
         prepare=make_file("t.sh")),
    Case("eval-grid-n-zero", [*EVAL, "--grid-n", "0"], "--grid-n"),
    Case("eval-grid-n-huge", [*EVAL, "--grid-n", "99999"], "--grid-n"),
    Case("eval-cache-is-file", EVAL, "$SYNESTHESIA_CACHE", prepare=make_file("c.sh"),
         env={"SYNESTHESIA_CACHE": "{tmp}/c.sh"}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_one_clear_line(case, trained, check_case):
    check_case(with_run(case, trained))
