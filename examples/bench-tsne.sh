#!/usr/bin/env bash
# The t-SNE part of the benchmark suite: heal tsne vs scikit-learn's TSNE and openTSNE on 5,000 x
# 384 minilm-l6 [CLS] vectors of AG News. Options as examples/bench.sh's, e.g. --tsne-points 2000.
exec bash "$(dirname "${BASH_SOURCE[0]}")/bench.sh" --only tsne "$@"
