"""``synesthesia probe ventriloquist`` end to end: the figure, the JSON and the library's fit."""

import json

from synesthesia.cli import main


def test_ventriloquist_command_writes_figure_and_json(tmp_path, capsys):
    png, out = tmp_path / "v.png", tmp_path / "v.json"
    argv = ["probe", "ventriloquist", "--plot", str(png), "--json", str(out)]
    argv += [
        "--p-train",
        "0.5",
        "--trials",
        "10",
        "--steps",
        "300",
        "--starts",
        "1",
        "--no-progress",
    ]
    assert main([*argv, "--models", "averaging", "segregation"]) == 0
    assert png.stat().st_size > 1000
    data = json.loads(out.read_text())
    (row,) = data["p_common_table"]
    assert row["p_train"] == 0.5 and 0.0 <= row["p_common"] <= 1.0
    (probe,) = data["probes"]
    assert probe["n_trials"] == 250 and set(probe["models"]["fits"]) == {"averaging", "segregation"}
    assert data["config"]["steps"] == 300 and data["machine"]["cpu_model"]
    assert "wrote" in capsys.readouterr().out
