"""examples/gpu/check.sh's driver: runs every part of the CUDA check in order, writing
report.json, report.md and check.log into --out after each part (a check stopped at its time
limit still leaves what it did). Standard library only: it runs under the node's Python.

Parts: device facts; the matrix-product ceiling through heal's own libtorch (gpu-probe);
parity of every layer's hidden states and the logits with HF transformers on the device
(tiny fixtures, a BERT-Base-shaped checkpoint made from a seed); short fine-tunes of the tiny
fixtures (fp32, bf16, the optimiser and dropout paths that differ between CPU and GPU);
throughput of heal and HF on the BERT-Base shape. Every number records the command that made it.
"""
import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
REFERENCE = ROOT / "examples" / "gpu" / "reference.py"
HF_FINETUNE = ROOT / "examples" / "bench" / "hf_finetune.py"

# Sizes per device: the GPU's are the (BERT-Base, batch 32, length 128, 300 steps);
# the CPU's only rehearse the same commands in a few minutes.
SIZES = {
    "cuda": dict(matmul_n=8192, matmul_reps=10, hidden=768, layers=12, heads=12, ffn=3072,
                 parity_batch=8, parity_len=128, batch=32, max_len=128, steps=300, eval=320,
                 words=160),
    "cpu": dict(matmul_n=1024, matmul_reps=5, hidden=256, layers=4, heads=4, ffn=1024,
                parity_batch=4, parity_len=64, batch=8, max_len=64, steps=12, eval=32,
                words=80),
}
# Parity thresholds. fp32 against fp32: the 1e-4 (max |a - b| over real tokens).
# bf16: relative error ||a - b|| / ||b|| per tensor, against HF under autocast(bfloat16) and
# against float32; products with bf16 operands land between 1e-3 and 1e-2, and twelve layers
# compound it.
FP32_MAX_ABS = 1e-4
BF16_REL = 3e-2
TINY_FLAGS = ["--epochs", "10", "--max-len", "32", "--lr", "3e-3", "--seed", "7"]
TINY_RUNS = [
    # name, model, flags. Defaults ask for heal's fused CPU optimiser (on a GPU libtorch's
    # runs instead) and keep dropout on (on a GPU libtorch's, on the CPU heal's counter-based
    # masks); bf16 takes the stacked q/k/v product. Settings reach status ok on several seeds.
    ("tiny-bert-fp32", "tiny-bert", ["--batch-size", "8", "--precision", "fp32"]),
    ("tiny-bert-bf16", "tiny-bert", ["--batch-size", "8", "--precision", "bf16"]),
    ("tiny-bert-fp32-libtorch-optimizer", "tiny-bert",
     ["--batch-size", "8", "--precision", "fp32", "--fused-optimizer", "false"]),
    ("tiny-roberta-bf16-adam-accum2", "tiny-roberta",
     ["--batch-size", "4", "--precision", "bf16", "--optimizer", "adam", "--gradient-accumulation-steps", "2"]),
    ("tiny-distilbert-fp32-mean-pooling", "tiny-distilbert", ["--batch-size", "8", "--precision", "fp32", "--pooling", "mean"]),
]


