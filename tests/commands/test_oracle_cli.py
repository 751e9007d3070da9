"""`synesthesia oracle` draws its figure; bad arguments are one line and exit status 2, found
before any work (the full table of bad inputs is tests/catalogue/test_oracle.py)."""

import pytest
from PIL import Image

from synesthesia.cli import main


def test_oracle_writes_a_png(tmp_path, capsys):
    out = tmp_path / "new" / "fig.PNG"  # a missing folder is created; the case is ignored
    assert main(["oracle", "--n", "200", "--steps", "5", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > im.height > 100


def test_oracle_rejects_a_non_png_path(tmp_path, capsys):
    assert main(["oracle", "--out", str(tmp_path / "fig.jpg")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--out", "/proc/x.png"],
        ["--out", "{tmp}"],
        ["--n", "10000000000"],
        ["--steps", "5000"],
    ],
)
def test_bad_arguments_are_found_before_any_sampling(tmp_path, capsys, monkeypatch, argv):
    import synesthesia.diffusion as diffusion

    def no_work(*args, **kwargs):
        raise AssertionError("sampling started before the arguments were checked")

    monkeypatch.setattr(diffusion, "sample", no_work)
    monkeypatch.setattr(diffusion, "GaussianMixtureOracle", no_work)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["oracle", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("synesthesia: error:")
    assert not any(tmp_path.iterdir())  # nothing written


def test_the_figure_titles_count_evaluations(tmp_path, monkeypatch):
    """Each panel names the denoiser calls its sampler made, counted, not computed."""
    import matplotlib.axes

    titles = []
    original = matplotlib.axes.Axes.set_title

    def spy(self, label, *args, **kwargs):
        titles.append(label)
        return original(self, label, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", spy)
    assert main(["oracle", "--n", "20", "--steps", "10", "--out", str(tmp_path / "f.png")]) == 0
    # linear schedule, 10 calls each: heun gets 6 steps = 2 * 6 - 2 calls (Euler from sigma 157)
    for method in ("ddpm", "ddim", "dpmpp_2m", "euler", "heun"):
        assert f"{method}, 10 evals" in titles
