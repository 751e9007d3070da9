"""Spoken digits and syllables: the :class:`SpeechSet` container and offline synthesis.

Synthesis drives eSpeak NG (the library and voice data shipped by the PyPI package
``espeakng-loader``) through ctypes; see :func:`synthesize_digits`.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from synesthesia.data.audio import LogMelConfig, fix_length, log_mel
from synesthesia.errors import InputError, MissingInputError, check_output_dir, short


@dataclass
class SpeechSet(torch.utils.data.Dataset):
    """Clips of speech with labels; a torch Dataset whose items are ``(waveform, label)``.

    ``waveforms``: 1-D float32 tensors in [-1, 1] (lengths differ), all at ``sample_rate`` Hz;
    ``labels``: int64, one per clip; ``speakers``: a voice / speaker id per clip; ``meta``: a
    dict per clip (for synthetic speech: voice, pitch, rate, noise_snr_db, word).
    """

    waveforms: list[torch.Tensor]
    sample_rate: int
    labels: torch.Tensor
    speakers: list[str]
    meta: list[dict] = field(default_factory=list)
    words: tuple[str, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        n = len(self.waveforms)
        self.labels = torch.as_tensor(self.labels, dtype=torch.int64)
        if self.labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(self.labels.shape)}")
        if len(self.speakers) != n:
            raise ValueError(f"speakers has {len(self.speakers)} entries for {n} waveforms")
        if not self.meta:
            self.meta = [{} for _ in range(n)]
        if len(self.meta) != n:
            raise ValueError(f"meta has {len(self.meta)} entries for {n} waveforms")
        for i, w in enumerate(self.waveforms):
            if w.ndim != 1:
                raise ValueError(f"waveform {i} must be 1-D, got shape {tuple(w.shape)}")

    def __len__(self) -> int:
        return len(self.waveforms)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.waveforms[i], self.labels[i]

    def durations(self) -> np.ndarray:
        """Length of each clip in seconds."""
        return np.array([len(w) / self.sample_rate for w in self.waveforms])

    def subset(self, index: torch.Tensor | np.ndarray | list[int]) -> SpeechSet:
        """The clips at ``index`` (integer indices or a boolean mask)."""
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return SpeechSet(
            [self.waveforms[i] for i in idx],
            self.sample_rate,
            self.labels[torch.as_tensor(idx, dtype=torch.int64)],
            [self.speakers[i] for i in idx],
            [self.meta[i] for i in idx],
            self.words,
            self.name,
        )

    def log_mels(
        self, config: LogMelConfig | None = None, frames: int | None = None
    ) -> torch.Tensor | list[torch.Tensor]:
        """Log-mel features of every clip: a list, or ``N x n_mels x frames`` if ``frames``."""
        config = config or LogMelConfig()
        feats = log_mel(self.waveforms, self.sample_rate, config)
        if frames is None:
            return feats
        return torch.stack([fix_length(f, frames, config.floor) for f in feats])

    def save(self, folder: str | Path) -> Path:
        """Write ``speech.safetensors`` (all samples, concatenated) and ``speech.json``."""
        from synesthesia.io import atomic_write_bytes, atomic_write_json, tensors_to_bytes

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        lengths = [len(w) for w in self.waveforms]
        audio = torch.cat(self.waveforms) if self.waveforms else torch.zeros(0)
        tensors = {
            "audio": audio.to(torch.float32),
            "lengths": torch.tensor(lengths, dtype=torch.int64),
            "labels": self.labels,
        }
        info = {
            "sample_rate": self.sample_rate,
            "speakers": self.speakers,
            "meta": self.meta,
            "words": list(self.words),
            "name": self.name,
        }
        atomic_write_bytes(folder / "speech.safetensors", tensors_to_bytes(tensors))
        atomic_write_json(folder / "speech.json", info, indent=None)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> SpeechSet:
        """Read what :meth:`save` wrote; a missing or damaged file raises naming the file."""
        from synesthesia.io import read_json, read_safetensors

        folder = Path(folder)
        tpath = folder / "speech.safetensors"
        info = read_json(folder / "speech.json", what="SpeechSet description")
        tensors = read_safetensors(tpath)
        if set(tensors) != {"audio", "lengths", "labels"}:
            raise InputError(f"{tpath}: not a SpeechSet file (tensors {sorted(tensors)})")
        lengths = tensors["lengths"].tolist()
        if sum(lengths) != tensors["audio"].numel():
            raise InputError(f"{tpath}: clip lengths do not add up to the audio; delete it")
        try:
            return cls(
                list(torch.split(tensors["audio"], lengths)),
                int(info["sample_rate"]),
                tensors["labels"],
                list(info["speakers"]),
                list(info["meta"]),
                tuple(info["words"]),
                info.get("name", ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"{folder / 'speech.json'}: does not describe {tpath.name} ({exc}); delete "
                "the folder to rebuild it"
            ) from None


# ---------------------------------------------------------------------------------------------
# eSpeak NG through ctypes
# ---------------------------------------------------------------------------------------------

#: English-speaking eSpeak NG voices (accents); a voice is ``language`` or ``language+variant``.
ESPEAK_LANGUAGES: tuple[str, ...] = (
    "en",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en-us-nyc",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
#: Voice variants (timbres) of eSpeak NG's ``voices/!v`` folder: 8 "m", 12 female, 23 other
#: male. Left out: robotic and whispering ones, and those with a "breath" setting (f2, f3, f5,
#: victor, ...), whose noise does not repeat from one run to the next.
ESPEAK_VARIANTS: tuple[str, ...] = (
    *(f"m{i}" for i in range(1, 9)),
    "f1",
    "f4",
    "Andrea",
    "Annie",
    "anika",
    "aunty",
    "belinda",
    "grandma",
    "linda",
    "steph",
    "steph2",
    "steph3",
    "Alex",
    "Andy",
    "Lee",
    "Mike",
    "adam",
    "benjamin",
    "boris",
    "david",
    "edward",
    "grandpa",
    "ian",
    "john",
    "klatt",
    "klatt2",
    "klatt3",
    "max",
    "norbert",
    "quincy",
    "rob",
    "robert",
    "shelby",
    "travis",
    "zac",
)
#: Held-out voices: every voice with one of these variants or this accent is only in "val".
VAL_VARIANTS: tuple[str, ...] = ("m3", "f4", "Annie", "david", "klatt2", "steph")
VAL_LANGUAGES: tuple[str, ...] = ("en-029",)
#: Every voice, ``language+variant``, in a fixed order.
ESPEAK_VOICES: tuple[str, ...] = tuple(
    f"{l}+{v}" for l in ESPEAK_LANGUAGES for v in ESPEAK_VARIANTS
)

ESPEAK_SAMPLE_RATE = 22_050
#: Bumped whenever synthesis changes, so old caches are not reused.
SYNTHESIS_VERSION = 2

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4}
_VOLUME = 60  # below eSpeak's default of 100, which clips some voices


class EspeakNotFoundError(MissingInputError):
    """The eSpeak NG library or its voice data is missing."""


def voice_split(voice: str) -> str:
    """``"val"`` for a held-out voice (see :data:`VAL_VARIANTS`, :data:`VAL_LANGUAGES`), else
    ``"train"``."""
    language, _, variant = voice.partition("+")
    return "val" if variant in VAL_VARIANTS or language in VAL_LANGUAGES else "train"


def espeak_paths() -> tuple[Path, Path]:
    """``(library, data folder)`` of eSpeak NG: from the environment variables
    ``SYNESTHESIA_ESPEAK_LIBRARY`` / ``SYNESTHESIA_ESPEAK_DATA`` if set, else from the PyPI
    package ``espeakng-loader``. Raises :class:`EspeakNotFoundError` saying what is missing."""
    hint = "install it with `pip install espeakng-loader` (it ships libespeak-ng and its voices)"
    lib = os.environ.get("SYNESTHESIA_ESPEAK_LIBRARY")
    data = os.environ.get("SYNESTHESIA_ESPEAK_DATA")
    if lib is None or data is None:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise EspeakNotFoundError(
                f"the eSpeak NG library is missing (no Python package espeakng_loader): {hint}"
            ) from exc
        lib = lib or espeakng_loader.get_library_path()
        data = data or str(Path(espeakng_loader.__file__).parent / "espeak-ng-data")
    if not Path(lib).is_file():
        raise EspeakNotFoundError(f"the eSpeak NG library {lib} is missing: {hint}")
    if not (Path(data) / "phontab").is_file():
        raise EspeakNotFoundError(f"the eSpeak NG voice data {data} is missing: {hint}")
    return Path(lib), Path(data)


def espeak_available() -> bool:
    """Whether eSpeak NG can be found (see :func:`espeak_paths`)."""
    try:
        espeak_paths()
    except EspeakNotFoundError:
        return False
    return True


class _Espeak:
    """eSpeak NG in synchronous mode. The library keeps state between utterances (pitch
    flutter), so each utterance loads a fresh instance of a private copy of the library:
    the same text, voice and parameters always give the same samples."""

    _lock = threading.Lock()
    _private: dict[str, str] = {}

    def __init__(self) -> None:
        lib, data = espeak_paths()
        key = str(lib)
        with self._lock:
            if key not in self._private or not Path(self._private[key]).is_file():
                folder = tempfile.mkdtemp(prefix="synesthesia-espeak-")
                copy = Path(folder) / lib.name
                shutil.copyfile(lib, copy)
                atexit.register(shutil.rmtree, folder, True)
                self._private[key] = str(copy)
        self.library = self._private[key]
        self.data = str(data)

    def synth(
        self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, noise_seed: int = 0
    ) -> np.ndarray:
        """Samples (int16, 22,050 Hz) of ``text`` spoken by ``voice``. Some voices add noise
        drawn with the C library's ``rand()``; it is seeded with ``noise_seed`` first."""
        import _ctypes

        chunks: list[np.ndarray] = []

        def callback(wav, n, _events):  # noqa: ANN001 - ctypes callback
            if wav and n > 0:
                chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        c_callback = _CALLBACK(callback)
        with self._lock:
            lib = ctypes.CDLL(self.library, mode=getattr(os, "RTLD_LOCAL", 0))
            try:
                lib.espeak_Initialize.argtypes = [
                    ctypes.c_int,
                    ctypes.c_int,
                    ctypes.c_char_p,
                    ctypes.c_int,
                ]
                lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
                lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
                lib.espeak_Synth.argtypes = [
                    ctypes.c_char_p,
                    ctypes.c_size_t,
                    ctypes.c_uint,
                    ctypes.c_int,
                    ctypes.c_uint,
                    ctypes.c_uint,
                    ctypes.c_void_p,
                    ctypes.c_void_p,
                ]
                rate_hz = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data.encode(), 0)
                if rate_hz != ESPEAK_SAMPLE_RATE:
                    raise EspeakNotFoundError(
                        f"eSpeak NG failed to start with the voice data {self.data} (it "
                        f"returned {rate_hz}): reinstall it with `pip install espeakng-loader`"
                    )
                lib.espeak_SetSynthCallback(c_callback)
                if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                    raise InputError(
                        f"eSpeak NG has no voice {voice!r} (`synesthesia data voices` lists "
                        "the voices of the digit world)"
                    )
                for name, value in (
                    ("rate", rate),
                    ("pitch", pitch),
                    ("range", pitch_range),
                    ("volume", _VOLUME),
                ):
                    lib.espeak_SetParameter(_PARAM[name], int(value), 0)
                _libc().srand(ctypes.c_uint(noise_seed))
                encoded = text.encode("utf-8")
                err = lib.espeak_Synth(
                    encoded,
                    len(encoded) + 1,
                    0,
                    _POS_CHARACTER,
                    0,
                    _ESPEAK_CHARS_UTF8,
                    None,
                    None,
                )
                if err != 0:
                    raise RuntimeError(f"eSpeak NG failed to speak {text!r} (error {err})")
                lib.espeak_Terminate()
            finally:
                close = getattr(_ctypes, "dlclose", None) or _ctypes.FreeLibrary
                close(lib._handle)
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None)


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


