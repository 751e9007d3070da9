"""Benchmark: CLIP-style joint embeddings of the digit world, trained for a few minutes on CPU.

Two runs, one after the other (never two at once), each trained within ``--minutes`` (the step
time is measured and the schedule planned to fit, as ``synesthesia train clip`` does) and then
scored by :func:`synesthesia.multimodal.evaluate.evaluate_clip` on held-out data:

- A: images + captions + synthetic speech only (FSDD is never seen: every FSDD speaker is
  scored as held out);
- B: the same, plus the recordings of the FSDD speakers ``--fsdd-train`` in training (the
  others are held out and scored).

Side by side, in the same process: zero-shot accuracy against a linear probe on the frozen
embeddings and logistic regression on raw pixels. The JSON (default ``benchmarks/out/clip.json``)
holds the machine record (CPU model, torch CPU capability, native bf16, threads, precision) and,
for each run, process CPU time / wall time of training (data, probe and steps) and of scoring:
a ratio well below the thread count means the cores were shared.

    python benchmarks/bench_clip.py --minutes 5 --fsdd ../shared/datasets/fsdd
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path


def run(name: str, args: argparse.Namespace, fsdd_speakers: tuple[str, ...]) -> dict:
    import torch

    from synesthesia.multimodal.evaluate import evaluate_clip, format_table
    from synesthesia.multimodal.train import ClipTrainOptions, train_clip
    from synesthesia.training import CpuWallClock, read_run_state

    out = Path(args.work) / name
    if out.exists():
        shutil.rmtree(out)
    options = ClipTrainOptions(
        out_dir=str(out),
        minutes=args.minutes,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        seed=args.seed,
        precision=args.precision,
        fsdd_folder=args.fsdd,
        fsdd_speakers=fsdd_speakers,
        progress=not args.no_progress,
    )
    with CpuWallClock() as train_clock:
        model, result, world = train_clip(options)
    state = read_run_state(out)
    train_info = {
        "steps": result.step,
        "planned_steps": int(state["config"]["max_steps"]),
        "stopped": result.stopped,
        "precision": state["mixed_precision"],
        "threads": torch.get_num_threads(),
        "train_loop_wall_s": result.wall_s,
        "items_per_s": result.items_per_s,
        "wall_s_incl_data_and_probe": train_clock.wall_s,
        "cpu_s_incl_data_and_probe": train_clock.cpu_s,
        "cpu_per_wall": train_clock.ratio,
        "fsdd_train_speakers": list(fsdd_speakers),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    plot = Path(args.out).with_name(f"{Path(args.out).stem}_joint_space_{name}.png")
    with CpuWallClock() as eval_clock:
        scores = evaluate_clip(model, world, plot_path=plot)
    train_info.update(
        eval_wall_s=eval_clock.wall_s,
        eval_cpu_s=eval_clock.cpu_s,
        eval_cpu_per_wall=eval_clock.ratio,
    )
    print(f"\n=== run {name}: {json.dumps(train_info)}")
    print(format_table(scores))
    return {"train": train_info, "scores": scores}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=5.0, help="training budget per run")
    p.add_argument("--max-steps", type=int, default=None, help="fixed schedule length")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    p.add_argument("--fsdd", default="../shared/datasets/fsdd", help="FSDD recordings folder")
    p.add_argument(
        "--fsdd-train",
        default="george,jackson,yweweler",
        help="FSDD speakers added to training in run B (the others are held out)",
    )
    p.add_argument("--runs", default="A,B", help="which runs: A, B or A,B")
    p.add_argument("--out", default="benchmarks/out/clip.json", help="the JSON written")
    p.add_argument("--work", default="runs/bench_clip", help="run folders (checkpoints)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args()

    from synesthesia.training import CpuWallClock, machine_record, precision_report

    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    results: dict = {}
    with CpuWallClock() as clock:
        if "A" in runs:
            results["A_synthetic_speech_only"] = run("A", args, ())
        if "B" in runs:
            speakers = tuple(s.strip() for s in args.fsdd_train.split(",") if s.strip())
            results["B_with_fsdd_speakers"] = run("B", args, speakers)
    precisions = sorted({r["train"]["precision"] for r in results.values()})
    record = {
        "command": " ".join(["python", *sys.argv]),
        "started": started,
        "machine": machine_record(
            precision=",".join(precisions),
            precision_auto=precision_report("cpu"),
            cpu_s=clock.cpu_s,
            wall_s=clock.wall_s,
            cpu_wall=clock.ratio,
        ),
        "runs": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
