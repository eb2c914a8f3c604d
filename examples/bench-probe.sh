#!/usr/bin/env bash
# The linear-probe part of the benchmark suite (paper Table 4 setting): heal with cached features
# vs heal re-encoding every epoch vs HF re-encoding every epoch. Options as examples/bench.sh's,
# e.g. --probe-examples 2000 --probe-eval-examples 1000.
exec bash "$(dirname "${BASH_SOURCE[0]}")/bench.sh" --only probe "$@"
