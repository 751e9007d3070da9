"""Digit-world data: build cost, determinism, what the speech looks like, and baselines.

Measures (process CPU time / wall time recorded for each timed step; a ratio well below the
thread count means the machine was shared):

1. eSpeak synthesis of ``--n-speech`` spoken digits, twice from scratch: time, and whether the
   two builds are identical sample for sample; loading the cached set.
2. Loading the Free Spoken Digit Dataset (``--fsdd``).
3. Log-mel features: ours (batched torch.stft + librosa filterbank) against
   librosa.feature.melspectrogram clip by clip, interleaved, same clips: time and largest
   difference.
4. How separable the digits are in the features: a logistic regression on time-pooled
   log-mels (mean and standard deviation per band, 80 numbers per clip), trained on the
   synthetic train voices and tested on held-out voices and on real FSDD speech; and trained
   on synthetic + three FSDD speakers, tested on the held-out FSDD speaker. A baseline the
   joint-embedding models should beat, not a target.
5. The caption attribute words over the built-in digits.

Writes ``benchmarks/out/data.json`` with the machine record (CPU model, torch CPU capability,
native bf16, threads) and the CPU / wall time of each step and of the whole run.

Run: ``.venv/bin/python benchmarks/bench_data.py --fsdd ../shared/datasets/fsdd``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from synesthesia.training.machine import CpuWallClock, machine_record


class Timer(CpuWallClock):
    """Process CPU time and wall time of a block, as a JSON row."""

    def row(self) -> dict[str, float]:
        return {
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "cpu_per_wall": round(self.ratio, 2),
        }


def pooled(features: torch.Tensor) -> np.ndarray:
    """Mean and standard deviation over time of each mel band (N x 2 n_mels)."""
    return torch.cat([features.mean(-1), features.std(-1)], dim=1).numpy()


def probe(train_x, train_y, tests: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    clf.fit(train_x, train_y)
    return {name: round(float(clf.score(x, y)), 4) for name, (x, y) in tests.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-speech", type=int, default=2000)
    parser.add_argument("--fsdd", type=Path, default=Path("../shared/datasets/fsdd"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/data.json"))
    parser.add_argument("--repeats", type=int, default=3, help="log-mel timing repeats")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    with CpuWallClock() as whole:
        results = measure(args)
    record = {
        "command": " ".join(["python", *sys.argv]),
        "started": started,
        "machine": machine_record(
            precision="no", cpu_s=whole.cpu_s, wall_s=whole.wall_s, cpu_wall=whole.ratio
        ),
        **results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print("wrote", args.out)


def measure(args: argparse.Namespace) -> dict:
    """Every measurement of the module docstring, as a JSON-ready dict."""
    from synesthesia.data.audio import LogMelConfig, fix_length, log_mel
    from synesthesia.data.captions import measure_attributes
    from synesthesia.data.fsdd import load_fsdd
    from synesthesia.data.images import load_mnist5k
    from synesthesia.data.speech import synthesize_digits, voice_split

    results: dict = {}
    cache = Path(tempfile.mkdtemp(prefix="bench-data-"))

    # 1. synthesis
    with Timer() as t1:
        a = synthesize_digits(args.n_speech, seed=0, cache_dir=cache, progress=False)
    with Timer() as t2:
        b = synthesize_digits(args.n_speech, seed=0, cache=False, progress=False)
    with Timer() as t3:
        c = synthesize_digits(args.n_speech, seed=0, cache_dir=cache, progress=False)
    identical = a.meta == b.meta and all(
        torch.equal(x, y) for x, y in zip(a.waveforms, b.waveforms)
    )
    cached_same = all(torch.equal(x, y) for x, y in zip(a.waveforms, c.waveforms))
    d = a.durations()
    results["synthesis"] = {
        "clips": len(a),
        "first_build": t1.row(),
        "second_build": t2.row(),
        "cached_load": t3.row(),
        "builds_identical": identical,
        "cache_identical": cached_same,
        "duration_s": {
            "min": round(float(d.min()), 3),
            "median": round(float(np.median(d)), 3),
            "max": round(float(d.max()), 3),
        },
        "voices": len(set(a.speakers)),
        "clips_per_split": dict(Counter(m["split"] for m in a.meta)),
        "voices_per_split": dict(Counter(voice_split(v) for v in set(a.speakers))),
    }
    print(json.dumps(results["synthesis"], indent=1))

    # 2. FSDD
    fsdd = None
    if args.fsdd.is_dir():
        with Timer() as t:
            fsdd = load_fsdd(args.fsdd)
        results["fsdd_load"] = {"clips": len(fsdd), **t.row()}
        print("fsdd", results["fsdd_load"])

    # 3. log-mel: ours (batched) vs librosa (clip by clip), interleaved
    import librosa

    cfg = LogMelConfig()
    clips16 = [w.numpy().astype(np.float32) for w in a.waveforms[:500]]
    from synesthesia.data.audio import resample

    clips16 = [resample(w, a.sample_rate, cfg.sample_rate).numpy() for w in clips16]

    def ours():
        return log_mel([torch.from_numpy(w) for w in clips16], cfg.sample_rate, cfg)

    def theirs():
        return [
            np.log(
                librosa.feature.melspectrogram(
                    y=w,
                    sr=cfg.sample_rate,
                    n_fft=cfg.n_fft,
                    hop_length=cfg.hop,
                    win_length=cfg.win_length,
                    n_mels=cfg.n_mels,
                    fmin=cfg.f_min,
                    fmax=cfg.f_max,
                )
                + cfg.eps
            )
            for w in clips16
        ]

    theirs()  # warm-up (numba, filterbank)
    ours()
    rows: dict[str, list] = {"ours": [], "librosa": []}
    for _ in range(args.repeats):
        for name, fn in (("ours", ours), ("librosa", theirs)):
            with Timer() as t:
                out = fn()
            rows[name].append((t.wall_s, t.cpu_s, out))
    diff = max(
        float(np.abs(o.numpy() - r).max())
        for o, r in zip(rows["ours"][0][2], rows["librosa"][0][2])
    )
    results["log_mel_500_clips"] = {
        name: {
            "median_wall_s": round(statistics.median(r[0] for r in v), 3),
            "median_cpu_s": round(statistics.median(r[1] for r in v), 3),
        }
        for name, v in rows.items()
    }
    results["log_mel_500_clips"]["max_abs_diff"] = diff
    results["log_mel_500_clips"]["speedup_wall"] = round(
        results["log_mel_500_clips"]["librosa"]["median_wall_s"]
        / results["log_mel_500_clips"]["ours"]["median_wall_s"],
        2,
    )
    print("log-mel", results["log_mel_500_clips"])

    # 4. linear probe on pooled log-mels
    def feats(ds):
        f = log_mel(ds.waveforms, ds.sample_rate, cfg)
        return pooled(torch.stack([fix_length(x, 100, cfg.floor, align="center") for x in f]))

    split = np.array([m["split"] for m in a.meta])
    xa, ya = feats(a), a.labels.numpy()
    tests = {"synthetic_val_voices": (xa[split == "val"], ya[split == "val"])}
    if fsdd is not None:
        xf, yf = feats(fsdd), fsdd.labels.numpy()
        held = np.array([s == "nicolas" for s in fsdd.speakers])
        tests["fsdd_all"] = (xf, yf)
        tests["fsdd_nicolas"] = (xf[held], yf[held])
    results["probe_synthetic_only"] = probe(xa[split == "train"], ya[split == "train"], tests)
    print("probe, trained on synthetic train voices:", results["probe_synthetic_only"])
    if fsdd is not None:
        trx = np.concatenate([xa[split == "train"], xf[~held]])
        try_ = np.concatenate([ya[split == "train"], yf[~held]])
        results["probe_synthetic_plus_3_fsdd_speakers"] = probe(
            trx, try_, {"fsdd_nicolas": (xf[held], yf[held]), **tests}
        )
        print("probe, + 3 FSDD speakers:", results["probe_synthetic_plus_3_fsdd_speakers"])

    # 5. attribute words
    imgs = load_mnist5k()
    with Timer() as t:
        attrs = measure_attributes(imgs.images, imgs.labels)
    results["attributes"] = {
        "measure_5000": t.row(),
        **{k: dict(Counter(attrs[k])) for k in ("thickness_word", "slant_word", "size_word")},
    }
    print("attributes", results["attributes"])
    return results


if __name__ == "__main__":
    main()
