"""Digit-world data commands: ``data speech``, ``data say``, ``data captions``, ``data voices``.

Heavy modules are imported inside the command functions so that ``--help`` stays fast. Output
paths (the speech cache, the WAV file) are checked before any synthesis.
"""

from __future__ import annotations

import argparse
import json

from synesthesia.commands import CommandError
from synesthesia.commands._shared import positive_int, seed_int

#: Largest ``data speech --n-clips`` (per syllable with --syllables): 100,000 clips of about
#: 0.5 s at 22,050 Hz are 4.4 GB of float32 (and about 35 minutes of synthesis).
MAX_CLIPS = 100_000
#: Longest ``data say`` text (about 6 minutes of speech at 175 words per minute).
MAX_SAY_CHARACTERS = 5_000
#: Most captions per image that ``data captions --per-image`` prints.
MAX_PER_IMAGE = 100


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data`` and its sub-commands."""
    data = subparsers.add_parser("data", help="build and inspect the digit world's data")
    sub = data.add_subparsers(dest="data_command", metavar="WHAT", required=True)

    speech = sub.add_parser(
        "speech",
        help="synthesise spoken digits (or syllables) with eSpeak NG and cache them",
        description="Build the synthetic speech set once (later builds load the cache) and "
        "print a summary as JSON.",
    )
    speech.add_argument("--n-clips", type=positive_int, default=2000, help="digits (2000)")
    speech.add_argument("--seed", type=seed_int, default=0)
    speech.add_argument(
        "--cache-dir", default=None, help="default $SYNESTHESIA_CACHE or ~/.cache/synesthesia"
    )
    speech.add_argument(
        "--syllables",
        default=None,
        help="comma-separated syllables (e.g. ba,da,ga) instead of digits; --n-clips per one",
    )
    speech.add_argument("--no-progress", action="store_true")
    speech.set_defaults(func=_speech)

    say = sub.add_parser("say", help="speak a text with eSpeak NG into a WAV file (22,050 Hz)")
    say.add_argument("text")
    say.add_argument("--out", required=True, help="WAV file to write")
    say.add_argument("--voice", default="en", help="e.g. en, en-us+f1, en-gb-scotland+m2")
    say.add_argument("--rate", type=int, default=175, help="words per minute, 80..450")
    say.add_argument("--pitch", type=int, default=50, help="0..100")
    say.set_defaults(func=_say)

    caps = sub.add_parser("captions", help="print built-in digits with attributes and captions")
    caps.add_argument("--split", choices=("train", "val"), default="val")
    caps.add_argument("--n", type=positive_int, default=10, help="how many images")
    caps.add_argument("--per-image", type=positive_int, default=3)
    caps.add_argument("--seed", type=seed_int, default=0)
    caps.set_defaults(func=_captions)

    voices = sub.add_parser("voices", help="list the eSpeak voices and their split")
    voices.set_defaults(func=_voices)


def _speech(args: argparse.Namespace) -> int:
    import numpy as np

    from synesthesia.data.speech import check_speech_cache, synthesize_digits, synthesize_syllables
    from synesthesia.errors import check_count

    check_count(args.n_clips, "--n-clips", MAX_CLIPS, "clips")
    syllables = None
    if args.syllables is not None:
        syllables = tuple(s.strip() for s in args.syllables.split(",") if s.strip())
        if not syllables:
            raise CommandError("--syllables needs at least one syllable, e.g. ba,da,ga")
        check_count(args.n_clips * len(syllables), "--n-clips x syllables", MAX_CLIPS, "clips")
    cache = check_speech_cache(args.cache_dir, "--cache-dir")
    if syllables is not None:
        ds = synthesize_syllables(syllables, args.n_clips, args.seed, cache, not args.no_progress)
    else:
        ds = synthesize_digits(args.n_clips, args.seed, cache, not args.no_progress)
    d = ds.durations()
    splits = [m["split"] for m in ds.meta]
    print(
        json.dumps(
            {
                "clips": len(ds),
                "sample_rate": ds.sample_rate,
                "words": list(ds.words),
                "voices": len(set(ds.speakers)),
                "train_clips": splits.count("train"),
                "val_clips": splits.count("val"),
                "duration_s": [round(float(x), 3) for x in (d.min(), np.median(d), d.max())],
            }
        )
    )
    return 0


def _say(args: argparse.Namespace) -> int:
    import io

    import soundfile as sf

    from synesthesia.data.speech import ESPEAK_SAMPLE_RATE, speak
    from synesthesia.errors import check_output_file, short
    from synesthesia.io import atomic_write_bytes

    out = check_output_file(args.out, "--out", suffixes=(".wav",))
    if not args.text.strip():
        raise CommandError(f"TEXT must hold something to say, got {short(args.text)}")
    if len(args.text) > MAX_SAY_CHARACTERS:
        raise CommandError(
            f"TEXT: {len(args.text):,} characters; data say speaks at most "
            f"{MAX_SAY_CHARACTERS:,} at a time (split the text)"
        )
    if not 80 <= args.rate <= 450:
        raise CommandError(f"--rate must be 80..450 words per minute, got {short(args.rate)}")
    if not 0 <= args.pitch <= 100:
        raise CommandError(f"--pitch must be 0..100, got {short(args.pitch)}")
    wave = speak(args.text, args.voice, rate=args.rate, pitch=args.pitch)
    buffer = io.BytesIO()
    sf.write(buffer, wave.numpy(), ESPEAK_SAMPLE_RATE, subtype="PCM_16", format="WAV")
    atomic_write_bytes(out, buffer.getvalue())
    print(f"wrote {args.out} ({len(wave) / ESPEAK_SAMPLE_RATE:.2f} s)")
    return 0


def _captions(args: argparse.Namespace) -> int:
    import numpy as np

    from synesthesia.data.captions import captions_for, measure_attributes
    from synesthesia.data.images import mnist5k_splits
    from synesthesia.errors import short

    if args.per_image > MAX_PER_IMAGE:
        raise CommandError(
            f"--per-image {short(args.per_image, 30)}: at most {MAX_PER_IMAGE} captions per image "
            "(the templates repeat long before that)"
        )
    images = dict(zip(("train", "val"), mnist5k_splits()))[args.split]
    if args.n > len(images):
        raise CommandError(f"--n must be at most {len(images)} for the {args.split} split")
    pick = np.sort(np.random.default_rng(args.seed).choice(len(images), args.n, replace=False))
    subset = images.subset(pick)
    attrs = measure_attributes(subset.images, subset.labels)
    caps = captions_for(subset.labels, attrs, args.per_image, args.seed)
    for i, texts in enumerate(caps):
        print(
            f"#{int(pick[i])} label {int(subset.labels[i])}: thickness "
            f"{attrs['thickness'][i]:.2f} ({attrs['thickness_word'][i]}), slant "
            f"{attrs['slant_deg'][i]:+.1f} deg ({attrs['slant_word'][i]}), box "
            f"{attrs['width'][i]:.0f}x{attrs['height'][i]:.0f} ({attrs['size_word'][i] or '-'})"
        )
        for t in texts:
            print(f"    {t}")
    return 0


def _voices(args: argparse.Namespace) -> int:
    from synesthesia.data.speech import ESPEAK_VOICES, voice_split

    for v in ESPEAK_VOICES:
        print(f"{v}\t{voice_split(v)}")
    return 0
