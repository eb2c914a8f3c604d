"""How each cost grows with the work, for examples/bench/suite.py (parts tsne-scale,
finetune-scale, cell-cost). Every heal number here has its peer measured in the same run.

  tsne-scale      t-SNE seconds and 2-D 10-NN accuracy at 1k, 5k, 20k and all 67,349 SST-2
                  training sentences (minilm-l6 [CLS], 384 dims): heal (whole process), openTSNE's
                  FFT method (2 threads) and scikit-learn's Barnes-Hut (PCA to 50 + t-SNE in
                  memory), each at its default iterations (heal and scikit-learn 1,000, openTSNE
                  750), and heal at openTSNE's 750 at the largest size too. A peer whose time
                  projected from its previous size exceeds --tsne-cap is skipped and the table
                  says so; one that runs past the cap is stopped.
  finetune-scale  training ex/s against max length (64..512, batch 32) and batch size
                  (8..64, length 128), heal fp32 and HF at its best (dynamic padding) fp32, on
                  IMDB reviews (long enough that every example fills the length); a fixed token
                  budget per cell.
  cell-cost       sweeps of 4 minilm-l6 cells on SST-2: each cell's fixed cost (model load,
                  tokenisation, set-up, writes: total - train - eval) against its training time,
                  without and with the study's analysis artefacts.
"""
import json
import os
import time

import suite
from suite import DATA, PY, say

TSNE_SIZES = (1000, 5000, 20000, None)  # None: every point
LENGTHS = (64, 128, 256, 512)
BATCHES = (8, 16, 32, 64)


# ------------------------------------------------------------------------------------------------
# t-SNE against points

def sst2_cls(args, work):
    """heal embed of SST-2's training sentences: [CLS] of minilm-l6's last layer (cached)."""
    emb = os.path.join(work, "sst2-train-cls")
    if not os.path.exists(os.path.join(emb, "embeddings.safetensors")):
        data = os.path.join(DATA, "sst2", "train.jsonl.gz")
        say("t-SNE scaling: embedding SST-2's 67,349 training sentences with heal embed (~3 min) ...")
        suite.measure([args.heal, "embed", "minilm-l6", "--data", data, "--eval-data", data, "--split", "eval",
                       "--layers", "6", "--pooling", "cls", "--device", "cpu", "--out", emb],
                      os.path.join(work, "sst2-train-embed.log"))
    return emb


def subset_embeddings(src, dst, n, seed=0):
    """The first n of a seeded permutation of an embeddings folder, as an embeddings folder."""
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import save_file
    if os.path.exists(os.path.join(dst, "embeddings.safetensors")):
        return dst
    path = os.path.join(src, "embeddings.safetensors")
    with safe_open(path, "np") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    ids = json.loads(meta["ids"])
    pick = np.random.default_rng(seed).permutation(len(ids))[:n]
    os.makedirs(dst, exist_ok=True)
    meta = dict(meta, ids=json.dumps([ids[i] for i in pick]))
    save_file({k: np.ascontiguousarray(v[pick]) for k, v in tensors.items()},
              os.path.join(dst, "embeddings.safetensors"), metadata=meta)
    return dst


def read_set(emb):
    import numpy as np
    from safetensors import safe_open
    with safe_open(os.path.join(emb, "embeddings.safetensors"), "np") as f:
        layer = max((k for k in f.keys() if k.startswith("layer_")), key=lambda k: int(k[6:]))
        return f.get_tensor(layer), f.get_tensor("labels"), json.loads(f.metadata()["ids"])


