"""Inference throughput: heal against HF transformers, encoding SST-2's validation split (872
sentences) with minilm-l6, in float32 and under bfloat16, on the same machine in one invocation.

  heal embed   `heal embed minilm-l6 --layers 6 --pooling cls --batch-size 32 --threads 2
               --precision fp32|bf16`: the last layer's [CLS] vectors. heal's time is the
               encoding it prints (batches collated, run through the model and pooled, in a
               fresh process: the first batches' warm-up included), without the model load,
               tokenisation and writing.
  heal warm    the same encoding (the library calls `heal embed` makes) passed 3 times in one
               process by the example inference-passes (examples/bench/warm.rs, built beside
               heal): the best of passes 2 and 3, like for like with HF's warm passes.
  heal eval    (informational) the evaluation pass of `heal finetune` (classification logits and
               loss of the same 872 sentences, batch 32) after one epoch on 64 sentences: run.json's
               eval_seconds.
  HF           transformers' AutoModel in eval mode under torch.no_grad, 2 threads, the same
               tokens (max length 128), length-sorted batches of 32 padded to their longest
               sentence (dynamic padding), last_hidden_state[:, 0]; bf16 under
               torch.autocast("cpu", dtype=torch.bfloat16) around the whole pass. Timed from the
               first batch's padding to the last batch's vectors, tokenisation and model load
               excluded. Two rows: "HF" keeps the passes in one process (the first one warms up,
               the rows keep a warm one), "HF cold" is the first pass of a fresh process, as
               heal embed's encoding is: the same work with its warm-up, like for like.
  Warm-up      the first batch of each shape pays for libtorch's kernel set-up (under bf16 on
               AMX, oneDNN generates a kernel for every new matrix shape, and length-sorted
               batches bring a new shape nearly every batch): on a 2-core AMX Xeon HF's first
               bf16 pass took 1.29 s against 0.95 s warm; under fp32 (MKL, no generated code)
               2.09 against 2.04. A researcher encodes a dataset once, so cold is the common case.
The sides take turns (heal embed, heal warm, HF, HF cold, heal eval, per precision, --repeats rounds) and each row
keeps its best round: on a shared machine a busy spell then hits both. The load average before
and after is recorded (two OpenMP threads on a core another process holds can run several
times slower, for heal and torch alike). --baseline BIN adds the evaluation rows of another heal
build (the old binary's `heal embed` has no --precision).
The floor: each row's matrix products (counted from the batches' widths, as the side runs them)
at the matmul part's fp32 or bf16 peak of the same libtorch (measured here when that part did not
run), everything else counted as free. No pass can be faster, so it bounds the ratio any
implementation of the same arithmetic could reach on the machine.
Both sides' [CLS] vectors are compared (max abs difference, least cosine similarity), and
heal's bf16 against heal's fp32 for scale.

  cargo build --release --example inference-passes
  python examples/bench/inference.py --heal target/release/heal [--repeats 3] [--work DIR]

part_inference(args, out, work) and report_inference(out) are the suite's part `inference`
(examples/bench.sh --only inference); run alone, this file takes the options below.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from suite import DATA, ROOT, fmt_table, machine, measure, model_dir, part_matmul, read_jsonl, say  # noqa: E402

BATCH = 32
MAX_LEN = 128
THREADS = 2


def sst2_validation(work, datasets):
    """SST-2's validation split as plain JSON lines (both sides read this file)."""
    path = os.path.join(work, "sst2-validation.jsonl")
    rows = read_jsonl(os.path.join(datasets, "sst2", "validation.jsonl.gz"))
    with open(path, "w") as f:
        f.writelines(rows)
    return path, [json.loads(r)["text"] for r in rows]