def speak(
    text: str,
    voice: str = "en",
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
) -> torch.Tensor:
    """``text`` spoken by eSpeak NG: a float32 waveform in [-1, 1] at 22,050 Hz, untrimmed.

    ``voice`` is an eSpeak voice name, optionally with a variant (``"en-us+f3"``); ``rate`` in
    words per minute (80..450), ``pitch`` and ``pitch_range`` in eSpeak's 0..100 units.
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"text must hold something to say, got {short(text)}")
    if not 80 <= rate <= 450:
        raise InputError(f"rate must be 80..450 words per minute, got {rate}")
    for name, value in (("pitch", pitch), ("pitch_range", pitch_range)):
        if not 0 <= value <= 100:
            raise InputError(f"{name} must be 0..100, got {value}")
    if "\x00" in text or "\x00" in voice:
        raise InputError("text and voice must not contain NUL characters")
    samples = _Espeak().synth(text, voice, rate, pitch, pitch_range)
    return torch.from_numpy(samples.astype(np.float32) / 32768.0)


@dataclass(frozen=True)
class SynthesisConfig:
    """Ranges that each clip's settings are drawn from (uniformly), and the noise added."""

    rate: tuple[int, int] = (120, 260)  # words per minute (eSpeak default 175)
    pitch: tuple[int, int] = (20, 80)  # eSpeak 0..100 (default 50)
    pitch_range: tuple[int, int] = (20, 80)  # intonation range, eSpeak 0..100 (default 50)
    snr_db: tuple[float, float] = (10.0, 40.0)  # speech-to-noise power ratio of added noise
    noise_colors: tuple[str, ...] = ("white", "pink")
    peak: tuple[float, float] = (0.25, 0.9)  # peak amplitude after gain
    pad_s: tuple[float, float] = (0.0, 0.15)  # silence (with noise) added before and after
    trim_db: float = 40.0  # eSpeak's own leading/trailing silence below this is cut