def part_tsne_scale(args, out, work):
    import numpy as np
    work = os.path.join(work, "tsne-scale")
    os.makedirs(work, exist_ok=True)
    full = sst2_cls(args, work)
    script = os.path.join(work, "tsne-peer.py")
    with open(script, "w") as f:
        f.write(suite.PEER_TSNE)
    cap = args.tsne_cap
    rows = []
    last = {}  # peer -> (n, seconds) of its last finished run
    for size in TSNE_SIZES:
        emb = full if size is None else subset_embeddings(full, os.path.join(work, f"sst2-{size}"), size)
        x, y, ids = read_set(emb)
        n = len(ids)
        npy = os.path.join(work, f"x-{n}.npy")
        np.save(npy, x)
        row = {"points": n}
        # At the full size also heal's FFT method (auto picks Barnes-Hut there) and heal at
        # openTSNE's 750 iterations.
        runs = [("heal", "1000", [])] + ([("heal-fft", "1000", ["--method", "fft"]), ("heal-750", "750", [])]
                                         if size is None else [])
        for key, iterations, extra in runs:
            say(f"t-SNE scaling, {n} points: {key} ...")
            png = os.path.join(work, f"{key}-{n}.png")
            wall, rss = suite.measure([args.heal, "tsne", emb, "--out", png, "--iterations", iterations, "--seed",
                                       "0", "--overwrite", *extra], os.path.join(work, f"{key}-{n}.log"))
            pos = {r["id"]: (float(r["x"]), float(r["y"])) for r in csv_rows(png[:-4] + ".csv")}
            row[key] = {"seconds": wall, "peak_rss_mib": rss, "iterations": int(iterations),
                        "knn10": suite.knn_accuracy(np.array([pos[i] for i in ids]), y, k=10)}
        for peer in ("opentsne", "sklearn"):
            if peer in last:
                n0, s0 = last[peer]
                # n log n: the optimiser's growth, a lower bound on the whole (the neighbour
                # search grows faster).
                projected = s0 * (n / n0) * np.log(n) / np.log(n0)
                if projected > cap:
                    row[peer] = {"skipped": f"projected {projected:.0f} s from {n0} points > cap {cap} s"}
                    say(f"  {peer}: skipped ({row[peer]['skipped']})")
                    continue
            say(f"t-SNE scaling, {n} points: {peer} ...")
            result = os.path.join(work, f"{peer}-{n}.npy")
            try:
                wall, rss = suite.measure(["timeout", str(cap), PY, script, peer, npy, result, "1000", "fft", "500", "2"],
                                          os.path.join(work, f"{peer}-{n}.log"))
            except SystemExit as e:
                row[peer] = {"skipped": f"stopped at the cap ({cap} s) or failed: {str(e).splitlines()[0]}"}
                say(f"  {peer}: {row[peer]['skipped']}")
                last[peer] = (n, float(cap))
                continue
            seconds = float(open(result + ".seconds").read())
            row[peer] = {"seconds": seconds, "process_seconds": wall, "peak_rss_mib": rss,
                         "knn10": suite.knn_accuracy(np.load(result), y, k=10)}
            last[peer] = (n, seconds)
        os.remove(npy)
        rows.append(row)
        say("  " + ", ".join(f"{k} {v['seconds']:.1f} s, 10-NN {v['knn10']:.4f}" for k, v in row.items()
                             if isinstance(v, dict) and "seconds" in v))
    out["tsne_scale"] = {"settings": {"source": "SST-2 train, minilm-l6 [CLS] (layer 6), 384 dims",
                                      "iterations": "heal and scikit-learn 1,000, openTSNE 750 (250 + 500), "
                                                    "each's default; 250 of them exaggerated",
                                      "perplexity": 30, "pca": 50,
                                      "cap_seconds": cap, "threads": 2}, "rows": rows}


def csv_rows(path):
    import csv
    with open(path) as f:
        return list(csv.DictReader(f))


