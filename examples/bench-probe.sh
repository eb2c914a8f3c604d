#!/usr/bin/env bash
# Linear probe (paper Table 4): minilm-l6 with a frozen encoder, only the head trained, 10 epochs,
# once with cached features (encode every example once) and once re-encoding every epoch
# (what a plain PyTorch loop does). Prints both wall times and their ratio.
#
#   bash examples/bench-probe.sh [TRAIN] [EVAL]    # defaults: AG News from ../shared/datasets
#   N=2000 bash examples/bench-probe.sh            # training subset size (default 2000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
train=${1:-../shared/datasets/ag_news/train.jsonl.gz}
eval=${2:-../shared/datasets/ag_news/test.jsonl.gz}
n=${N:-2000}
cargo build --release --quiet
for cache in ${CACHE_MODES:-true false}; do
  target/release/heal finetune --model minilm-l6 --data "$train" --eval-data "$eval" \
    --max-train-examples "$n" --epochs 10 --train head --lr 1e-3 --device cpu \
    --feature-cache "$cache" --out "runs/bench-probe-cache-$cache" --overwrite >/dev/null
done
.venv/bin/python - <<'PY'
import json
rows = {}
for cache in ("true", "false"):
    run = f"runs/bench-probe-cache-{cache}"
    t = json.load(open(f"{run}/run.json"))["timings"]
    r = json.load(open(f"{run}/result.json"))
    # Training and evaluation time, feature encoding included (loading and tokenising are the
    # same for both and left out).
    rows[cache] = (t["train_seconds"] + t["eval_seconds"], r["best"]["f1_weighted"], r["confusion_matrix"])
fast, slow = rows["true"], rows["false"]
print(f"cached features : {fast[0]:8.1f} s  weighted F1 {fast[1]:.4f}")
print(f"re-encoding     : {slow[0]:8.1f} s  weighted F1 {slow[1]:.4f}")
print(f"speed-up        : {slow[0] / fast[0]:8.1f}x  same confusion matrix: {fast[2] == slow[2]}")
PY
