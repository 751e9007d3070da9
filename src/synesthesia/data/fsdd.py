"""The Free Spoken Digit Dataset (FSDD): real recordings of spoken digits, 8 kHz WAV files.

Layout: ``{digit}_{speaker}_{index}.wav`` in one folder (the dataset's ``recordings/``; the
dataset root holding ``recordings/`` is accepted too). Get it from
https://github.com/Jakobovski/free-spoken-digit-dataset (CC BY-SA 4.0; Jackson et al., Zenodo,
doi:10.5281/zenodo.1342401). The files are read from where they lie, never copied.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from synesthesia.data.captions import NUMBER_WORDS
from synesthesia.data.speech import SpeechSet
from synesthesia.errors import InputError, MissingInputError

FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset"
FSDD_SAMPLE_RATE = 8_000
_NAME = re.compile(r"^([0-9])_([A-Za-z0-9-]+)_([0-9]+)\.wav$")


def _recordings_folder(folder: str | Path) -> Path:
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"FSDD folder {folder}: is a file, expected the recordings folder")
    if not folder.is_dir():
        raise MissingInputError(
            f"FSDD folder {folder} not found: download the Free Spoken Digit Dataset from "
            f"{FSDD_URL} and pass the path of its recordings/ folder"
        )
    try:
        has_wavs = any(folder.glob("*.wav"))
    except OSError as exc:
        raise InputError(f"FSDD folder {folder}: cannot be read ({exc.strerror})") from None
    if not has_wavs and (folder / "recordings").is_dir():
        folder = folder / "recordings"
    return folder


def fsdd_entries(folder: str | Path) -> tuple[Path, list[tuple[str, int, int, Path]]]:
    """The recordings folder and its ``(speaker, digit, index, path)`` entries, unsorted."""
    root = _recordings_folder(folder)
    entries = []
    for path in root.glob("*.wav"):
        m = _NAME.match(path.name)
        if m is None:
            raise InputError(
                f"{path}: FSDD file names must be {{digit}}_{{speaker}}_{{index}}.wav; "
                "move other WAV files out of the folder"
            )
        entries.append((m.group(2), int(m.group(1)), int(m.group(3)), path))
    if not entries:
        raise MissingInputError(
            f"FSDD folder {root} holds no {{digit}}_{{speaker}}_{{index}}.wav files: download "
            f"the Free Spoken Digit Dataset from {FSDD_URL} and pass its recordings/ folder"
        )
    return root, entries


def fsdd_speakers(folder: str | Path) -> list[str]:
    """The speakers of an FSDD folder (sorted), read from its file names without loading audio;
    a missing folder or one without FSDD recordings raises naming it."""
    return sorted({e[0] for e in fsdd_entries(folder)[1]})


def load_fsdd(
    folder: str | Path,
    speakers: Sequence[str] | None = None,
    sample_rate: int | None = None,
) -> SpeechSet:
    """Read every ``{digit}_{speaker}_{index}.wav`` in ``folder`` (sorted by speaker, digit,
    index) as a :class:`SpeechSet` at 8 kHz (or resampled to ``sample_rate``).

    ``speakers`` keeps only those speakers. Labels are the digits; ``meta`` holds speaker,
    index, file and word. A missing folder, a folder without recordings, a WAV file whose
    name does not follow the layout or that cannot be read raises
    :class:`~synesthesia.errors.InputError` naming it.
    """
    import soundfile as sf

    from synesthesia.data.audio import resample

    root, entries = fsdd_entries(folder)
    if speakers is not None:
        known = {e[0] for e in entries}
        missing = sorted(set(speakers) - known)
        if missing:
            raise InputError(f"speakers {missing} are not in {root} (it has {sorted(known)})")
        entries = [e for e in entries if e[0] in set(speakers)]
    entries.sort()
    waveforms, labels, spk, meta = [], [], [], []
    out_rate = sample_rate or FSDD_SAMPLE_RATE
    for speaker, digit, index, path in entries:
        try:
            audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except (RuntimeError, OSError, sf.LibsndfileError) as exc:
            reason = " ".join(str(exc).split())
            raise InputError(f"{path}: cannot read WAV ({reason})") from None
        if audio.shape[0] == 0:
            raise InputError(f"{path}: the WAV file holds no samples")
        x = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
        w = torch.from_numpy(np.ascontiguousarray(x))
        if rate != out_rate:
            w = resample(w, rate, out_rate)
        waveforms.append(w)
        labels.append(digit)
        spk.append(speaker)
        meta.append(
            {"speaker": speaker, "index": index, "file": path.name, "word": NUMBER_WORDS[digit]}
        )
    return SpeechSet(
        waveforms,
        out_rate,
        torch.tensor(labels, dtype=torch.int64),
        spk,
        meta,
        NUMBER_WORDS,
        "fsdd",
    )