def _noise(n: int, color: str, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if color == "white":
        return white
    if color == "pink":
        # 1/f power: scale the spectrum's amplitude by 1/sqrt(f)
        spec = np.fft.rfft(white)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        return np.fft.irfft(spec / np.sqrt(f), n)
    raise ValueError(f"noise color must be 'white' or 'pink', got {color!r}")


def trim_silence(
    x: np.ndarray, top_db: float = 40.0, frame_length: int = 512, hop: int = 128
) -> np.ndarray:
    """Cut leading and trailing frames whose RMS is more than ``top_db`` below the loudest
    frame: the rule of ``librosa.effects.trim``, with frames that start at the signal (not
    centred on it) and without librosa's numba start-up cost."""
    x = np.asarray(x)
    if x.size < frame_length:
        return x
    n_frames = 1 + (x.size - frame_length) // hop
    frames = np.lib.stride_tricks.sliding_window_view(x, frame_length)[::hop][:n_frames]
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    if rms.max() <= 0:
        return x[:0]
    loud = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-12) / rms.max()) > -top_db)
    start = loud[0] * hop
    end = min(x.size, loud[-1] * hop + frame_length)
    return x[start:end]


def _render(
    engine: _Espeak, word: str, voice: str, config: SynthesisConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, dict]:
    """One clip: speak, trim, pad, add noise at a random SNR, scale; returns (waveform, meta)."""
    rate = int(rng.integers(config.rate[0], config.rate[1] + 1))
    pitch = int(rng.integers(config.pitch[0], config.pitch[1] + 1))
    prange = int(rng.integers(config.pitch_range[0], config.pitch_range[1] + 1))
    snr = float(rng.uniform(*config.snr_db))
    color = str(config.noise_colors[int(rng.integers(len(config.noise_colors)))])
    peak = float(rng.uniform(*config.peak))
    pads = [int(rng.uniform(*config.pad_s) * ESPEAK_SAMPLE_RATE) for _ in range(2)]
    noise_seed = int(rng.integers(2**31))
    samples = engine.synth(word, voice, rate, pitch, prange, noise_seed).astype(np.float64)
    samples /= 32768.0
    if samples.size == 0 or not np.any(samples):
        raise RuntimeError(f"eSpeak NG produced no sound for {word!r} with voice {voice!r}")
    speech = trim_silence(samples, config.trim_db)
    x = np.concatenate([np.zeros(pads[0]), speech, np.zeros(pads[1])])
    noise = _noise(len(x), color, rng)
    # SNR in dB = 10 log10(P_speech / P_noise), powers as mean squares over the speech part
    p_speech = np.mean(speech**2)
    noise *= np.sqrt(p_speech / (np.mean(noise**2) * 10 ** (snr / 10)))
    x = x + noise
    x *= peak / np.max(np.abs(x))
    meta = {
        "voice": voice,
        "pitch": pitch,
        "rate": rate,
        "pitch_range": prange,
        "noise_snr_db": snr,
        "noise_color": color,
        "peak": peak,
        "word": word,
        "split": voice_split(voice),
    }
    return torch.from_numpy(x.astype(np.float32)), meta