def heal_embed(args, data, precision, work):
    """One `heal embed` process: (encoding seconds, wall seconds, peak RSS MiB, out folder)."""
    emb = os.path.join(work, f"heal-embed-{precision}")
    log = os.path.join(work, f"heal-embed-{precision}.log")
    wall, rss = measure([args.heal, "embed", "minilm-l6", "--data", data, "--eval-data", data, "--split", "eval",
                         "--layers", "6", "--pooling", "cls", "--batch-size", str(BATCH), "--max-len", str(MAX_LEN),
                         "--threads", str(THREADS), "--precision", precision, "--device", "cpu",
                         "--out", emb, "--overwrite"], log)
    text = open(log).read()
    m = re.search(r"encoding ([0-9.]+) s", text)
    if not m:
        raise SystemExit(f"[bench] no encoding time in {log}:\n{text[-2000:]}")
    return float(m.group(1)), wall, rss, emb


def heal_eval(args, heal, data, precision, work):
    """`heal finetune` (the binary `heal`) for one epoch on 64 sentences, evaluated on `data`:
    run.json's eval seconds."""
    train = os.path.join(work, "sst2-validation-64.jsonl")
    with open(data) as f, open(train, "w") as t:
        t.writelines(f.readlines()[:64])
    run = os.path.join(work, f"heal-eval-{precision}")
    measure([heal, "finetune", "--model", "minilm-l6", "--data", train, "--eval-data", data, "--epochs", "1",
             "--batch-size", "32", "--eval-batch-size", str(BATCH), "--max-len", str(MAX_LEN), "--threads",
             str(THREADS), "--precision", precision, "--device", "cpu", "--analysis-examples", "0",
             "--out", run, "--overwrite"], os.path.join(work, f"heal-eval-{precision}.log"))
    return json.load(open(os.path.join(run, "run.json")))["timings"]["eval_seconds"]


def heal_warm(args, data, precision):
    """The best warm pass (2nd or later) of inference-passes beside the heal binary: seconds."""
    exe = os.path.join(os.path.dirname(args.heal), "examples", "inference-passes")
    proc = subprocess.run([exe, "--data", data, "--layers", "6", "--passes", "3", "--precision", precision, "--threads",
                           str(THREADS), "--batch-size", str(BATCH), "--max-len", str(MAX_LEN)],
                          capture_output=True, text=True)
    passes = [float(x) for x in re.findall(r"^pass \d+ ([0-9.]+)$", proc.stdout, re.M)]
    if proc.returncode != 0 or len(passes) < 2:
        raise SystemExit(f"[bench] {exe} failed (cargo build --release --example inference-passes):\n"
                         f"{proc.stdout[-1000:]}\n{proc.stderr[-2000:]}")
    return min(passes[1:])


def heal_vectors(emb):
    import numpy as np
    return np.load(os.path.join(emb, "layer_6.npy")).astype("float32")


class HfModel:
    """transformers' AutoModel of minilm-l6 with SST-2's tokens, loaded once."""

    def __init__(self, texts):
        import torch
        from transformers import AutoModel, AutoTokenizer
        torch.set_num_threads(THREADS)
        self.tok = AutoTokenizer.from_pretrained(model_dir())
        self.model = AutoModel.from_pretrained(model_dir()).eval()
        self.enc = self.tok(texts, truncation=True, max_length=MAX_LEN)
        # heal's order: longest first, ties by example index.
        order = sorted(range(len(texts)), key=lambda i: (-len(self.enc["input_ids"][i]), i))
        self.batches = [order[s:s + BATCH] for s in range(0, len(order), BATCH)]
        self.n = len(texts)
        # (batch size, padded width) of every batch: the padding both sides do.
        self.widths = [(len(idx), max(len(self.enc["input_ids"][i]) for i in idx)) for idx in self.batches]

    def run(self, precision):
        """One pass: the [CLS] vectors (example order) and its seconds."""
        import contextlib
        import numpy as np
        import torch
        started = time.perf_counter()
        autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16"
                    else contextlib.nullcontext())
        with torch.no_grad(), autocast:
            out = []
            for idx in self.batches:
                padded = self.tok.pad({k: [self.enc[k][i] for i in idx]
                                       for k in ("input_ids", "token_type_ids", "attention_mask")},
                                      return_tensors="pt")
                out.append(self.model(**padded).last_hidden_state[:, 0].float())
        seconds = time.perf_counter() - started
        vectors = np.zeros((self.n, self.model.config.hidden_size), dtype="float32")
        for idx, v in zip(self.batches, out):
            vectors[idx] = v.numpy()
        return vectors, seconds


