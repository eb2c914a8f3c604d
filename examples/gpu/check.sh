#!/usr/bin/env bash
# One command that proves heal's CUDA path on a GPU node whose PyTorch it was built for, and
# writes report.md, report.json and check.log into --out (examples/gpu/README.md).
#
#   bash examples/gpu/check.sh --out "$OUT"                          on the node (cuda)
#   bash examples/gpu/check.sh --device cpu --torch-venv ~/.cache/heal/torch-2.11.0 --out DIR
#                                                                     the CPU rehearsal
# Options:
#   --out DIR         where the report goes [default: $OUT, else runs/gpu-check]
#   --device D        cuda (default) or cpu; on cpu every size is scaled down
#   --torch-venv DIR  the node's PyTorch environment [default: /opt/torch/.venv]: its python
#                     runs the HF side, and its torch/lib is put first on LD_LIBRARY_PATH
#                     for heal (which also has the node's path baked in)
#   --dist DIR        the built binaries (heal, gpu-probe) [default: .gpu-dist, made by
#                     examples/gpu/build.sh]
#   --budget S        start no new part after S seconds, and stop every command S + 60 s
#                     after the start [default: 360]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

venv=/opt/torch/.venv
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --torch-venv) venv=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done

python=$venv/bin/python3
[ -x "$python" ] || python=$venv/bin/python
[ -x "$python" ] || { echo "check.sh: no python in $venv (give --torch-venv)" >&2; exit 2; }
torch_lib=$(ls -d "$venv"/lib/python3*/site-packages/torch/lib 2>/dev/null | head -n1 || true)
[ -n "$torch_lib" ] || { echo "check.sh: no torch in $venv" >&2; exit 2; }

export LD_LIBRARY_PATH=$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
exec "$python" examples/gpu/check.py --torch-venv "$venv" "${args[@]}"