def _cache_folder(cache_dir: str | Path | None, kind: str, key: dict) -> Path:
    import hashlib
    from importlib.metadata import PackageNotFoundError, version

    try:
        key = {**key, "espeakng_loader": version("espeakng-loader")}
    except PackageNotFoundError:
        pass
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "speech" / f"{kind}-{digest}"


def default_cache_dir() -> Path:
    """``$SYNESTHESIA_CACHE`` or ``~/.cache/synesthesia``: where built data is kept."""
    return Path(os.environ.get("SYNESTHESIA_CACHE") or Path.home() / ".cache" / "synesthesia")


def check_speech_cache(cache_dir: str | Path | None = None, what: str = "--cache-dir") -> Path:
    """Check, before any work, that the speech cache can be written: ``cache_dir`` (named as
    ``what``), else the user cache (``$SYNESTHESIA_CACHE`` or ``~/.cache/synesthesia``, see
    :func:`synesthesia.io.user_cache_dir`); returns the folder.

    Raises :class:`~synesthesia.errors.InputError` naming the path as the user gave it (a
    file, a folder under a file, a read-only place).
    """
    from synesthesia.io import user_cache_dir

    if cache_dir is not None:
        return check_output_dir(cache_dir, what)
    return user_cache_dir()


def _synthesize(
    words: Sequence[str],
    labels: np.ndarray,
    voices: Sequence[str],
    seed: int,
    config: SynthesisConfig,
    name: str,
    progress: bool,
) -> SpeechSet:
    from tqdm.auto import tqdm

    engine = _Espeak()
    waveforms, metas, speakers = [], [], []
    voice_rng = np.random.default_rng([seed, 1])
    voice_idx = voice_rng.integers(len(voices), size=len(labels))
    for i in tqdm(range(len(labels)), desc=f"synthesising {name}", disable=not progress):
        voice = voices[int(voice_idx[i])]
        rng = np.random.default_rng([seed, 2, i])
        w, meta = _render(engine, words[int(labels[i])], voice, config, rng)
        waveforms.append(w)
        metas.append(meta)
        speakers.append(voice)
    return SpeechSet(
        waveforms,
        ESPEAK_SAMPLE_RATE,
        torch.from_numpy(labels.astype(np.int64)),
        speakers,
        metas,
        tuple(words),
        name,
    )