def report_tsne_scale(t):
    s = t["settings"]
    lines = [f"\nt-SNE seconds against points: {s['source']}, PCA to {s['pca']}, perplexity {s['perplexity']}, "
             f"{s['iterations']} iterations; heal: whole process (`heal tsne`, method auto: Barnes-Hut below "
             f"200,000 points, FFT from there), peers: PCA + t-SNE in memory, {s['threads']} threads; "
             f"cap {s['cap_seconds']} s per run:\n"]
    header = ["points", "heal s", "heal 10-NN", "openTSNE FFT s", "openTSNE 10-NN", "scikit-learn s",
              "scikit-learn 10-NN", "heal faster than openTSNE by", "than scikit-learn by"]
    table, extras = [], []
    for r in t["rows"]:
        h = r["heal"]
        if "heal-750" in r:
            peer = r.get("opentsne", {})
            g = r["heal-750"]
            extra = (f"\nAt {r['points']:,} points heal with openTSNE's 750 iterations: {g['seconds']:.1f} s, "
                     f"10-NN {g['knn10']:.4f}"
                     + (f" ({peer['seconds'] / g['seconds']:.1f}x faster than openTSNE)" if "seconds" in peer else "")
                     + ".")
        else:
            extra = None
        if "heal-fft" in r:
            g = r["heal-fft"]
            extra = (extra or "") + (f"\nAt {r['points']:,} points heal's FFT method (--method fft, openTSNE's "
                                     f"optimiser): {g['seconds']:.1f} s, 10-NN {g['knn10']:.4f}.")

        def cell(peer):
            v = r.get(peer, {})
            if "seconds" in v:
                return [f"{v['seconds']:.1f}", f"{v['knn10']:.4f}", f"{v['seconds'] / h['seconds']:.1f}x"]
            return [f"skipped: {v.get('skipped', 'not run')}", "", ""]
        o, k = cell("opentsne"), cell("sklearn")
        table.append([f"{r['points']:,}", f"{h['seconds']:.1f}", f"{h['knn10']:.4f}", o[0], o[1], k[0], k[1],
                      o[2], k[2]])
        extras.append(extra)
    lines.append(suite.fmt_table(header, table))
    lines += [r for r in extras if r]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# fine-tuning against length and batch size