def hf_cold(data, precision):
    """The first HF pass of a fresh process (model load and tokenisation excluded): seconds."""
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--cold-pass", precision, "--data", data,
                           "--threads", str(THREADS)], capture_output=True, text=True)
    m = re.search(r"^cold pass ([0-9.]+)$", proc.stdout, re.M)
    if proc.returncode != 0 or not m:
        raise SystemExit(f"[bench] HF cold pass failed:\n{proc.stdout[-1000:]}\n{proc.stderr[-2000:]}")
    return float(m.group(1))


def product_flops(widths, cls_last_layer, pooler, pad_multiple=1):
    """Floating-point operations of the pass's matrix products (2 per multiply-add), counted
    from each batch's (size, padded width): the linear layers and the attention products of
    every layer, as the side runs them. `cls_last_layer`: the last layer's keys and values at
    every position but its query, attention, output and feed-forward at [CLS] only (heal under
    [CLS] pooling); `pooler`: BertModel's pooler on [CLS] (HF AutoModel computes it);
    `pad_multiple`: widths rounded up to it (heal under bf16 on the CPU)."""
    cfg = json.load(open(os.path.join(model_dir(), "config.json")))
    h, f, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    total = 0
    for b, s in widths:
        s = -(-s // pad_multiple) * pad_multiple
        full = 2 * b * s * (4 * h * h + 2 * h * f) + 2 * 2 * b * s * s * h
        total += (layers - 1) * full
        if cls_last_layer:
            # k, v at every position; q, o, the feed-forward and the attention of one row.
            total += 2 * b * s * 2 * h * h + 2 * b * (2 * h * h + 2 * h * f) + 2 * 2 * b * s * h
        else:
            total += full
        if pooler:
            total += 2 * b * h * h
    return total


def heal_bf16_kernels():
    """Which kernels heal's bf16 products run on here, as heal decides (model/precision.rs):
    HEAL_BF16_KERNELS if set, else oneDNN's bfloat16 kernels ("bf16") on an x86-64 CPU with
    AMX and on other architectures, float32 kernels on bfloat16-rounded operands ("fp32") on
    an x86-64 CPU without AMX."""
    import platform
    chosen = os.environ.get("HEAL_BF16_KERNELS")
    if chosen:
        return chosen
    if platform.machine() not in ("x86_64", "AMD64"):
        return "bf16"
    try:
        flags = next((l for l in open("/proc/cpuinfo") if l.startswith("flags")), "").split()
    except OSError:
        flags = []
    return "bf16" if "amx_bf16" in flags and "amx_tile" in flags else "fp32"


def compare(a, b):
    import numpy as np
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"max_abs_diff": float(np.abs(a - b).max()), "min_cosine": float(cos.min()),
            "mean_cosine": float(cos.mean())}


