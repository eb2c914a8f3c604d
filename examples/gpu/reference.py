"""The Python side of examples/gpu/check.sh, run by the GPU node's own Python (its torch and
transformers): the references heal is compared with and the inputs both sides read.

  facts                       Python, torch, CUDA and the device as torch sees them (JSON)
  make-base DIR               a BERT-Base-shaped BertForSequenceClassification made from a seed
                              (transformers' own initialisation), saved as an HF folder with
                              the tiny fixtures' vocab.txt (the embedding table keeps BERT-Base's
                              30,522 rows); --hidden etc. make a smaller one for a CPU rehearsal
  reference MODEL OUT         inputs, every layer's hidden states and the logits of MODEL in eval
                              mode, on --device, under `fp32.` (float32) and `bf16.`
                              (torch.autocast bfloat16); inputs from --inputs (a committed golden
                              file of tests/fixtures/golden, whose outputs are copied unprefixed)
                              or a seeded random batch (--batch, --length)
  data DIR                    a seeded synthetic 3-class dataset of long texts (every example
                              reaches --max-len), for the throughput runs of both peers
"""
import argparse
import contextlib
import json
import random
import shutil
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"


def facts(args):
    import platform

    import torch
    import transformers

    out = {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "torch_lib": str(Path(torch.__file__).parent / "lib"),
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "transformers": transformers.__version__,
        "cuda_available": torch.cuda.is_available(),
        "threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        out |= {
            "device_name": p.name,
            "capability": f"{p.major}.{p.minor}",
            "multiprocessors": p.multi_processor_count,
            "memory_gib": p.total_memory / 2**30,
        }
    print(json.dumps(out))


def make_base(args):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(args.seed)
    cfg = BertConfig(vocab_size=30522, hidden_size=args.hidden, num_hidden_layers=args.layers,
                     num_attention_heads=args.heads, intermediate_size=args.ffn,
                     max_position_embeddings=512, type_vocab_size=2, num_labels=3)
    model = BertForSequenceClassification(cfg)
    out = Path(args.dir)
    model.save_pretrained(out)
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(FIXTURES / "tiny-bert" / name, out / name)
    n = sum(p.numel() for k, p in model.named_parameters())
    emb = sum(p.numel() for k, p in model.named_parameters() if ".embeddings." in k)
    print(json.dumps({"dir": str(out), "parameters": n, "non_embedding_parameters": n - emb,
                      "config": {k: getattr(cfg, k) for k in ("hidden_size", "num_hidden_layers",
                                 "num_attention_heads", "intermediate_size", "vocab_size")}}))


def random_batch(vocab, batch, length, seed):
    """Seeded ids over the whole vocabulary, real lengths from half to full (the rest padding),
    segment 1 on the second half of the real tokens of every other row."""
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, length), generator=g)
    lengths = torch.randint(length // 2, length + 1, (batch,), generator=g)
    lengths[0] = length
    pos = torch.arange(length).unsqueeze(0)
    mask = (pos < lengths.unsqueeze(1)).long()
    types = ((pos >= (lengths // 2).unsqueeze(1)) & (torch.arange(batch) % 2 == 1).unsqueeze(1)).long() * mask
    ids = ids * mask  # [PAD] is 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def reference(args):
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForSequenceClassification

    device = torch.device(args.device)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, attn_implementation="eager")
    model.eval().to(device)
    golden = load_file(args.inputs) if args.inputs else {}
    if golden:
        inputs = {k: golden[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    else:
        inputs = random_batch(model.config.vocab_size, args.batch, args.length, args.seed)
    kwargs = {k: v.to(device) for k, v in inputs.items()}
    if model.config.model_type == "distilbert":
        kwargs.pop("token_type_ids")
    tensors = {k: v.to(torch.int64).contiguous() for k, v in inputs.items()}
    # The committed golden outputs travel along, unprefixed: a third reference.
    tensors |= {k: v for k, v in golden.items() if k == "logits" or k.startswith("hidden_states.")}
    for prefix, bf16 in (("fp32.", False), ("bf16.", True)):
        autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with torch.no_grad(), autocast:
            out = model(**kwargs, output_hidden_states=True)
        tensors[prefix + "logits"] = out.logits.float().cpu().contiguous()
        for i, h in enumerate(out.hidden_states):
            tensors[f"{prefix}hidden_states.{i}"] = h.float().cpu().contiguous()
    save_file(tensors, args.out)
    print(json.dumps({"out": args.out, "batch": list(tensors["input_ids"].shape),
                      "layers": len(out.hidden_states) - 1, "device": str(device)}))


def data(args):
    words = [w for w in (FIXTURES / "tiny-bert" / "vocab.txt").read_text().split()
             if w.isalpha() and len(w) > 1]
    topics = [words[i::3] for i in range(3)]
    rng = random.Random(args.seed)
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, n in (("train.jsonl", args.train), ("test.jsonl", args.eval)):
        with open(out / name, "w") as f:
            for _ in range(n):
                label = rng.randrange(3)
                # Mostly words of the label's topic, so that the loss can fall.
                text = " ".join(rng.choice(topics[label] if rng.random() < 0.3 else words)
                                for _ in range(args.words))
                f.write(json.dumps({"text": text, "label": label}) + "\n")
    (out / "labels.json").write_text(json.dumps(["a", "b", "c"]) + "\n")
    print(json.dumps({"dir": str(out), "train": args.train, "eval": args.eval, "words": args.words}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("facts")
    p = sub.add_parser("make-base")
    p.add_argument("dir")
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--ffn", type=int, default=3072)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("reference")
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--device", default="cuda")
    p.add_argument("--inputs")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--length", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("data")
    p.add_argument("dir")
    p.add_argument("--train", type=int, default=9600)
    p.add_argument("--eval", type=int, default=320)
    p.add_argument("--words", type=int, default=160)
    p.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    {"facts": facts, "make-base": make_base, "reference": reference, "data": data}[args.cmd](args)


if __name__ == "__main__":
    main()
