#!/usr/bin/env bash
# t-SNE benchmark: 5,000 x 384 real embeddings (minilm-l6 [CLS] vectors of the first 5,000
# AG News test articles), heal tsne vs scikit-learn's TSNE (and openTSNE when it is installed)
# at the same settings: PCA to 50, perplexity 30, 1,000 iterations, PCA init, learning rate
# 'auto', Barnes-Hut theta 0.5. Prints wall times, the ratio, and the leave-one-out 5-NN
# accuracy of each 2-D map (ties in the vote to the smallest class, as scikit-learn).
#
#   bash examples/bench-tsne.sh            # N=5000 by default
#   N=2000 bash examples/bench-tsne.sh
# heal's time is the whole `heal tsne` process (reading the file, PCA, t-SNE, scores, PNG);
# scikit-learn's is its PCA + TSNE on an array already in memory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash .ci/setup >/dev/null
cargo build --release --quiet
heal=$(cargo metadata --format-version 1 --no-deps | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')/release/heal
n=${N:-5000}
out=runs/bench-tsne
mkdir -p "$out"
.venv/bin/python - "$n" "$out" <<'PY'
import gzip, shutil, sys
n, out = int(sys.argv[1]), sys.argv[2]
src = "../shared/datasets/ag_news"
with gzip.open(f"{src}/test.jsonl.gz", "rt") as f, open(f"{out}/data.jsonl", "w") as g:
    for i, line in enumerate(f):
        if i == n:
            break
        g.write(line)
shutil.copy(f"{src}/labels.json", f"{out}/labels.json")
PY
if [ ! -f "$out/emb/embeddings.safetensors" ] || [ "$(wc -l < "$out/emb/ids.txt")" != "$n" ]; then
  "$heal" embed minilm-l6 --data "$out/data.jsonl" --eval-data "$out/data.jsonl" --split eval --layers 6 --device cpu --out "$out/emb"
fi
start=$(date +%s.%N)
"$heal" tsne "$out/emb" --out "$out/heal.png" --perplexity 30 --iterations 1000 --seed 0 >/dev/null
end=$(date +%s.%N)
.venv/bin/python - "$out" "$(echo "$end - $start" | bc)" <<'PY'
import csv, json, sys, time
import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.neighbors import NearestNeighbors

out, heal_seconds = sys.argv[1], float(sys.argv[2])
x = np.load(f"{out}/emb/layer_6.npy").astype(np.float64)
y = np.load(f"{out}/emb/labels.npy")

def knn(points, k=5):
    idx = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points, return_distance=False)
    hits = 0
    for i, row in enumerate(idx):
        others = [j for j in row if j != i][:k]
        votes = np.bincount(y[others], minlength=y.max() + 1)
        hits += votes.argmax() == y[i]
    return hits / len(y)

rows = list(csv.DictReader(open(f"{out}/heal.csv")))
ids = open(f"{out}/emb/ids.txt").read().split()
pos = {r["id"]: (float(r["x"]), float(r["y"])) for r in rows}
heal_map = np.array([pos[i] for i in ids])
results = [("heal tsne", heal_seconds, knn(heal_map))]

t = time.perf_counter()
z = PCA(n_components=50, random_state=0).fit_transform(x)
m = TSNE(n_components=2, perplexity=30, max_iter=1000, init="pca", learning_rate="auto",
         method="barnes_hut", angle=0.5, random_state=0).fit_transform(z)
results.append(("scikit-learn TSNE", time.perf_counter() - t, knn(m)))
try:
    from openTSNE import TSNE as OpenTSNE
    t = time.perf_counter()
    z = PCA(n_components=50, random_state=0).fit_transform(x)
    m = np.asarray(OpenTSNE(perplexity=30, n_iter=750, early_exaggeration_iter=250, initialization="pca",
                            negative_gradient_method="bh", theta=0.5, random_state=0, n_jobs=-1).fit(z))
    results.append(("openTSNE (BH)", time.perf_counter() - t, knn(m)))
except ImportError:
    print("openTSNE: not installed (.venv/bin/python -m pip install openTSNE to include it)")
print(f"{len(y)} x {x.shape[1]}, perplexity 30, 1,000 iterations, PCA to 50")
print(f"{'':20} {'seconds':>9} {'5-NN acc (2-D)':>15} {'heal is faster by':>18}")
for name, sec, acc in results:
    print(f"{name:20} {sec:9.1f} {acc:15.4f} {sec / results[0][1]:17.1f}x")
PY
