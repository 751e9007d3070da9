"""Scale-out on this machine (issue 12): training throughput with 1 and 2 CPU processes.

Each contestant is the real command under the real launcher, one thread per process:

    OMP_NUM_THREADS=1 torchrun --nproc_per_node P -m synesthesia train KIND \\
        --max-steps N --batch-size 64 --precision fp32 --out RUN --no-progress

for P = 1, 2 and KIND = image (the small U-Net) and clip (image + text towers), interleaved
(1, 2, 1, 2, ...). Throughput is the median ``items_per_s`` of the metrics CSV rows after
the first (warm-up); the global batch is the same 64 in both, split 32 + 32 over two ranks.
``--stage compile`` times ``--compile`` against eager in one process (torch.compile on a
CPU needs a C++ compiler; its first steps compile, so it reports steady-state rows only and
the compile time separately). Writes benchmarks/out/scale/<stage>.json with the machine
record and the launched processes' CPU time / wall time (children's rusage).

    python benchmarks/bench_scale.py --stage processes --steps 40 --rounds 2
    python benchmarks/bench_scale.py --stage compile --steps 40
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "scale"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def launch(kind: str, processes: int, steps: int, run: Path, extra: list[str]) -> dict:
    """One launched training run; its steady throughput, wall and CPU seconds."""
    shutil.rmtree(run, ignore_errors=True)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
    cmd = [*launcher, "-m", "synesthesia", "train", kind, "--max-steps", str(steps)]
    cmd += ["--batch-size", "64", "--precision", "fp32", "--out", str(run), "--no-progress"]
    if kind == "clip":
        cmd += ["--modalities", "image,text", "--no-eval"]
    cmd += extra
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cpu0, wall0 = _children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    wall, cpu = time.perf_counter() - wall0, _children_cpu() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    with open(run / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rates = [float(r["items_per_s"]) for r in rows[1:] if r.get("items_per_s")]
    return {
        "processes": processes,
        "items_per_s": statistics.median(rates) if rates else None,
        "rows": len(rows),
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_per_wall": cpu / wall if wall > 0 else None,
        "command": " ".join(cmd[1:]),
    }


def stage_processes(args) -> dict:
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            runs: dict[int, list] = {1: [], 2: []}
            for _ in range(args.rounds):
                for processes in (1, 2):  # interleaved
                    run = launch(kind, processes, args.steps, Path(tmp) / kind, [])
                    runs[processes].append(run)
            best = {p: max(r["items_per_s"] for r in rs) for p, rs in runs.items()}
            results[kind] = {
                "runs": runs,
                "items_per_s": best,
                "speedup_2_vs_1": best[2] / best[1],
            }
    return {"kinds": results, "steps": args.steps, "global_batch": 64, "threads_per_process": 1}


def stage_compile(args) -> dict:
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, extra in (("eager", []), ("compile", ["--compile"]), ("eager_again", [])):
            results[label] = launch("image", 1, args.steps, Path(tmp) / label, extra)
    results["speedup"] = results["compile"]["items_per_s"] / max(
        results["eager"]["items_per_s"], results["eager_again"]["items_per_s"]
    )
    return {"runs": results, "steps": args.steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=("processes", "compile"), default="processes")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--kinds", nargs="+", default=["image", "clip"])
    parser.add_argument("--out-dir", type=Path, default=OUT)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT.parent / "src"))
    from synesthesia.training.machine import machine_record

    result = {"processes": stage_processes, "compile": stage_compile}[args.stage](args)
    result["machine"] = machine_record(precision="no", threads_per_process=1)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"{args.stage}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