def _cached(folder: Path | None, build) -> SpeechSet:  # noqa: ANN001
    from synesthesia.io import atomic_folder

    if folder is not None and (folder / "speech.json").is_file():
        return SpeechSet.load(folder)
    speech = build()
    if folder is not None:
        with atomic_folder(folder) as tmp:
            speech.save(tmp)
    return speech


def _check_voices(voices: Sequence[str] | None) -> tuple[str, ...]:
    voices = tuple(ESPEAK_VOICES if voices is None else voices)
    if not voices:
        raise ValueError("voices must name at least one eSpeak voice")
    return voices


def synthesize_digits(
    n_clips: int = 2000,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    voices: Sequence[str] | None = None,
    config: SynthesisConfig = SynthesisConfig(),
    cache: bool = True,
) -> SpeechSet:
    """Spoken digits "zero".."nine" synthesised by eSpeak NG, 22,050 Hz, labels 0..9.

    Labels are balanced (``n_clips // 10`` of each, the rest spread), in a random order. Each
    clip draws a voice from ``voices`` (default :data:`ESPEAK_VOICES`), a rate, pitch, pitch
    range, noise colour and SNR, peak level and silence padding from ``config``; the draws are
    stored in ``meta`` (``meta[i]["split"]`` says whether the voice is held out). The same
    arguments always give the same samples. The set is built once and kept under
    ``cache_dir`` (default :func:`default_cache_dir`; ``cache=False`` builds without caching).
    A missing eSpeak NG raises :class:`EspeakNotFoundError` saying how to get it.
    """
    from synesthesia.data.captions import NUMBER_WORDS

    if n_clips < 1:
        raise ValueError(f"n_clips must be >= 1, got {n_clips}")
    voices = _check_voices(voices)
    key = {
        "n": n_clips,
        "seed": seed,
        "voices": voices,
        "config": asdict(config),
        "version": SYNTHESIS_VERSION,
    }
    folder = _cache_folder(cache_dir, f"digits-{n_clips}-seed{seed}", key) if cache else None
    labels = np.random.default_rng([seed, 0]).permutation(np.arange(n_clips) % 10)
    return _cached(
        folder,
        lambda: _synthesize(NUMBER_WORDS, labels, voices, seed, config, "espeak-digits", progress),
    )


