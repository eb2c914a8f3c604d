#!/usr/bin/env bash
# The benchmark suite: heal and its Python peers (HF transformers on PyTorch, scikit-learn,
# openTSNE) on the same machine, data and settings, one after the other; prints a table of
# ratios and writes runs/bench/results.{json,md}. About an hour on 2 cores for everything.
#
#   bash examples/bench.sh                      # everything
#   bash examples/bench.sh --only finetune      # parts: matmul,finetune,inference,probe,tsne,
#                                               #   tsne-scale,finetune-scale,cell-cost (agreement: on request)
#   bash examples/bench.sh --help               # sizes and other options
# Needs the paper's datasets in ../shared/datasets (SST-2, AG News). openTSNE is installed
# into the virtual environment on first use (a benchmark-only dependency).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash .ci/setup >/dev/null
.venv/bin/python -c "import openTSNE" 2>/dev/null || .venv/bin/python -m pip install -q openTSNE==1.0.4
cargo build --release --quiet --bin heal --example inference-passes
heal=$(cargo metadata --format-version 1 --no-deps | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')/release/heal
exec .venv/bin/python examples/bench/suite.py --heal "$heal" "$@"
