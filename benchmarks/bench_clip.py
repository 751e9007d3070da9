"""Benchmark: CLIP-style joint embeddings of the digit world, trained for a few minutes on CPU.

Two runs, each trained within ``--minutes`` and then scored by
:func:`synesthesia.multimodal.evaluate.evaluate_clip` on held-out data:

- A: images + captions + synthetic speech only (FSDD is never seen: every FSDD speaker is
  scored as held out);
- B: the same, plus the recordings of the FSDD speakers ``--fsdd-train`` in training (the
  others are held out and scored).

Side by side, in the same process: zero-shot accuracy against a linear probe on the frozen
embeddings and logistic regression on raw pixels. For each run it records the wall time, the
process CPU time and their ratio (well below the thread count means the cores were shared).

    python benchmarks/bench_clip.py --minutes 5 --fsdd ../shared/datasets/fsdd --out runs/bench_clip
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def run(name: str, args: argparse.Namespace, fsdd_speakers: tuple[str, ...]) -> dict:
    import torch

    from synesthesia.multimodal.evaluate import evaluate_clip, format_table
    from synesthesia.multimodal.train import ClipTrainOptions, train_clip

    out = Path(args.out) / name
    options = ClipTrainOptions(
        out_dir=str(out),
        minutes=args.minutes,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        seed=args.seed,
        fsdd_folder=args.fsdd,
        fsdd_speakers=fsdd_speakers,
        progress=not args.no_progress,
    )
    wall0, cpu0 = time.perf_counter(), time.process_time()
    model, result, world = train_clip(options)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    train_info = {
        "steps": result.step,
        "stopped": result.stopped,
        "train_wall_s": result.wall_s,
        "wall_s_incl_data_and_timing": wall,
        "cpu_s_incl_data_and_timing": cpu,
        "cpu_per_wall": cpu / wall,
        "threads": torch.get_num_threads(),
        "items_per_s": result.items_per_s,
        "fsdd_train_speakers": list(fsdd_speakers),
    }
    eval0 = time.perf_counter()
    scores = evaluate_clip(model, world, plot_path=out / "joint_space.png")
    train_info["eval_wall_s"] = time.perf_counter() - eval0
    print(f"\n=== run {name}: {json.dumps(train_info)}")
    print(format_table(scores))
    return {"train": train_info, "scores": scores}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=5.0, help="training budget per run")
    p.add_argument("--max-steps", type=int, default=None, help="fixed schedule length")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fsdd", default="../shared/datasets/fsdd", help="FSDD recordings folder")
    p.add_argument(
        "--fsdd-train",
        default="george,jackson,yweweler",
        help="FSDD speakers added to training in run B (the others are held out)",
    )
    p.add_argument("--runs", default="A,B", help="which runs: A, B or A,B")
    p.add_argument("--out", default="runs/bench_clip")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args()
    results = {}
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    if "A" in runs:
        results["A_synthetic_speech_only"] = run("A", args, ())
    if "B" in runs:
        speakers = tuple(s.strip() for s in args.fsdd_train.split(",") if s.strip())
        results["B_with_fsdd_speakers"] = run("B", args, speakers)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