def part_finetune_scale(args, out, work):
    work = os.path.join(work, "finetune-scale")
    os.makedirs(work, exist_ok=True)
    labels = os.path.join(work, "labels.json")
    import shutil
    shutil.copy(os.path.join(DATA, "imdb", "labels.json"), labels)
    evaluation = os.path.join(work, "imdb-eval.jsonl")
    suite.subset(os.path.join(DATA, "imdb", "test.jsonl.gz"), evaluation, 64, 42)
    cells = [(length, 32) for length in LENGTHS] + [(128, b) for b in BATCHES if b != 32]
    rows = []
    for length, batch in cells:
        # The same number of tokens per cell (every review fills the length), whole batches.
        n = max(2 * batch, args.scale_tokens // length // batch * batch)
        train = os.path.join(work, f"imdb-train-{n}.jsonl")
        if not os.path.exists(train):
            suite.subset(os.path.join(DATA, "imdb", "train.jsonl.gz"), train, n, 42)
        common = ["--epochs", "1", "--batch-size", str(batch), "--eval-batch-size", "64",
                  "--max-len", str(length), "--lr", "5e-5", "--seed", "42"]
        say(f"fine-tuning scaling: length {length}, batch {batch}, {n} examples: heal fp32 ...")
        h = suite.heal_run(args, f"heal-L{length}-B{batch}",
                           ["--model", "minilm-l6", "--data", train, "--eval-data", evaluation, *common,
                            "--precision", "fp32"], work)
        say(f"  {h['train_examples_per_second']:.1f} ex/s; HF best fp32 ...")
        f = suite.hf_run(args, f"hf-L{length}-B{batch}",
                         ["--train", train, "--eval", evaluation, "--labels", labels, *common,
                          "--padding", "dynamic"], work)
        say(f"  {f['train_examples_per_second']:.1f} ex/s")
        rows.append({"max_len": length, "batch": batch, "examples": n,
                     "heal": h["train_examples_per_second"], "hf": f["train_examples_per_second"]})
    out["finetune_scale"] = {"settings": {"data": "IMDB train reviews, truncated to the length",
                                          "tokens_per_cell": args.scale_tokens}, "rows": rows}


def report_finetune_scale(t):
    lines = [f"\nFine-tuning minilm-l6 against length and batch size: {t['settings']['data']}, "
             f"~{t['settings']['tokens_per_cell']:,} tokens per cell, 1 epoch, fp32; HF at its best "
             "(dynamic padding):\n"]
    table = [[r["max_len"], r["batch"], r["examples"], f"{r['heal']:.1f}", f"{r['hf']:.1f}",
              f"{r['heal'] / r['hf']:.2f}x"] for r in t["rows"]]
    lines.append(suite.fmt_table(["max length", "batch", "examples", "heal train ex/s", "HF train ex/s",
                                  "heal / HF"], table))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# a sweep's fixed cost per cell

GRID = """[base]
epochs = 1
batch-size = 32
max-len = 128
precision = "fp32"
device = "cpu"
max-train-examples = {n}
eval-data = "{eval}"
{analysis}

[grid]
model = ["minilm-l6"]
data = ["{train}"]
corrupt = ["none", "bottom:50%", "top:50%", "all"]
lr = [5e-5]
seed = [42]
"""


def cell_sweep(args, work, analysis):
    tag = "default" if analysis is None else analysis
    grid = os.path.join(work, f"grid-analysis{tag}.toml")
    with open(grid, "w") as f:
        f.write(GRID.format(n=args.cell_examples,
                            analysis="" if analysis is None else f"analysis-examples = {analysis}",
                            train=os.path.join(DATA, "sst2", "train.jsonl.gz"),
                            eval=os.path.join(DATA, "sst2", "validation.jsonl.gz")))
    sweep = os.path.join(work, f"sweep-analysis{tag}-{int(time.time())}")
    say(f"sweep fixed cost: 4 minilm-l6 cells, --analysis-examples {tag} ...")
    wall, _ = suite.measure([args.heal, "sweep", "--config", grid, "--out", sweep],
                            os.path.join(work, f"sweep-analysis{tag}.log"))
    cells = []
    for name in sorted(os.listdir(os.path.join(sweep, "cells"))):
        t = json.load(open(os.path.join(sweep, "cells", name, "run.json")))["timings"]
        cells.append({"cell": name, "prepare": t["prepare_seconds"], "train": t["train_seconds"],
                      "eval": t["eval_seconds"], "total": t["total_seconds"],
                      "fixed": t["total_seconds"] - t["train_seconds"] - t["eval_seconds"]})
    work_seconds = sum(c["train"] + c["eval"] for c in cells)
    return {"cells": cells, "sweep_wall_seconds": wall,
            "per_cell_overhead_seconds": (wall - work_seconds) / len(cells)}


def part_cell_cost(args, out, work):
    work = os.path.join(work, "cell-cost")
    os.makedirs(work, exist_ok=True)
    out["cell_cost"] = {"settings": {"cells": 4, "train_examples": args.cell_examples, "model": "minilm-l6",
                                     "data": "SST-2 (validation: 872)"},
                        "bare": cell_sweep(args, work, 0), "with_analysis": cell_sweep(args, work, None)}


def report_cell_cost(t):
    s = t["settings"]
    lines = [f"\nA sweep's fixed cost per cell: {s['cells']} {s['model']} cells (none, bottom:50%, top:50%, all) "
             f"on {s['data']}, {s['train_examples']} training examples, 1 epoch, fp32; fixed = total - train - "
             "eval (model load, damage, tokenisation or the sweep's cached tokens, set-up, writes), without "
             "and with the study's analysis artefacts at their default (up to 2,000 evaluation examples, here all "
             "872: a forward pass before training and one over every layer after):\n"]
    table = []
    for key, label in (("bare", "--analysis-examples 0"), ("with_analysis", "analysis artefacts (default)")):
        v = t[key]
        fixed = [c["fixed"] for c in v["cells"]]
        table.append([label, " / ".join(f"{x:.2f}" for x in fixed), f"{sum(fixed) / len(fixed):.2f}",
                      " / ".join(f"{c['train']:.1f}" for c in v["cells"]), f"{v['per_cell_overhead_seconds']:.2f}"])
    lines.append(suite.fmt_table(["cells", "fixed s per cell", "mean fixed s", "train s per cell",
                                  "sweep wall - train - eval, per cell (process start included)"], table))
    return "\n".join(lines)


def add_arguments(ap):
    ap.add_argument("--tsne-cap", type=int, default=300, help="t-SNE scaling: seconds per peer run at most")
    ap.add_argument("--scale-tokens", type=int, default=16384,
                    help="fine-tuning scaling: training tokens per cell")
    ap.add_argument("--cell-examples", type=int, default=256, help="cell cost: training examples per cell")


PARTS = {"tsne-scale": part_tsne_scale, "finetune-scale": part_finetune_scale, "cell-cost": part_cell_cost}
REPORTS = {"tsne_scale": report_tsne_scale, "finetune_scale": report_finetune_scale,
           "cell_cost": report_cell_cost}
