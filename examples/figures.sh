#!/usr/bin/env bash
# Regenerates the analysis figures in figures/ from the embedded defaults (minilm-l6 fine-tuned
# on bbc-news, 3 epochs, CPU):
#   1. four runs: 0% (clean), top 25%, bottom 25% and 100% of the layers re-initialised, each
#      dumping [CLS] embeddings (pretrained, corrupted, best) and saving its corrupted start
#      and best checkpoint; runs that already have a result.json are kept (rerun resumes);
#   2. figures/figure1-tsne.png: the paper's Figure 1 (t-SNE of the final layer's [CLS]
#      vectors, one panel per setting, silhouette and 5-NN accuracy of each map underneath);
#   3. figures/weights-histograms.png: the 100% run's pretrained, corrupted and healed weights
#      per module type; figures/weights-change-top25.png and weights-healing-top25.png: how far
#      each layer and module of the top-25% run moved from the pretrained weights and from its
#      corrupted start;
#   4. figures/drift-cka-heatmap.png: linear CKA of every layer to the clean run.
# Usage: bash examples/figures.sh            (about 30 min of training on 2 cores, then ~1 min)
#        HEAL_FIGURE_RUNS=DIR to keep the runs elsewhere (default runs/figures).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
cargo build --release --quiet
heal=$(cargo metadata --format-version 1 --no-deps | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')/release/heal
runs=${HEAL_FIGURE_RUNS:-runs/figures}
mkdir -p "$runs" figures

for setting in clean=none top25=top:25% bottom25=bottom:25% all=all; do
  name=${setting%%=*}
  spec=${setting#*=}
  if [ -f "$runs/$name/result.json" ]; then
    echo "$runs/$name: finished earlier, kept"
    continue
  fi
  "$heal" finetune --model minilm-l6 --data bbc-news --epochs 3 --device cpu \
    --corrupt "$spec" --method reinit \
    --dump-embeddings pretrained,corrupted,best --save-checkpoint corrupted,best \
    --out "$runs/$name" --overwrite
done

"$heal" tsne --panel "$runs/clean" "$runs/top25" "$runs/bottom25" "$runs/all" \
  --out figures/figure1-tsne.png

"$heal" weights "$runs/all" --out "$runs/all/weights"
cp "$runs/all/weights/histograms.png" figures/weights-histograms.png
"$heal" weights "$runs/top25" --out "$runs/top25/weights"
cp "$runs/top25/weights/change_heatmap.png" figures/weights-change-top25.png
cp "$runs/top25/weights/start_heatmap.png" figures/weights-healing-top25.png
cp "$runs/top25/weights/layers.csv" figures/weights-layers-top25.csv

"$heal" drift --reference "$runs/clean" "$runs/top25" "$runs/bottom25" "$runs/all" \
  --out "$runs/drift"
cp "$runs/drift/cka_heatmap.png" figures/drift-cka-heatmap.png
cp "$runs/drift/drift.csv" figures/drift.csv

ls -l figures/
