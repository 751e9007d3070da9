#!/usr/bin/env bash
# GPU check (issue 12): run on a machine with one or more CUDA GPUs, from the repository root,
# after `pip install -e .` with a CUDA build of torch. It was NOT run where the project is
# developed (no GPU there); docs/scale.md says what was and was not measured.
#
#   bash benchmarks/gpu_check.sh [STEPS]        # default 200 steps per run
#
# 1. what the GPU offers (bf16, "auto" precision) 2. one-GPU throughput of `train image`,
# eager and --compile 3. with 2+ GPUs, torchrun over 2 GPUs 4. the equivalence check of
# tests/training/ddp_worker.py on the GPU(s): 2 ranks vs 1 with the same global batch.
# Everything lands in ${OUT:-gpu_check_out}/ (logs, metrics CSVs, summary.txt).
set -euo pipefail
STEPS="${1:-200}"
OUT="${OUT:-gpu_check_out}"
PY="${PYTHON:-python}"
mkdir -p "$OUT"
GPUS=$($PY -c "import torch; print(torch.cuda.device_count())")
if [ "$GPUS" -lt 1 ]; then
  echo "gpu_check: no CUDA GPU visible to torch (torch.cuda.device_count() == 0)" >&2
  exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpus.csv"
$PY - <<'EOF' | tee "$OUT/precision.json"
import json, torch
from synesthesia.training import precision_report
print(json.dumps({"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                  "precision": precision_report("cuda")}, indent=2))
EOF

rate() {  # median items/s of a run's metrics.csv rows after the first (warm-up)
  $PY - "$1" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/metrics.csv")))[1:]
print(statistics.median(float(r["items_per_s"]) for r in rows) if rows else "nan")
EOF
}
train() {  # train NAME "EXTRA OPTIONS" LAUNCHER...
  local name="$1" extra="$2"; shift 2
  # shellcheck disable=SC2086
  "$@" train image --max-steps "$STEPS" --batch-size 256 --precision auto $extra \
    --out "$OUT/$name" --no-progress >"$OUT/$name.log" 2>&1
  echo "$name: $(rate "$OUT/$name") images/s" | tee -a "$OUT/summary.txt"
}
train one_gpu_eager "" "$PY" -m synesthesia
train one_gpu_compile "--compile" "$PY" -m synesthesia
if [ "$GPUS" -ge 2 ]; then
  train two_gpus "" "$PY" -m torch.distributed.run --nproc_per_node 2 -m synesthesia
  # equivalence: 2 GPUs vs 1 on the same global batch (float32; TF32 convolutions allowed
  # by cuDNN make this agree to about 1e-3, not the CPU's 1e-5)
  $PY tests/training/ddp_worker.py train "$OUT/eq_one"
  $PY -m torch.distributed.run --nproc_per_node 2 tests/training/ddp_worker.py train "$OUT/eq_two"
  $PY - "$OUT" <<'EOF'
import sys, torch
from safetensors.torch import load_file
a = load_file(f"{sys.argv[1]}/eq_one/train-rank0.safetensors")
b = load_file(f"{sys.argv[1]}/eq_two/train-rank0.safetensors")
worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
print(f"equivalence 2 GPUs vs 1: largest weight difference {worst:.2e}")
EOF
else
  echo "one GPU: the 2-GPU throughput and equivalence checks are skipped"
fi
echo "gpu_check: done; results in $OUT/"