def part_inference(args, out, work):
    work = os.path.join(work, "inference")
    os.makedirs(work, exist_ok=True)
    repeats = getattr(args, "repeats", 3)
    datasets = getattr(args, "datasets", None) or DATA
    baseline = getattr(args, "baseline", None)
    data, texts = sst2_validation(work, datasets)
    n = len(texts)
    hf = HfModel(texts)
    # One untimed pass per precision, so that HF's rows are warm whatever --repeats is (with one
    # round its only pass would otherwise be the cold first one: that is the "HF cold" row's).
    for precision in ("fp32", "bf16"):
        hf.run(precision)
    load_before = os.getloadavg()
    seconds = {}
    vectors = {}
    # Round-robin, heal and HF one after the other in every round, so that a busy spell of a
    # shared machine hits both sides; each row keeps its best round.
    for r in range(repeats):
        for precision in ("fp32", "bf16"):
            say(f"inference: round {r + 1}/{repeats}, {precision}: heal embed, heal warm, HF, HF cold, heal eval ...")
            secs, _, _, emb = heal_embed(args, data, precision, work)
            seconds.setdefault(f"heal embed {precision}", []).append(secs)
            vectors[f"heal {precision}"] = heal_vectors(emb)
            seconds.setdefault(f"heal warm {precision}", []).append(heal_warm(args, data, precision))
            v, secs = hf.run(precision)
            seconds.setdefault(f"HF {precision}", []).append(secs)
            vectors[f"HF {precision}"] = v
            seconds.setdefault(f"HF cold {precision}", []).append(hf_cold(data, precision))
            if getattr(args, "eval_rows", True):
                seconds.setdefault(f"heal eval {precision}", []).append(heal_eval(args, args.heal, data, precision,
                                                                                  work))
                if baseline:
                    seconds.setdefault(f"baseline heal eval {precision}", []).append(
                        heal_eval(args, baseline, data, precision, work))
    rows = {label: {"seconds": min(s), "seconds_all": s, "examples_per_second": n / min(s)}
            for label, s in seconds.items()}
    # The floor: each side's products at the matmul part's peak rate of the same libtorch
    # (measured here if that part did not run), no other work counted.
    if "matmul_gflops" not in out:
        part_matmul(out)
    peak = out["matmul_gflops"]
    kernels = heal_bf16_kernels()
    flops = {}
    for precision in ("fp32", "bf16"):
        flops[f"heal {precision}"] = product_flops(hf.widths, cls_last_layer=True, pooler=False,
                                                   pad_multiple=4 if precision == kernels == "bf16" else 1)
        flops[f"HF {precision}"] = product_flops(hf.widths, cls_last_layer=False, pooler=True)
    for label, r in rows.items():
        precision = label.split()[-1]
        side = "HF" if label.startswith("HF") else "heal"
        r["product_gflop"] = flops[f"{side} {precision}"] / 1e9
        # heal's bf16 products on float32 kernels are bounded by the float32 peak.
        on = "fp32" if side == "heal" and precision == "bf16" and kernels == "fp32" else precision
        r["products_at_peak_seconds"] = r["product_gflop"] / peak[on]
    for precision in ("fp32", "bf16"):
        say(f"  {precision}: heal embed {rows[f'heal embed {precision}']['examples_per_second']:.0f} ex/s, "
            f"HF {rows[f'HF {precision}']['examples_per_second']:.0f} ex/s, "
            f"HF cold {rows[f'HF cold {precision}']['examples_per_second']:.0f} ex/s, "
            f"heal warm {rows[f'heal warm {precision}']['examples_per_second']:.0f} ex/s")
    out["inference"] = {
        "settings": {"examples": n, "batch_size": BATCH, "max_len": MAX_LEN, "threads": THREADS,
                     "peak_gflops": peak, "heal_bf16_kernels": kernels,
                     "repeats": repeats, "load_average_before": load_before,
                     "load_average_after": os.getloadavg()},
        "rows": rows,
        "agreement": {
            "heal fp32 vs HF fp32": compare(vectors["heal fp32"], vectors["HF fp32"]),
            "heal bf16 vs HF bf16": compare(vectors["heal bf16"], vectors["HF bf16"]),
            "heal bf16 vs heal fp32": compare(vectors["heal bf16"], vectors["heal fp32"]),
            "HF bf16 vs HF fp32": compare(vectors["HF bf16"], vectors["HF fp32"]),
        },
    }


