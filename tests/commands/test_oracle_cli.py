"""`synesthesia oracle` draws its figure; bad arguments are one line and exit status 2."""

from PIL import Image

from synesthesia.cli import main


def test_oracle_writes_a_png(tmp_path):
    out = tmp_path / "fig.png"
    assert main(["oracle", "--n", "200", "--steps", "5", "--out", str(out)]) == 0
    with Image.open(out) as im:
        assert im.width > im.height > 100


def test_oracle_rejects_a_non_png_path(tmp_path, capsys):
    assert main(["oracle", "--out", str(tmp_path / "fig.jpg")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err
