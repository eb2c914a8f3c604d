"""The peer of `heal finetune` in the benchmark suite: HF transformers on PyTorch, the loop
HF's Trainer runs (AdamW with PyTorch's fused step, HF's default optimiser on torch >= 2.8;
linear warm-up and decay; gradient clipping at 1.0; dropout on), without the Trainer's
logging and checkpointing around it.

  --padding max      pad every example to --max-len, as run_glue.py does by default
  --padding dynamic  pad each batch to its longest example, batches drawn with HF's own
                     LengthGroupedSampler (Trainer's group_by_length): HF at its best
  --grouping shuffled  with dynamic padding: the same length groups (1,600-example
                     megabatches sorted by length) but the batches in random order, as heal
                     draws them, instead of the sampler's long-to-short walk (for comparing F1
                     at the same batch order)
  --precision bf16   torch.autocast(bfloat16) around forward and loss
  --device cuda      run on a GPU (fp32 matrix products without TF32, PyTorch's default; bf16
                     under autocast(cuda)); the result then also has the allocator's peak GPU
                     memory, and the timers wait for the GPU
  --train head       a linear probe the HF way: the encoder frozen (requires_grad off), the
                     head (pooler + classifier) trained, every epoch re-encoding the data and
                     evaluating, as Trainer with eval_strategy="epoch" does

Prints one JSON object: examples/s, seconds, weighted F1 (scikit-learn).
"""
import argparse
import gzip
import json
import math
import os
import time


def read_jsonl(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--labels", required=True, help="labels.json (list of names)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--eval-batch-size", type=int, default=64)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--warmup", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--padding", choices=["max", "dynamic"], default="dynamic")
    ap.add_argument("--grouping", choices=["hf", "shuffled"], default="hf",
                    help="with --padding dynamic: hf = HF's LengthGroupedSampler (each 1,600-example "
                         "megabatch walked from long to short); shuffled = the same length groups, "
                         "batches in random order (heal's order)")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--pad-multiple", type=int, default=1,
                    help="with --padding dynamic: pad each batch to a multiple of this (the "
                         "pad_to_multiple_of of HF's DataCollatorWithPadding)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--train-mode", choices=["full", "head"], default="full")
    ap.add_argument("--eval-each-epoch", action="store_true")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()

    import torch
    from sklearn.metrics import f1_score
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup
    from transformers.trainer_pt_utils import LengthGroupedSampler

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    cuda = device.type == "cuda"

    def sync():
        # CUDA work is asynchronous: a timer read without waiting misses queued steps.
        if cuda:
            torch.cuda.synchronize(device)

    started = time.perf_counter()
    names = json.load(open(args.labels))
    train_rows, eval_rows = read_jsonl(args.train), read_jsonl(args.eval)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=len(names)).to(device)
    pad = "max_length" if args.padding == "max" else False

    def encode(rows):
        pairs = [r.get("text_pair") for r in rows]
        enc = tok([r["text"] for r in rows], pairs if any(p is not None for p in pairs) else None,
                  truncation=True, max_length=args.max_len, padding=pad)
        return [
            {k: enc[k][i] for k in enc.keys()} | {"labels": rows[i]["label"]}
            for i in range(len(rows))
        ]

    train, evaluation = encode(train_rows), encode(eval_rows)

    def collate(features):
        width = max(len(f["input_ids"]) for f in features)
        width = -(-width // args.pad_multiple) * args.pad_multiple
        out = {}
        for k in features[0]:
            if k == "labels":
                out[k] = torch.tensor([f[k] for f in features])
            else:
                fill = tok.pad_token_id if k == "input_ids" else 0
                out[k] = torch.tensor([f[k] + [fill] * (width - len(f[k])) for f in features])
        return {k: v.to(device) for k, v in out.items()}

    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16")
    prepare_seconds = time.perf_counter() - started

    def evaluate():
        model.eval()
        order = list(range(len(evaluation)))
        if args.padding == "dynamic":
            order.sort(key=lambda i: -len(evaluation[i]["input_ids"]))
        predicted = [0] * len(evaluation)
        t = time.perf_counter()
        with torch.inference_mode(), autocast:
            for s in range(0, len(order), args.eval_batch_size):
                idx = order[s:s + args.eval_batch_size]
                batch = collate([evaluation[i] for i in idx])
                batch.pop("labels")
                logits = model(**batch).logits
                for i, p in zip(idx, logits.argmax(-1).tolist()):
                    predicted[i] = p
        sync()
        seconds = time.perf_counter() - t
        gold = [r["labels"] for r in evaluation]
        return seconds, f1_score(gold, predicted, average="weighted"), sum(int(a == b) for a, b in zip(gold, predicted)) / len(gold)

    result = {
        "peer": f"hf-{args.padding}-{args.precision}",
        "train_examples": len(train), "eval_examples": len(evaluation),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "device": str(device),
        "prepare_seconds": prepare_seconds,
    }
    eval_seconds = 0.0
    steps_per_epoch = math.ceil(len(train) / args.batch_size)
    total = steps_per_epoch * args.epochs
    if args.train_mode == "head":
        base = getattr(model, model.base_model_prefix)
        for name, p in base.named_parameters():
            p.requires_grad_(name.startswith("pooler."))
    params = [p for p in model.parameters() if p.requires_grad]
    result["trainable_parameters"] = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0, eps=1e-8, fused=True)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    sched = get_linear_schedule_with_warmup(opt, math.ceil(args.warmup * total), total)
    generator = torch.Generator().manual_seed(args.seed)
    train_seconds = 0.0
    for epoch in range(args.epochs):
        if args.padding == "dynamic" and args.grouping == "shuffled":
            perm = torch.randperm(len(train), generator=generator).tolist()
            batches = []
            for g in range(0, len(perm), args.batch_size * 50):
                group = sorted(perm[g:g + args.batch_size * 50], key=lambda i: -len(train[i]["input_ids"]))
                batches += [group[b:b + args.batch_size] for b in range(0, len(group), args.batch_size)]
            order = [i for k in torch.randperm(len(batches), generator=generator).tolist() for i in batches[k]]
        elif args.padding == "dynamic":
            sampler = LengthGroupedSampler(args.batch_size, dataset=train,
                                           lengths=[len(f["input_ids"]) for f in train], generator=generator)
            order = list(iter(sampler))
        else:
            order = torch.randperm(len(train), generator=generator).tolist()
        model.train()
        sync()
        t = time.perf_counter()
        for s in range(0, len(order), args.batch_size):
            batch = collate([train[i] for i in order[s:s + args.batch_size]])
            with autocast:
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
        sync()
        train_seconds += time.perf_counter() - t
        if args.eval_each_epoch and epoch + 1 < args.epochs:
            eval_seconds += evaluate()[0]
    result |= {"train_seconds": train_seconds, "train_examples_per_second": len(train) * args.epochs / train_seconds,
               "final_loss": loss.item()}
    if cuda:
        result |= {"peak_gpu_allocated_mib": torch.cuda.max_memory_allocated(device) / 2**20,
                   "peak_gpu_reserved_mib": torch.cuda.max_memory_reserved(device) / 2**20}
    seconds, f1, accuracy = evaluate()
    eval_seconds += seconds
    result |= {"eval_seconds": eval_seconds, "last_eval_seconds": seconds, "eval_examples_per_second": len(evaluation) / seconds,
               "f1_weighted": f1, "accuracy": accuracy, "total_seconds": time.perf_counter() - started}
    text = json.dumps(result)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
