"""Bad input for ``data speech``, ``data say``, ``data captions`` and ``data voices``.

Output paths (the speech cache, the WAV file) are checked before any synthesis and named as
given; a damaged cache names the file to restore or delete.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from catalogue import Case, make_file, make_folder
from synesthesia.data.speech import espeak_available

needs_espeak = pytest.mark.skipif(not espeak_available(), reason="needs eSpeak NG")
SPEECH = ["data", "speech", "--n-clips", "2", "--no-progress"]
SAY = ["data", "say", "seven"]


def _damaged_cache(file: str, keep: int):
    """A real two-clip speech cache in ``{tmp}/c`` with ``file`` cut to ``keep`` bytes."""

    def prepare(tmp: Path) -> None:
        from synesthesia.data.speech import synthesize_digits

        synthesize_digits(2, seed=0, cache_dir=tmp / "c", progress=False)
        (path,) = (tmp / "c").glob(f"speech/*/{file}")
        path.write_bytes(path.read_bytes()[:keep])

    return prepare


CASES = [
    # data speech: the cache folder
    Case("speech-cache-dir-is-file", [*SPEECH, "--cache-dir", "{tmp}/t.sh"],
         "--cache-dir", prepare=make_file("t.sh")),
    Case("speech-cache-dir-under-file", [*SPEECH, "--cache-dir", "{tmp}/t.sh/c"],
         "t.sh is a file", prepare=make_file("t.sh")),
    Case("speech-cache-dir-read-only", [*SPEECH, "--cache-dir", "/proc/c"],
         "--cache-dir /proc/c: cannot write"),
    Case("speech-cache-env-is-file", SPEECH, "$SYNESTHESIA_CACHE", prepare=make_file("t.sh"),
         env={"SYNESTHESIA_CACHE": "{tmp}/t.sh"}),
    Case("speech-cache-env-read-only", SPEECH, "$SYNESTHESIA_CACHE /proc/c",
         env={"SYNESTHESIA_CACHE": "/proc/c"}),
    pytest.param(Case("speech-cache-truncated-json", [*SPEECH, "--cache-dir", "{tmp}/c"],
                      "speech.json: corrupted or truncated JSON",
                      prepare=_damaged_cache("speech.json", 20)), marks=needs_espeak),
    pytest.param(Case("speech-cache-truncated-audio", [*SPEECH, "--cache-dir", "{tmp}/c"],
                      "speech.safetensors: corrupted or truncated",
                      prepare=_damaged_cache("speech.safetensors", 60)), marks=needs_espeak),
    # data speech: values
    Case("speech-n-zero", ["data", "speech", "--n-clips", "0"], "--n-clips"),
    Case("speech-n-huge", ["data", "speech", "--n-clips", "1000000000000"],
         "--n-clips: 1000000000000 clips"),
    Case("speech-n-times-syllables", ["data", "speech", "--n-clips", "60000", "--syllables",
                                      "ba,da"], "--n-clips x syllables"),
    Case("speech-no-syllables", ["data", "speech", "--syllables", ", ,"],
         "at least one syllable"),
    Case("speech-seed-negative", [*SPEECH, "--seed", "-1"], "--seed"),
    Case("speech-seed-overflow", [*SPEECH, "--seed", "99999999999999999999"], "--seed"),
    # data say: the output file, checked before speaking
    Case("say-out-read-only", [*SAY, "--out", "/proc/x.wav"], "--out /proc/x.wav: cannot write"),
    Case("say-out-is-folder", [*SAY, "--out", "{tmp}/adir.wav"], "is a folder",
         prepare=make_folder("adir.wav")),
    Case("say-out-under-file", [*SAY, "--out", "{tmp}/t.sh/s.wav"], "t.sh is a file",
         prepare=make_file("t.sh")),
    Case("say-out-extension", [*SAY, "--out", "{tmp}/x.mp3"], "must end in .wav"),
    Case("say-out-missing", SAY, "--out"),
    # data say: the text and the voice
    Case("say-empty", ["data", "say", "", "--out", "{tmp}/x.wav"], "TEXT must hold something"),
    Case("say-blank", ["data", "say", "   ", "--out", "{tmp}/x.wav"], "something to say"),
    Case("say-too-long", ["data", "say", "a" * 6000, "--out", "{tmp}/x.wav"],
         "TEXT: 6,000 characters"),
    Case("say-rate", [*SAY, "--rate", "10", "--out", "{tmp}/x.wav"], "--rate must be 80..450"),
    Case("say-rate-not-int", [*SAY, "--rate", "fast", "--out", "{tmp}/x.wav"], "--rate"),
    Case("say-pitch", [*SAY, "--pitch", "500", "--out", "{tmp}/x.wav"], "--pitch must be 0..100"),
    pytest.param(Case("say-unknown-voice", [*SAY, "--voice", "xx-none", "--out",
                                            "{tmp}/x.wav"], "no voice 'xx-none'"),
                 marks=needs_espeak),
    # data captions and voices
    Case("captions-n-too-many", ["data", "captions", "--n", "2000"], "at most 1000"),
    Case("captions-n-zero", ["data", "captions", "--n", "0"], "--n"),
    Case("captions-per-image-huge", ["data", "captions", "--per-image", "1000000000"],
         "--per-image"),
    Case("captions-split", ["data", "captions", "--split", "test"], "invalid choice"),
    Case("captions-seed-negative", ["data", "captions", "--seed", "-1"], "--seed"),
    Case("voices-extra-argument", ["data", "voices", "en"], "unrecognized arguments"),
    Case("data-nothing", ["data"], "required"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_one_clear_line(case, check_case):
    check_case(case)


@needs_espeak
def test_a_failed_say_leaves_no_file_and_a_good_one_writes_it(tmp_path, capsys):
    """What works stays working: the WAV is written whole, at the path given."""
    import soundfile as sf

    from synesthesia.cli import main

    out = tmp_path / "x.wav"
    assert main(["data", "say", "", "--out", str(out)]) == 2
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert main(["data", "say", "seven", "--out", str(out)]) == 0
    audio, rate = sf.read(out)
    assert rate == 22050 and 0.3 < len(audio) / rate < 1.0
    assert f"wrote {out}" in capsys.readouterr().out