def rel(path):
    """A path as the report shows it: relative to the repository where it lies inside."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


class GpuMemory:
    """Peak memory.used of GPU 0 from nvidia-smi polled every 100 ms while a command runs
    (the whole device: the CUDA context included), minus what was in use before."""

    def __init__(self):
        self.base = gpu_used()
        self.peak = self.base
        self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                                      "-i", "0", "-lms", "100"], stdout=subprocess.PIPE, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.peak = max(self.peak, float(line.strip()))
            except ValueError:
                pass

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        return {"peak_gpu_used_mib": self.peak, "idle_gpu_used_mib": self.base,
                "peak_gpu_delta_mib": self.peak - self.base}


def gpu_used():
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                         capture_output=True, text=True, check=True).stdout
    return float(out.strip())


class Check:
    def __init__(self, args):
        self.args = args
        self.device = args.device
        self.cuda = args.device.startswith("cuda")
        self.size = SIZES["cuda" if self.cuda else "cpu"]
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.work)
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.log = open(self.out / "check.log", "w")
        self.heal = str(Path(args.dist) / "heal")
        self.probe = str(Path(args.dist) / "gpu-probe")
        self.python = sys.executable
        self.started = time.monotonic()
        self.deadline = self.started + args.budget
        self.commands = []
        self.report = {"device": self.device, "sizes": self.size, "thresholds":
                       {"fp32_max_abs": FP32_MAX_ABS, "bf16_rel": BF16_REL},
                       "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "parts": {}, "commands": []}

    # -- running commands ------------------------------------------------------------------

    def run(self, cmd, timeout=300, gpu_memory=False, parse_json=True):
        """Runs cmd, logs its output, returns (command id, parsed stdout JSON or text, facts)."""
        cid = f"c{len(self.commands) + 1}"
        shown = " ".join(shlex.quote(rel(c)) if os.sep in str(c) else shlex.quote(str(c)) for c in cmd)
        # Nothing runs past the budget's 60 s of grace: the report must come back.
        left = self.deadline + 60 - time.monotonic()
        if left < 5:
            raise RuntimeError(f"out of time before: {shown}")
        timeout = min(timeout, left)
        self.log.write(f"\n=== [{cid}] {shown}\n")
        self.log.flush()
        poll = GpuMemory() if gpu_memory and self.cuda else None
        t = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=ROOT)
        chunks, killed = [], []
        reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)
        reader.start()
        timer = threading.Timer(timeout, lambda: (killed.append(True), proc.kill()))
        timer.start()
        # wait4 rather than wait: the child's own peak resident set comes with it.
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        reader.join()
        proc.returncode = rc = os.waitstatus_to_exitcode(status)
        if killed:
            rc = f"killed after {timeout:.0f} s"
        stdout = "".join(chunks)
        seconds = time.perf_counter() - t
        facts = {"seconds": round(seconds, 2), "rc": rc, "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}
        if poll:
            facts |= poll.stop()
        self.log.write(stdout)
        self.log.write(f"=== [{cid}] rc {rc}, {seconds:.1f} s\n")
        self.log.flush()
        self.commands.append({"id": cid, "command": shown, **facts})
        self.report["commands"] = self.commands
        if rc != 0:
            raise RuntimeError(f"[{cid}] {shown} exited {rc} (check.log)")
        if parse_json:
            return cid, json.loads(stdout), facts
        return cid, stdout, facts

    def part(self, name, fn):
        if time.monotonic() > self.deadline:
            self.report["parts"][name] = {"status": "skipped", "reason": "out of time budget"}
        else:
            t = time.monotonic()
            try:
                result = fn()
                self.report["parts"][name] = {"status": "ok", **result}
            except Exception as e:  # a failed part is reported; the next parts still run
                self.report["parts"][name] = {"status": "failed", "error": str(e)}
            self.report["parts"][name]["seconds"] = round(time.monotonic() - t, 1)
        self.write()

    # -- parts -----------------------------------------------------------------------------

    def facts(self):
        out = {}
        if self.cuda:
            cid1, smi, _ = self.run(["nvidia-smi"], parse_json=False)
            m = re.search(r"Driver Version:\s*([\d.]+).*CUDA Version:\s*([\d.]+)", smi)
            out["driver"], out["cuda_driver_api"] = (m.group(1), m.group(2)) if m else (None, None)
            q = "name,memory.total,clocks.max.sm,clocks.sm,power.limit,temperature.gpu"
            cid2, line, _ = self.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader", "-i", "0"], parse_json=False)
            out["smi_cids"] = f"{cid1}, {cid2}"
            out["gpu"] = dict(zip(q.split(","), (v.strip() for v in line.strip().split(","))))
        else:
            cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
            out["cpu"] = f"{cpu}, {os.cpu_count()} cores"
        out["python_cid"], out["python"], _ = self.run([self.python, REFERENCE, "facts"])
        out["probe_cid"], out["probe"], _ = self.run([self.probe, "info"])
        _, ldd, _ = self.run(["ldd", self.heal], parse_json=False)
        # libtorch's own files, the CUDA runtime, and anything missing: where each was found.
        out["heal_libraries"] = [re.sub(r" \(0x[0-9a-f]+\)$", "", l.strip()) for l in ldd.splitlines()
                                 if re.match(r"\s*(libtorch|libc10|libcudart)\S* =>", l) or "not found" in l]
        manifest = Path(self.args.dist) / "manifest.txt"
        out["build"] = manifest.read_text().splitlines() if manifest.exists() else []
        out["torch_venv"] = self.args.torch_venv
        return out

    def ceiling(self):
        s = self.size
        cid, m, _ = self.run([self.probe, "matmul", "--device", self.device, "--n", s["matmul_n"],
                              "--reps", s["matmul_reps"]])
        self.ceilings = {k: v["tflops"] for k, v in m["rates"].items()}
        return {"cid": cid, "how": "gpu-probe (heal's libtorch, through tch): mean of the timed "
                "n x n x n products after warm-up, random normal operands", **m}

    def parity(self):
        s = self.size
        base = self.work / "bert-base"
        cid_make, made, _ = self.run([self.python, REFERENCE, "make-base", base, "--hidden", s["hidden"],
                                      "--layers", s["layers"], "--heads", s["heads"], "--ffn", s["ffn"]])
        self.base = made
        self.base_cid = cid_make
        models = []
        for name in ("tiny-bert", "tiny-distilbert", "tiny-roberta", "bert-base"):
            try:
                models.append(self.parity_of(name, base))
            except Exception as e:  # the other models still run
                models.append({"model": name, "error": str(e), "rows": []})
        passed = all(r["pass"] for m in models for r in m["rows"]) and not any("error" in m for m in models)
        return {"pass": passed, "base_checkpoint": made, "base_cid": cid_make, "models": models,
                "reference_is": "HF transformers of the node's environment on the same device, eager "
                                "attention; fp32 = float32, bf16 = torch.autocast(bfloat16); golden = "
                                "tests/fixtures/golden (CPU, float32, made by make_fixtures.py)"}

    def parity_of(self, name, base):
        s = self.size
        ref = self.work / f"reference-{name}.safetensors"
        if name == "bert-base":
            model = base
            extra = ["--batch", s["parity_batch"], "--length", s["parity_len"]]
        else:
            model = FIXTURES / name
            extra = ["--inputs", FIXTURES / "golden" / f"{name}.safetensors"]
        cid_ref, _, _ = self.run([self.python, REFERENCE, "reference", model, ref, "--device", self.device, *extra])
        cid, p, _ = self.run([self.probe, "parity", "--model", model, "--reference", ref, "--device", self.device])
        rows = []
        for r in p["rows"]:
            pair = (r["heal"], r["reference"])
            if pair in (("fp32", "golden"), ("fp32", "fp32")):
                limit, value, bound = f"max abs < {FP32_MAX_ABS:g}", r["worst_max_abs"], FP32_MAX_ABS
            elif pair in (("bf16", "bf16"), ("bf16", "fp32")):
                limit, value, bound = f"rel < {BF16_REL:g}", r["worst_rel"], BF16_REL
            else:
                continue
            rows.append({"model": name, "heal": r["heal"], "reference": r["reference"],
                         "worst_max_abs": r["worst_max_abs"], "worst_rel": r["worst_rel"],
                         "limit": limit, "pass": value is not None and value < bound,
                         "cid": cid, "reference_cid": cid_ref,
                         "per_layer_max_abs": [h["max_abs"] for h in r["hidden_states"]],
                         "per_layer_rel": [h["rel"] for h in r["hidden_states"]],
                         "logits": r["logits"]})
        return {"model": name, "batch": p["batch"], "layers": p["layers"], "rows": rows,
                "hidden": self.base["config"]["hidden_size"] if name == "bert-base" else 32}

    def finetunes(self):
        runs = []
        for name, model, flags in TINY_RUNS:
            try:
                runs.append(self.finetune_tiny(name, model, flags))
            except Exception as e:  # the other runs still go
                runs.append({"name": name, "status": "did not run", "error": str(e), "train_losses": [],
                             "losses_falling": False, "seconds": None, "cid": None, "device": None,
                             "f1_weighted_final": None})
        passed = all(r["status"] == "ok" and r["losses_falling"] for r in runs)
        return {"pass": passed, "common_flags": " ".join(TINY_FLAGS), "runs": runs}

    def finetune_tiny(self, name, model, flags):
        out = self.work / "tiny" / name
        data = FIXTURES / "tiny-data"
        cmd = [self.heal, "finetune", "--model", FIXTURES / model, "--data", data / "train.jsonl",
               "--eval-data", data / "test.jsonl", "--out", out, "--device", self.device, *TINY_FLAGS, *flags]
        cid, _, facts = self.run(cmd, timeout=120, parse_json=False)
        result = json.loads((out / "result.json").read_text())
        run = json.loads((out / "run.json").read_text())
        losses = [json.loads(l)["train_loss"] for l in (out / "metrics.jsonl").read_text().splitlines() if l.strip()]
        return {"name": name, "cid": cid, "status": result["status"], "reason": result["reason"],
                "device": run["config"].get("device"), "precision": run["config"].get("precision"),
                "train_losses": losses, "losses_falling": len(losses) >= 2 and losses[-1] < losses[0],
                "f1_weighted_final": (result.get("final") or {}).get("f1_weighted"),
                "seconds": facts["seconds"]}

    def throughput(self):
        s = self.size
        data = self.work / "data"
        cid_data, _, _ = self.run([self.python, REFERENCE, "data", data, "--train", s["steps"] * s["batch"],
                                   "--eval", s["eval"], "--words", s["words"]])
        cfg = self.base["config"]
        n_ne = self.base["non_embedding_parameters"]
        L, d, layers = s["max_len"], cfg["hidden_size"], cfg["num_hidden_layers"]
        # Training FLOPs of one example: 6 per non-embedding parameter per token (forward and
        # backward), plus attention's two L x L products (12 * layers * L * d per token).
        flops_per_example = L * (6 * n_ne + 12 * layers * L * d)
        rows = []
        for peer, precision in (("heal", "fp32"), ("heal", "bf16"), ("HF", "fp32"), ("HF", "bf16")):
            if time.monotonic() > self.deadline:
                rows.append({"peer": peer, "precision": precision, "status": "skipped (time budget)"})
                continue
            try:
                rows.append(self.throughput_row(peer, precision, data, flops_per_example))
            except Exception as e:  # the other peers still run
                rows.append({"peer": peer, "precision": precision, "status": f"failed: {e}"})
            self.write_partial("throughput", {"rows": rows})
        return {"pass": all("examples_per_second" in r for r in rows),
                "data_cid": cid_data, "base_cid": self.base_cid, "flops_per_example": flops_per_example,
                "flops_formula": "L * (6 * N + 12 * layers * L * d), N = non-embedding parameters",
                "non_embedding_parameters": n_ne, "batch": s["batch"], "max_len": L,
                "steps": s["steps"], "rows": rows}

    def throughput_row(self, peer, precision, data, flops_per_example):
        s = self.size
        base = self.work / "bert-base"
        common = ["--epochs", "1", "--batch-size", s["batch"], "--max-len", s["max_len"], "--lr", "5e-5", "--seed", "42"]
        if peer == "heal":
            out = self.work / f"heal-{precision}"
            cmd = [self.heal, "finetune", "--model", base, "--data", data / "train.jsonl",
                   "--eval-data", data / "test.jsonl", "--eval-batch-size", "64", *common,
                   "--device", self.device, "--precision", precision, "--out", out]
            cid, _, facts = self.run(cmd, timeout=240, gpu_memory=True, parse_json=False)
            run = json.loads((out / "run.json").read_text())
            result = json.loads((out / "result.json").read_text())
            train_seconds = run["timings"]["train_seconds"]
            n = run["data"]["train_examples"]
            extra = {"status": result["status"], "train_loss": json.loads(
                (out / "metrics.jsonl").read_text().splitlines()[-1])["train_loss"]}
        else:
            out = self.work / f"hf-{precision}.json"
            cmd = [self.python, HF_FINETUNE, "--model", base, "--train", data / "train.jsonl",
                   "--eval", data / "test.jsonl", "--labels", data / "labels.json", *common,
                   "--padding", "max", "--precision", precision, "--device", self.device, "--out", out]
            cid, _, facts = self.run(cmd, timeout=240, gpu_memory=True, parse_json=False)
            r = json.loads(out.read_text())
            train_seconds, n = r["train_seconds"], r["train_examples"]
            extra = {"final_loss": r["final_loss"]}
            for k in ("peak_gpu_allocated_mib", "peak_gpu_reserved_mib"):
                if k in r:
                    extra[k] = r[k]
        rate = n / train_seconds
        achieved = rate * flops_per_example / 1e12
        ceilings = getattr(self, "ceilings", {})
        row = {"peer": peer, "precision": precision, "cid": cid, "train_examples": n,
               "train_seconds": train_seconds, "examples_per_second": rate,
               "steps_per_second": rate / s["batch"], "achieved_tflops": achieved,
               "mfu_vs_bf16_ceiling": achieved / ceilings["bf16"] if "bf16" in ceilings else None,
               "mfu_vs_own_precision_ceiling": achieved / ceilings[precision] if precision in ceilings else None,
               "wall_seconds": facts["seconds"], **extra}
        for k in ("peak_gpu_used_mib", "peak_gpu_delta_mib"):
            if k in facts:
                row[k] = facts[k]
        if not self.cuda:
            row["peak_rss_mib"] = facts["peak_rss_mib"]
        return row

    # -- the report ------------------------------------------------------------------------

    def write_partial(self, name, value):
        self.report["parts"][name] = {"status": "running", **value}
        self.write()

    def write(self):
        self.report["seconds"] = round(time.monotonic() - self.started, 1)
        (self.out / "report.json").write_text(json.dumps(self.report, indent=1, default=str) + "\n")
        (self.out / "report.md").write_text(markdown(self.report))

    def main(self):
        self.part("facts", self.facts)
        self.part("ceiling", self.ceiling)
        self.part("parity", self.parity)
        self.part("finetune", self.finetunes)
        if "parity" in self.report["parts"] and hasattr(self, "base"):
            self.part("throughput", self.throughput)
        else:
            self.report["parts"]["throughput"] = {"status": "skipped", "reason": "no base checkpoint"}
        parts = self.report["parts"]
        self.report["pass"] = all(p.get("status") == "ok" and p.get("pass", True) for p in parts.values())
        self.write()
        self.log.close()
        print((self.out / "report.md").read_text())
        return 0 if self.report["pass"] else 1


def fmt(x, spec=".3g"):
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return format(x, spec)
    return str(x)


def markdown(r):
    p = r["parts"]
    lines = [f"# heal CUDA check ({r['device']})", ""]
    verdict = {True: "PASS", False: "FAIL", None: "running"}[r.get("pass")]
    lines += [f"Started {r['started']}, {r['seconds']} s. Overall: **{verdict}**. Every number names the "
              "command that made it ([cN], listed at the end); check.log holds their output.", ""]
    if r["device"] == "cpu":
        lines += ["A CPU rehearsal: every size is scaled down, and timings on a shared machine measure nothing.", ""]
    f = p.get("facts", {})
    lines += ["## Device", ""]
    if f.get("status") == "ok":
        if "gpu" in f:
            g = f["gpu"]
            lines.append(f"- GPU: {g.get('name')}, {g.get('memory.total')}, SM clock max {g.get('clocks.max.sm')} "
                         f"(now {g.get('clocks.sm')}), power limit {g.get('power.limit')}; driver {f.get('driver')}, "
                         f"CUDA (driver API) {f.get('cuda_driver_api')} [{f.get('smi_cids')}]")
        else:
            lines.append(f"- CPU: {f.get('cpu')} (rehearsal: no GPU)")
        py = f["python"]
        lines.append(f"- Python side [{f['python_cid']}]: Python {py['python']}, torch {py['torch']} (CUDA {py['torch_cuda']}, "
                     f"cuDNN {py['cudnn']}), transformers {py['transformers']}, CUDA available: {py['cuda_available']}"
                     + (f", {py.get('device_name')} (capability {py.get('capability')}, {py.get('multiprocessors')} SMs)"
                        if py.get("device_name") else ""))
        pr = f["probe"]
        lines.append(f"- heal [{f['probe_cid']}]: heal {pr['heal']}, tch {pr['tch']}, built against libtorch "
                     f"{pr['libtorch_built_against']}; libtorch sees CUDA: {pr['cuda_available']} "
                     f"({pr['cuda_devices']} device(s), cuDNN {pr['cudnn_available']}), {pr['threads']} CPU threads")
        lines.append("- heal's libraries as loaded here (ldd):")
        lines += [f"  - `{l}`" for l in f["heal_libraries"]]
        if f["build"]:
            lines.append("- build: " + "; ".join(l for l in f["build"] if l and not l.startswith("  ")))
    else:
        lines.append(f"- {f.get('status')}: {f.get('error', f.get('reason', ''))}")
    c = p.get("ceiling", {})
    lines += ["", "## Matrix-product ceiling", ""]
    if c.get("status") == "ok":
        lines.append(f"{c['how']} [{c['cid']}]: n = {c['n']}, {c['reps']} products: "
                     + ", ".join(f"{k} {v['tflops']:.4g} TFLOP/s" for k, v in c["rates"].items()) + ".")
    else:
        lines.append(f"{c.get('status')}: {c.get('error', c.get('reason', ''))}")
    q = p.get("parity", {})
    lines += ["", "## Parity with HF transformers on the device", ""]
    if q.get("status") == "ok":
        lines.append(f"Reference: {q['reference_is']}. Hidden states compared over real tokens only. "
                     f"BERT-Base-shaped checkpoint made from seed 0 [{q['base_cid']}]: "
                     f"{q['base_checkpoint']['parameters']:,} parameters. Verdict: **{'pass' if q['pass'] else 'FAIL'}**.")
        lines += ["", "| model | batch | heal | reference | worst max abs | worst rel | limit | pass | cmd |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for m in q["models"]:
            if "error" in m:
                lines.append(f"| {m['model']} | | | | | | | NO: {m['error']} | |")
            for row in m["rows"]:
                lines.append(f"| {m['model']} ({m['layers']} x {m['hidden']}) | {'x'.join(map(str, m['batch']))} | {row['heal']} | "
                             f"{row['reference']} | {fmt(row['worst_max_abs'])} | {fmt(row['worst_rel'])} | {row['limit']} | "
                             f"{'yes' if row['pass'] else 'NO'} | {row['reference_cid']}, {row['cid']} |")
    else:
        lines.append(f"{q.get('status')}: {q.get('error', q.get('reason', ''))}")
    t = p.get("finetune", {})
    lines += ["", "## Fine-tunes of the tiny fixtures", ""]
    if t.get("status") == "ok":
        lines.append(f"Common flags: `{t['common_flags']}` (the run's own after them, in its command); tiny-data (96 train, 48 test). Verdict: "
                     f"**{'pass' if t['pass'] else 'FAIL'}** (status ok and the last epoch's training loss below the first's).")
        lines += ["", "| run | device | status | train loss by epoch | final F1 | s | cmd |", "|---|---|---|---|---|---|---|"]
        for run in t["runs"]:
            if run.get("error"):
                lines.append(f"| {run['name']} | | {run['status']}: {run['error']} | | | | |")
                continue
            lines.append(f"| {run['name']} | {run['device']} | {run['status']} | "
                         f"{' > '.join(f'{x:.3f}' for x in run['train_losses'])} | {fmt(run['f1_weighted_final'])} | "
                         f"{run['seconds']} | {run['cid']} |")
    else:
        lines.append(f"{t.get('status')}: {t.get('error', t.get('reason', ''))}")
    h = p.get("throughput", {})
    lines += ["", "## Throughput: BERT-Base shape, heal vs HF", ""]
    if h.get("rows"):
        if "flops_per_example" in h:
            lines.append(f"Batch {h['batch']}, length {h['max_len']} (every example reaches it: both peers pad to it), "
                         f"{h['steps']} steps, 1 epoch, AdamW lr 5e-5, dropout on; data [{h['data_cid']}], model "
                         f"[{h['base_cid']}]. FLOPs per example {h['flops_per_example']:.4g} = {h['flops_formula']} "
                         f"(N = {h['non_embedding_parameters']:,}). MFU = achieved / the measured ceiling above. "
                         "HF: examples/bench/hf_finetune.py --padding max (bf16 = autocast). Peak GPU memory: "
                         "nvidia-smi's memory.used polled every 100 ms, minus its idle value (context included); "
                         "HF also reports its allocator's peaks.")
        lines += ["", "| peer | precision | examples/s | train s | TFLOP/s | MFU (bf16 ceiling) | MFU (own precision) | "
                  "peak GPU MiB (delta) | HF allocator peak MiB | loss | cmd |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in h["rows"]:
            if "cid" not in row:
                lines.append(f"| {row['peer']} | {row['precision']} | {row['status']} |  |  |  |  |  |  |  |  |")
                continue
            mem = fmt(row.get("peak_gpu_delta_mib"), ".0f") if "peak_gpu_delta_mib" in row else (
                f"RSS {fmt(row.get('peak_rss_mib'), '.0f')} (cpu)")
            alloc = fmt(row.get("peak_gpu_allocated_mib"), ".0f") if "peak_gpu_allocated_mib" in row else ""
            loss = row.get("train_loss", row.get("final_loss"))
            lines.append(f"| {row['peer']} | {row['precision']} | {row['examples_per_second']:.1f} | {row['train_seconds']:.2f} | "
                         f"{row['achieved_tflops']:.2f} | {fmt(row['mfu_vs_bf16_ceiling'], '.1%')} | "
                         f"{fmt(row['mfu_vs_own_precision_ceiling'], '.1%')} | {mem} | {alloc} | {fmt(loss)} | {row['cid']} |")
    else:
        lines.append(f"{h.get('status')}: {h.get('error', h.get('reason', ''))}")
    lines += ["", "## Parts", ""]
    for name, part in p.items():
        lines.append(f"- {name}: {part.get('status')}, {part.get('seconds', '?')} s"
                     + (f": {part['error']}" if part.get("error") else ""))
    lines += ["", "## Commands", ""]
    for c in r["commands"]:
        lines.append(f"- [{c['id']}] ({c['seconds']} s, rc {c['rc']}) `{c['command']}`")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "runs" / "gpu-check"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--torch-venv", default="/opt/torch/.venv")
    ap.add_argument("--dist", default=str(ROOT / ".gpu-dist"))
    ap.add_argument("--work", default="/tmp/heal-gpu-check")
    ap.add_argument("--budget", type=float, default=360)
    args = ap.parse_args()
    for b in ("heal", "gpu-probe"):
        if not (Path(args.dist) / b).exists():
            sys.exit(f"check: {Path(args.dist) / b} missing: build it with examples/gpu/build.sh")
    sys.exit(Check(args).main())


if __name__ == "__main__":
    main()