def report_inference(out):
    inf = out["inference"]
    s = inf["settings"]
    rows = inf["rows"]
    table = []
    for label, r in rows.items():
        precision = label.split()[-1]
        ratios = []
        for peer in (f"HF {precision}", f"HF cold {precision}"):
            hf = rows.get(peer)
            ratios.append("" if label.startswith("HF") or not hf
                          else f"{r['examples_per_second'] / hf['examples_per_second']:.2f}x")
        floor = r.get("products_at_peak_seconds")
        share = "" if floor is None else f"{r['product_gflop']:.0f} GFLOP, {floor:.2f} s ({100 * floor / r['seconds']:.0f}%)"
        table.append([label, f"{r['seconds']:.2f}", f"{r['examples_per_second']:.0f}", *ratios, share])
    bounds = []
    if "peak_gflops" in s:
        for precision in ("fp32", "bf16"):
            heal_floor = rows[f"heal embed {precision}"]["products_at_peak_seconds"]
            on = "fp32" if precision == "bf16" and s.get("heal_bf16_kernels") == "fp32" else precision
            rate = s["peak_gflops"][on]
            hf_warm = rows[f"HF {precision}"]["seconds"]
            hf_cold = rows[f"HF cold {precision}"]["seconds"]
            how = (" (heal's bf16 products run on float32 kernels on this CPU, which has no AMX units)"
                   if precision == "bf16" and on == "fp32" else "")
            bounds.append(f"{precision}: heal's products alone take {heal_floor:.2f} s at the {on} peak "
                          f"({rate:.0f} GFLOP/s){how}, so heal can be at most "
                          f"{hf_warm / heal_floor:.2f}x HF warm and {hf_cold / heal_floor:.2f}x HF cold on this "
                          f"machine; 1.5x HF warm would need {hf_warm / 1.5:.2f} s.")
    text = [f"Inference, minilm-l6 on SST-2 validation ({s['examples']} sentences), batches of "
            f"{s['batch_size']} sorted by length and padded to their longest, max length {s['max_len']}, "
            f"{s['threads']} threads, best of {s['repeats']} rounds taking turns (heal embed: the encoding "
            "it prints, a fresh process each, warm-up included; heal warm: passes 2-3 of one process; heal eval: finetune's evaluation pass; HF: "
            "AutoModel, eval mode, no_grad, bf16 under autocast, passes in one process, warm; HF cold: the first "
            "pass of a fresh process, like for like with heal embed); 1-minute load "
            f"average {s['load_average_before'][0]:.1f} before, {s['load_average_after'][0]:.1f} after:\n",
            fmt_table(["run", "seconds", "ex/s", "vs HF warm, same precision", "vs HF cold",
                       "products, at the matmul peak (share of the time)"], table),
            *(["\nThe floor (products counted from the batches' widths: heal computes the last layer's "
               "query, attention, output and feed-forward at [CLS] only, HF AutoModel the whole layer and "
               "its pooler; under bf16 on oneDNN's kernels heal pads widths to a multiple of 4; element-wise "
               "work, attention's "
               "softmax and every overhead counted as free):", *[f"- {b}" for b in bounds]] if bounds else []),
            "\n[CLS] vectors:\n",
            fmt_table(["compared", "max abs diff", "least cosine", "mean cosine"],
                      [[k, f"{v['max_abs_diff']:.2e}", f"{v['min_cosine']:.6f}", f"{v['mean_cosine']:.6f}"]
                       for k, v in inf["agreement"].items()])]
    return "\n".join(text)


def main():
    global THREADS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heal", help="the heal binary")
    ap.add_argument("--work", default=os.path.join(ROOT, "runs", "bench"))
    ap.add_argument("--datasets", default=DATA, help="the folder with sst2/validation.jsonl.gz")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=THREADS,
                    help="threads on both sides (2 as the suite; 1 suffers less from a busy machine)")
    ap.add_argument("--baseline", help="another heal binary (e.g. an older build): its finetune evaluation rows too")
    ap.add_argument("--no-eval-rows", dest="eval_rows", action="store_false",
                    help="skip the heal finetune evaluation rows")
    ap.add_argument("--cold-pass", choices=["fp32", "bf16"],
                    help="(used by the part itself) one HF pass over --data in this fresh process: its seconds")
    ap.add_argument("--data", help="with --cold-pass: the JSON-lines file")
    args = ap.parse_args()
    THREADS = args.threads
    if args.cold_pass:
        _, seconds = HfModel([json.loads(r)["text"] for r in open(args.data)]).run(args.cold_pass)
        print(f"cold pass {seconds:.4f}")
        return
    if not args.heal:
        ap.error("--heal is required")
    os.makedirs(args.work, exist_ok=True)
    started = time.perf_counter()
    out = {"date": time.strftime("%Y-%m-%d"), "machine": machine()}
    part_inference(args, out, args.work)
    out["suite_seconds"] = time.perf_counter() - started
    text = report_inference(out)
    with open(os.path.join(args.work, "inference.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(text)


if __name__ == "__main__":
    main()
