import argparse

import pytest
import soundfile as sf

from synesthesia.commands import data
from synesthesia.data.speech import espeak_available
from synesthesia.errors import InputError


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="synesthesia")
    data.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_captions_print_attributes_and_captions(capsys):
    assert _run(["data", "captions", "--n", "2", "--per-image", "2", "--seed", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and lines[0].startswith("#") and "thickness" in lines[0]
    assert all(line.startswith("    ") for line in lines[1:3])


def test_voices_lists_every_voice_with_its_split(capsys):
    _run(["data", "voices"])
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 344 and {r[1] for r in rows} == {"train", "val"}


@pytest.mark.skipif(not espeak_available(), reason="eSpeak NG is not installed")
def test_say_writes_a_wav(tmp_path, capsys):
    out = tmp_path / "seven.wav"
    _run(["data", "say", "seven", "--out", str(out), "--voice", "en-us+m1"])
    audio, rate = sf.read(out)
    assert rate == 22050 and 0.3 < len(audio) / rate < 1.0
    with pytest.raises(InputError, match=r"must end in \.wav"):
        _run(["data", "say", "seven", "--out", str(tmp_path / "seven.mp3")])
    with pytest.raises(InputError, match="no voice"):
        _run(["data", "say", "seven", "--out", str(out), "--voice", "xx-none"])
