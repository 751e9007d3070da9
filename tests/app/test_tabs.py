"""The tabs' work without a browser: values checked, the checkpoints found, the samplers tab
against the exact mixture, the brain tab's live plots and its fit of a trial table."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from synesthesia.app import brain, samplers
from synesthesia.app.common import Checkpoints, check_number, page_errors, whole
from synesthesia.app.image import KIND as IMAGE
from synesthesia.app.joint import waveform
from synesthesia.errors import InputError


def _pixels(image) -> bytes:
    return image.tobytes()


# ---------------------------------------------------------------------- values and errors
@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (None, "expected a number"),
        ("ten", "expected a number"),
        (float("nan"), "in [1, 9]"),
        (0, "in [1, 9]"),
        (10, "in [1, 9]"),
        (True, "expected a number"),
        (2.5, "whole number"),
    ],
)
def test_whole_names_the_value_and_its_range(value, fragment):
    with pytest.raises(InputError, match=r"steps: .*" + fragment.replace("[", r"\[")):
        whole(value, "steps", 1, 9)


def test_whole_and_number_accept_what_sliders_send():
    assert whole(3.0, "steps", 1, 9) == 3 and whole("4", "steps", 1, 9) == 4
    assert check_number("0.5", "guidance", 0, 1) == 0.5


def test_page_errors_turn_input_errors_into_page_messages_and_keep_bugs():
    gr = pytest.importorskip("gradio")

    @page_errors
    def bad_input():
        raise InputError("steps: expected   a number,\n got 'x'")

    @page_errors
    def bug():
        raise KeyError("a bug")

    with pytest.raises(gr.Error) as caught:
        bad_input()
    assert caught.value.message == "steps: expected a number, got 'x'"
    with pytest.raises(KeyError):
        bug()


# ---------------------------------------------------------------------- checkpoints
def _fake_checkpoint(folder, config) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    (folder / "model.safetensors").write_bytes(b"")


def test_checkpoints_are_found_by_their_kind_and_broken_ones_become_notes(tmp_path):
    _fake_checkpoint(tmp_path / "a" / "checkpoint", {"kind": "image"})
    _fake_checkpoint(tmp_path / "b", {"kind": "text2image"})
    _fake_checkpoint(tmp_path / "c" / "checkpoint", "{not json")
    (tmp_path / "d").mkdir()  # a run without a checkpoint: ignored
    found = Checkpoints(tmp_path)
    assert found.choices("image") == [str(tmp_path / "a" / "checkpoint")]
    assert found.choices("text2image") == [str(tmp_path / "b")]
    assert len(found.notes) == 1 and str(tmp_path / "c" / "checkpoint") in found.notes[0]
    assert found.resolve(IMAGE, None) == tmp_path / "a" / "checkpoint"
    with pytest.raises(InputError, match="not one of the app's class-to-image checkpoints"):
        found.resolve(IMAGE, str(tmp_path / "b"))


def test_no_checkpoint_of_a_kind_says_how_to_get_one(tmp_path):
    with pytest.raises(InputError, match="train a small one.*synesthesia train image"):
        Checkpoints(tmp_path / "none yet").resolve(IMAGE, None)


# ---------------------------------------------------------------------- spoken queries
def test_a_recording_becomes_mono_float_samples():
    stereo = np.stack([np.full(800, 16384, np.int16), np.zeros(800, np.int16)], axis=1)
    x, rate = waveform((8000, stereo))
    assert rate == 8000 and x.shape == (800,) and x.dtype == np.float32
    assert x[0] == pytest.approx(16384 / 32767 / 2)
    with pytest.raises(InputError, match="longer than 10 s"):
        waveform((100, np.zeros(2000, np.float32)))
    with pytest.raises(InputError, match="record or upload"):
        waveform(None)


# ---------------------------------------------------------------------- samplers
def test_mixture_log_density_is_scipys_and_integrates_to_one():
    from scipy.stats import multivariate_normal

    means, stds = samplers.ring_mixture(5)
    pts = np.random.default_rng(0).normal(0, 2, (50, 2))
    ref = np.log(
        np.mean([multivariate_normal(m, np.diag(s**2)).pdf(pts) for m, s in zip(means, stds)], 0)
    )
    np.testing.assert_allclose(samplers.log_density(pts, means, stds).numpy(), ref, rtol=1e-10)
    g = np.linspace(-6, 6, 601)
    gx, gy = np.meshgrid(g, g)
    dens = samplers.log_density(np.stack([gx.ravel(), gy.ravel()], 1), means, stds).exp()
    assert float(dens.sum()) * (g[1] - g[0]) ** 2 == pytest.approx(1.0, abs=1e-6)


def test_guidance_zero_is_the_mixture_and_one_the_class():
    """w = 0 gives the unconditional model: a sixth of the samples lie nearest class 0
    (binomial, 4 sd); w = 1 the conditional one: all of them (the components are 7 sd apart)."""
    n = 1200
    free = samplers.sample_mixture("ddim", 30, 0.0, 0, 6, n, seed=1)
    sd = math.sqrt(1 / 6 * 5 / 6 / n)
    assert abs(free.share - 1 / 6) < 4 * sd
    guided = samplers.sample_mixture("dpmpp_2m", 100, 1.0, 0, 6, n, seed=1)
    assert guided.share > 0.99
    # the exact denoiser with enough steps draws the class's own density (4 sd of the
    # difference of two means of n draws); a first-order sampler in few steps does not yet
    se = float(samplers.log_density(guided.truth, guided.means, guided.stds, 0).std()) / n**0.5
    assert abs(guided.log_density - guided.true_log_density) < 4 * math.sqrt(2) * se
    coarse, fine = (samplers.sample_mixture("ddim", s, 1.0, 0, 6, n, seed=1) for s in (30, 300))
    assert abs(fine.log_density - fine.true_log_density) < abs(
        coarse.log_density - coarse.true_log_density
    )


def test_samplers_plot_follows_its_sliders_and_repeats_for_a_seed():
    a, note = samplers.draw("euler", 8, 2.0, "0", 6, 200, 3)
    again, _ = samplers.draw("euler", 8, 2.0, "0", 6, 200, 3)
    assert _pixels(a) == _pixels(again)
    assert "denoiser evaluations" in note
    for changed in (
        ("heun", 8, 2.0, "0", 6, 200, 3),
        ("euler", 4, 2.0, "0", 6, 200, 3),
        ("euler", 8, 0.5, "0", 6, 200, 3),
        ("euler", 8, 2.0, "none", 6, 200, 3),
        ("euler", 8, 2.0, "0", 4, 200, 3),
        ("euler", 8, 2.0, "0", 6, 200, 4),
    ):
        assert _pixels(samplers.draw(*changed)[0]) != _pixels(a), changed
    with pytest.raises(InputError, match="guided class: expected one of none, 0, 1, 2, 3"):
        samplers.draw("euler", 8, 2.0, "5", 4, 200, 3)


# ---------------------------------------------------------------------- brain
def test_ventriloquist_without_common_causes_has_no_bias():
    _, note = brain.ventriloquist_plot(p_common=0.0)
    biases = [
        float(part.split(": ")[1]) for part in note.rstrip(".").split("disparity ")[1].split(", ")
    ]
    assert biases == [0.0] * len(biases) and len(biases) == 4
    _, note = brain.ventriloquist_plot(p_common=0.5)
    assert all(
        float(p.split(": ")[1]) > 0 for p in note.rstrip(".").split("disparity ")[1].split(", ")
    )


@pytest.mark.parametrize(
    ("plot", "changes"),
    [
        (
            brain.ventriloquist_plot,
            {
                "sigma_v": 4.0,
                "sigma_a": 5.0,
                "sigma_p": 6.0,
                "p_common": 0.6,
                "strategy": "selection",
            },
        ),
        (
            brain.flash_plot,
            {
                "sigma_v": 1.0,
                "sigma_a": 0.6,
                "sigma_p": 1.0,
                "mu_p": 2.0,
                "p_common": 0.3,
                "strategy": "matching",
            },
        ),
        (
            brain.mcgurk_plot,
            {
                "p_common": 0.3,
                "sigma_category": 0.6,
                "sigma_prior": 1.0,
                "auditory_sd": 0.8,
                "visual_sd": 0.9,
                "strategy": "selection",
            },
        ),
    ],
)
def test_each_brain_slider_moves_its_plot(plot, changes):
    base = _pixels(plot()[0])
    for name, value in changes.items():
        assert _pixels(plot(**{name: value})[0]) != base, name
    name = next(iter(changes))
    with pytest.raises(InputError, match=name):
        plot(**{name: -1.0})


def test_fit_of_the_example_table_gives_every_parameter(tmp_path):
    rows, summary, check = brain.fit_csv(brain.example_trials(tmp_path), starts=1)
    table = {r[0]: r for r in rows}
    assert set(table) == {
        "sigma_v",
        "sigma_a",
        "sigma_p",
        "mu_p",
        "p_common",
        "lapse",
        "sigma_motor",
    }
    for name in ("sigma_v", "sigma_a", "sigma_p", "mu_p", "p_common"):
        assert table[name][3] == "free" and table[name][2] is not None and table[name][2] > 0
    assert "250 trials" in summary and check is not None


def test_a_bad_table_names_its_row_and_column(tmp_path):
    bad = tmp_path / "t.csv"
    bad.write_text("stim_v,stim_a,resp_v\n1,2,3\n1,oops,3\n")
    with pytest.raises(InputError, match="row 2, column 'stim_a': 'oops' is not a number"):
        brain.fit_csv(str(bad))
    with pytest.raises(InputError, match="upload a CSV"):
        brain.fit_csv(None)


def test_the_app_imports_no_gradio_until_it_builds():
    import subprocess
    import sys

    code = (
        "import synesthesia.app.main, synesthesia.commands.app, sys; print('gradio' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_torch_is_what_the_samplers_tab_returns():
    s = samplers.sample_mixture("ddpm", 5, 1.0, None, 3, 10, 0)
    assert isinstance(s.x, torch.Tensor) and s.x.shape == (10, 2) and s.share is None