def synthesize_syllables(
    syllables: Sequence[str] = ("ba", "da", "ga"),
    n_per: int = 100,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    voices: Sequence[str] | None = None,
    config: SynthesisConfig = SynthesisConfig(),
    cache: bool = True,
) -> SpeechSet:
    """Spoken syllables (default "ba", "da", "ga": /b/, /d/, /g/ before the same vowel, as in
    McGurk experiments), ``n_per`` each, synthesised and cached as :func:`synthesize_digits`
    does; labels index ``syllables``."""
    if n_per < 1:
        raise ValueError(f"n_per must be >= 1, got {n_per}")
    if not syllables or any(not s.strip() for s in syllables):
        raise ValueError(f"syllables must be non-empty strings, got {syllables!r}")
    voices = _check_voices(voices)
    n = n_per * len(syllables)
    key = {
        "syllables": list(syllables),
        "n_per": n_per,
        "seed": seed,
        "voices": voices,
        "config": asdict(config),
        "version": SYNTHESIS_VERSION,
    }
    folder = _cache_folder(cache_dir, f"syllables-{n}-seed{seed}", key) if cache else None
    labels = np.random.default_rng([seed, 0]).permutation(np.arange(n) % len(syllables))
    return _cached(
        folder,
        lambda: _synthesize(
            tuple(syllables), labels, voices, seed, config, "espeak-syllables", progress
        ),
    )
