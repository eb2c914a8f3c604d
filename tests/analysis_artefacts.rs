//! RUN/analysis/, the artefacts a run keeps for the study report: weights.json's statistics,
//! histogram counts and change sums equal numpy's on the saved checkpoints and the original
//! one; vectors.safetensors' vectors equal `heal embed`'s on the same examples; the sample is
//! stratified (counts by hand) and the same whatever the run's seed; a BERT-Base-shaped cell
//! stays within the issue's 50 MB and `heal sweep --plan` estimates it within 10%; the plan of
//! the paper's Table 2 grid prints its disk without the network.

mod common;

use common::{finetune_tiny, fixtures, heal_ok, python_json};
use heal::run_dir::analysis::{
    AnalysisVectors, AnalysisWeights, StageCounts, HISTOGRAM_BINS, WEIGHT_STAGES,
};
use heal::run_dir::RunDir;
use heal::train::config::EmbeddingStage;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use tch::Tensor;

/// numpy's numbers for weights.json: argv = original checkpoint, checkpoint-corrupted,
/// checkpoint (best), weights.json (read for tensor names, groups and the stated edges only).
const WEIGHTS_REFERENCE: &str = r#"
import json, sys
import numpy as np
from safetensors.numpy import load_file
orig, corr, best = (load_file(p) for p in sys.argv[1:4])
art = json.load(open(sys.argv[4]))
def moments(x):
    return dict(mean=float(x.mean()), std=float(x.std()), mean_abs=float(np.abs(x).mean()),
                max_abs=float(np.abs(x).max()))
tensors, groups = {}, {}
for t in art["tensors"]:
    name = t["tensor"]
    c = corr[name].astype(np.float64).ravel()
    p = orig.get(name)
    # A head tensor the checkpoint lacks is drawn when loaded; the damage leaves it alone.
    p = c if p is None or p.size != c.size else p.astype(np.float64).ravel()
    h = best[name].astype(np.float64).ravel()
    tensors[name] = dict(count=int(p.size), pretrained=moments(p), corrupted=moments(c),
        healed=moments(h), pretrained_sq=float((p ** 2).sum()), corrupted_sq=float((c ** 2).sum()),
        healed_minus_pretrained_sq=float(((h - p) ** 2).sum()),
        healed_minus_corrupted_sq=float(((h - c) ** 2).sum()))
    g = groups.setdefault(t["group"], dict(p=[], c=[], h=[]))
    for key, x in (("p", p), ("c", c), ("h", h)):
        g[key].append(np.abs(x))
hist = {}
for entry in art["histograms"]:
    g = groups[entry["group"]]
    m = np.concatenate(g["p"]).max()
    d = np.floor(np.log10(m)) if m > 0 else 0.0  # an all-zero group (biases) takes m = 1
    out = dict(edges=(10.0 ** np.linspace(d - 5, d + 1, 101)).tolist())
    edges = np.array(entry["edges"])
    for stage, key in (("pretrained", "p"), ("corrupted", "c"), ("healed", "h")):
        v = np.concatenate(g[key])
        inside = v[(v >= edges[0]) & (v <= edges[-1])]
        i = np.minimum(np.searchsorted(edges, inside, side="right") - 1, 99)
        out[stage] = dict(below=int((v < edges[0]).sum()), above=int((v > edges[-1]).sum()),
                          counts=np.bincount(i, minlength=100).tolist())
    hist[entry["group"]] = out
print(json.dumps(dict(tensors=tensors, histograms=hist)))
"#;

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()) + 1e-15
}

/// `heal embed` of `source` into `out` (the tiny test split when `source` is a checkpoint).
fn embed(source: &Path, out: &Path, layers: &str) -> HashMap<String, Tensor> {
    let data = fixtures().join("tiny-data");
    let mut args: Vec<String> = vec!["embed".into(), source.display().to_string()];
    if !RunDir::is_run(source) {
        for (flag, file) in [("--data", "train.jsonl"), ("--eval-data", "test.jsonl")] {
            args.push(flag.into());
            args.push(data.join(file).display().to_string());
        }
    }
    args.extend(["--layers", layers, "--device", "cpu", "--out"].map(String::from));
    args.push(out.display().to_string());
    heal_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    Tensor::read_safetensors(out.join("embeddings.safetensors"))
        .unwrap()
        .into_iter()
        .collect()
}

/// Every row of `ours` equals the row of `theirs` ([eval examples, hidden]) it was sampled
/// from, within float16's rounding.
fn assert_rows_equal(ours: &ndarray::Array2<f32>, theirs: &Tensor, examples: &[usize], what: &str) {
    let theirs = theirs.to_kind(tch::Kind::Float);
    for (row, &ex) in examples.iter().enumerate() {
        let reference = Vec::<f32>::try_from(theirs.get(ex as i64)).unwrap();
        for (x, y) in ours.row(row).iter().zip(&reference) {
            assert!(
                (x - y).abs() <= y.abs() / 1024.0 + 1e-5,
                "{what}: example {ex}: {x} vs heal embed's {y}"
            );
        }
    }
}

#[test]
fn tiny_run_artefacts_equal_numpy_and_heal_embed() {
    let tmp = tempfile::tempdir().unwrap();
    let model = fixtures().join("tiny-bert");
    let run = tmp.path().join("run");
    #[rustfmt::skip]
    finetune_tiny(&model, &run, &["--save-checkpoint", "corrupted,best", "--corrupt", "top:50%",
        "--epochs", "2", "--lr", "3e-3", "--seed", "1", "--analysis-examples", "20"]);
    let dir = RunDir::at(&run);
    let weights = AnalysisWeights::read(&dir.analysis_weights()).unwrap();
    let checkpoint = |d: &Path| d.join("model.safetensors").display().to_string();
    let reference: serde_json::Value = python_json(
        WEIGHTS_REFERENCE,
        &[
            &checkpoint(&model),
            &checkpoint(&run.join("checkpoint-corrupted")),
            &checkpoint(&run.join("checkpoint")),
            &dir.analysis_weights().display().to_string(),
        ],
    );
    assert_eq!(weights.tensors.len(), 41, "every float parameter");
    let mut damaged = 0;
    for t in &weights.tensors {
        let r = &reference["tensors"][&t.tensor];
        assert_eq!(t.count as u64, r["count"].as_u64().unwrap(), "{}", t.tensor);
        for (stage, m) in [
            ("pretrained", &t.pretrained),
            ("corrupted", &t.corrupted),
            ("healed", &t.healed),
        ] {
            for (key, ours) in [
                ("mean", m.mean),
                ("std", m.std),
                ("mean_abs", m.mean_abs),
                ("max_abs", m.max_abs),
            ] {
                let theirs = r[stage][key].as_f64().unwrap();
                assert!(
                    close(ours, theirs, 1e-9),
                    "{} {stage} {key}: {ours} vs numpy {theirs}",
                    t.tensor
                );
            }
        }
        for (key, ours) in [
            ("pretrained_sq", t.pretrained_sq),
            ("corrupted_sq", t.corrupted_sq),
            ("healed_minus_pretrained_sq", t.healed_minus_pretrained_sq),
            ("healed_minus_corrupted_sq", t.healed_minus_corrupted_sq),
        ] {
            let theirs = r[key].as_f64().unwrap();
            assert!(
                close(ours, theirs, 1e-9),
                "{} {key}: {ours} vs {theirs}",
                t.tensor
            );
        }
        if t.corrupted != t.pretrained {
            assert_eq!(t.layer, Some(2), "{} damaged", t.tensor);
            damaged += 1;
        }
    }
    // top:50% of two layers re-initialises layer 2: its six weight matrices change (tiny-bert's
    // biases and LayerNorms still hold the 0 and 1 that reinit gives them again).
    assert_eq!(damaged, 6);
    let parameters: usize = weights.tensors.iter().map(|t| t.count).sum();
    for h in &weights.histograms {
        let r = &reference["histograms"][serde_json::to_value(h.group).unwrap().as_str().unwrap()];
        let want: Vec<f64> = serde_json::from_value(r["edges"].clone()).unwrap();
        assert_eq!(h.edges.len(), HISTOGRAM_BINS + 1);
        for (a, b) in h.edges.iter().zip(&want) {
            assert!(close(*a, *b, 1e-12), "{:?} edges: {a} vs {b}", h.group);
        }
        for stage in WEIGHT_STAGES {
            let name = serde_json::to_value(stage).unwrap();
            let theirs: StageCounts =
                serde_json::from_value(r[name.as_str().unwrap()].clone()).unwrap();
            assert_eq!(h.counts(stage), &theirs, "{:?} {stage:?}", h.group);
        }
    }
    for stage in WEIGHT_STAGES {
        let total: u64 = weights
            .histograms
            .iter()
            .map(|h| h.counts(stage).total())
            .sum();
        assert_eq!(
            total as usize, parameters,
            "{stage:?}: every parameter counted once"
        );
    }

    // The vectors: best.layer.* equal `heal embed RUN` (the best checkpoint) on the sampled
    // examples; corrupted.layer.2 equals it on the corrupted checkpoint.
    let vectors = AnalysisVectors::read(&dir.analysis_vectors()).unwrap();
    let emb = embed(&run, &tmp.path().join("emb"), "all");
    assert_eq!(vectors.best_layers().len(), 3);
    for (layer, a) in vectors.best_layers() {
        let what = format!("best.layer.{layer}");
        assert_rows_equal(a, &emb[&format!("layer_{layer}")], &vectors.examples, &what);
    }
    let labels = Vec::<i64>::try_from(&emb["labels"]).unwrap();
    for (row, &ex) in vectors.examples.iter().enumerate() {
        assert_eq!(vectors.labels[row], labels[ex]);
    }
    let corrupted = embed(
        &run.join("checkpoint-corrupted"),
        &tmp.path().join("embc"),
        "2",
    );
    let c = vectors
        .get(EmbeddingStage::Corrupted, 2)
        .expect("corrupted.layer.2");
    assert_rows_equal(
        c,
        &corrupted["layer_2"],
        &vectors.examples,
        "corrupted.layer.2",
    );
    assert!(
        vectors.get(EmbeddingStage::Pretrained, 2).is_none(),
        "only clean runs keep it"
    );
    assert_eq!((vectors.sample_seed, vectors.eval_examples), (0, 48));

    // The sample: 20 of 48 (business 14, sport 15, tech 19): quotas 5.83, 6.25, 7.92, floors
    // 5 + 6 + 7 = 18, the two units left to the largest remainders (tech .92, business .83).
    let count = |c: i64| vectors.labels.iter().filter(|&&l| l == c).count();
    assert_eq!((count(0), count(1), count(2)), (6, 6, 8));
    assert!(vectors.examples.windows(2).all(|w| w[0] < w[1]));

    // A clean run with another seed: the same examples, its pretrained final layer equal to
    // `heal embed` of the checkpoint as it is.
    let clean = tmp.path().join("clean");
    #[rustfmt::skip]
    finetune_tiny(&model, &clean, &["--epochs", "1", "--seed", "2", "--analysis-examples", "20"]);
    let other = AnalysisVectors::read(&RunDir::at(&clean).analysis_vectors()).unwrap();
    assert_eq!(
        (&other.examples, &other.labels),
        (&vectors.examples, &vectors.labels)
    );
    assert!(other.get(EmbeddingStage::Corrupted, 2).is_none());
    let pretrained = embed(&model, &tmp.path().join("embp"), "2");
    let p = other
        .get(EmbeddingStage::Pretrained, 2)
        .expect("pretrained.layer.2");
    assert_rows_equal(
        p,
        &pretrained["layer_2"],
        &other.examples,
        "pretrained.layer.2",
    );

    // 0 turns them off.
    let off = tmp.path().join("off");
    finetune_tiny(&model, &off, &["--epochs", "1", "--analysis-examples", "0"]);
    assert!(!RunDir::at(&off).analysis_dir().exists());
}

#[test]
fn a_failed_run_writes_no_artefacts() {
    // libtorch's Adam overflows at this learning rate and fails mid-step (as in finetune_run).
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let data = fixtures().join("tiny-data");
    let out = Command::new(common::heal_bin())
        .args(["finetune", "--model"])
        .arg(fixtures().join("tiny-bert"))
        .arg("--data")
        .arg(data.join("train.jsonl"))
        .arg("--eval-data")
        .arg(data.join("test.jsonl"))
        .args([
            "--lr",
            "1e38",
            "--grad-clip",
            "0",
            "--warmup",
            "0",
            "--device",
            "cpu",
        ])
        .args(["--fused-optimizer", "false", "--out"])
        .arg(&run)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(RunDir::at(&run).is_finished(), "result.json says failed");
    assert!(!RunDir::at(&run).analysis_dir().exists());
}

/// Total bytes of the files in `dir`.
fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// "disk: about 43.6 MB for 1 cell (...)" -> 43.6e6.
fn estimated_bytes(stdout: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("disk: "))
        .unwrap_or_else(|| panic!("no disk line in {stdout}"));
    let rest = line.split("about ").nth(1).expect("about N UNIT");
    let mut words = rest.split_whitespace();
    let value: f64 = words.next().unwrap().parse().unwrap();
    let unit = match words.next().unwrap() {
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => panic!("unit {other} in {line}"),
    };
    value * unit
}

/// BERT-Base's shape with random weights (HF transformers, seed 0), the minilm-l6 tokenizer
/// (BERT's uncased 30,522-word vocabulary).
const MAKE_BERT_BASE: &str = r#"
import json, shutil, sys, os
import torch
from transformers import BertConfig, BertForSequenceClassification
torch.manual_seed(0)
config = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072, num_labels=2)
BertForSequenceClassification(config).save_pretrained(sys.argv[1])
for f in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
    if os.path.exists(os.path.join(sys.argv[2], f)):
        shutil.copy(os.path.join(sys.argv[2], f), sys.argv[1])
print(json.dumps(sorted(os.listdir(sys.argv[1]))))
"#;

#[test]
fn a_bert_base_cell_stays_within_budget_and_the_plan_estimates_it() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("bert-base");
    let minilm = heal::defaults::minilm_l6_dir().unwrap();
    let files: Vec<String> = python_json(
        MAKE_BERT_BASE,
        &[model.to_str().unwrap(), minilm.to_str().unwrap()],
    );
    assert!(
        files.contains(&"model.safetensors".to_string()),
        "{files:?}"
    );
    let words = [
        "good", "bad", "fine", "poor", "great", "awful", "nice", "sad",
    ];
    let rows = |n: usize| -> String {
        (0..n)
            .map(|i| {
                let text = words[i % 8];
                serde_json::json!({"text": text, "label": (i % 2).to_string()}).to_string() + "\n"
            })
            .collect()
    };
    let (train, eval) = (
        tmp.path().join("train.jsonl"),
        tmp.path().join("eval.jsonl"),
    );
    std::fs::write(&train, rows(16)).unwrap();
    std::fs::write(&eval, rows(2000)).unwrap();
    let run = tmp.path().join("run");
    #[rustfmt::skip]
    let trained = heal_ok(&["finetune", "--model", model.to_str().unwrap(), "--data", train.to_str().unwrap(),
        "--eval-data", eval.to_str().unwrap(), "--out", run.to_str().unwrap(), "--device", "cpu",
        "--epochs", "1", "--max-len", "8", "--batch-size", "8"]);
    let dir = RunDir::at(&run);
    let written = folder_bytes(&dir.analysis_dir());
    assert!(written <= 50_000_000, "{written} bytes of artefacts");
    let vectors = AnalysisVectors::read(&dir.analysis_vectors()).unwrap();
    assert_eq!(vectors.best_layers().len(), 13);
    assert_eq!(vectors.best_layers()[12].1.dim(), (2000, 768));
    assert!(vectors.get(EmbeddingStage::Pretrained, 12).is_some());

    let grid = tmp.path().join("grid.toml");
    let text = format!(
        "[base]\nepochs = 1\nmax-len = 8\nbatch-size = 8\ndevice = \"cpu\"\n\n[grid]\nmodel = [{:?}]\n\n[[dataset]]\nname = \"short\"\ndata = {:?}\neval-data = {:?}\n",
        model.display().to_string(),
        train.display().to_string(),
        eval.display().to_string()
    );
    std::fs::write(&grid, text).unwrap();
    let sweep = tmp.path().join("sweep");
    let out = heal_ok(&[
        "sweep",
        "--config",
        grid.to_str().unwrap(),
        "--out",
        sweep.to_str().unwrap(),
        "--plan",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let estimate = estimated_bytes(&stdout);
    assert!(
        (estimate - written as f64).abs() <= 0.1 * written as f64,
        "estimated {estimate} bytes, written {written}: {stdout}"
    );
    let log = String::from_utf8_lossy(&trained.stderr);
    let made = log.lines().filter(|l| l.contains("analysis artefacts"));
    eprintln!(
        "BERT-Base-shaped cell: {written} bytes; {}; {stdout}",
        made.collect::<Vec<_>>().join("; ")
    );
}

#[test]
fn the_table2_plan_prints_its_disk_from_cached_configs() {
    let tmp = tempfile::tempdir().unwrap();
    let hf_home = tmp.path().join("hf");
    // (hub id, config.json): the three models' published shapes.
    let bert = |hidden: u64, layers: u64, heads: u64| {
        serde_json::json!({"model_type": "bert", "vocab_size": 30522, "hidden_size": hidden,
            "num_hidden_layers": layers, "num_attention_heads": heads,
            "intermediate_size": 4 * hidden, "max_position_embeddings": 512, "type_vocab_size": 2})
    };
    let models = [
        ("google-bert/bert-base-uncased", bert(768, 12, 12)),
        ("google-bert/bert-large-uncased", bert(1024, 24, 16)),
        (
            "distilbert/distilbert-base-uncased",
            serde_json::json!({"model_type": "distilbert", "vocab_size": 30522, "dim": 768,
                "n_layers": 6, "n_heads": 12, "hidden_dim": 3072, "max_position_embeddings": 512}),
        ),
    ];
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let put = |name: &str, config: &serde_json::Value| {
        let repo = hf_home
            .join("hub")
            .join(format!("models--{}", name.replace('/', "--")));
        let snapshot = repo.join("snapshots").join(commit);
        std::fs::create_dir_all(&snapshot).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), commit).unwrap();
        std::fs::write(snapshot.join("config.json"), config.to_string()).unwrap();
    };
    let grid = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/grids/table2.toml");
    let plan = |sweep: &str| -> String {
        let out = Command::new(common::heal_bin())
            .args([
                "sweep",
                "--config",
                grid.to_str().unwrap(),
                "--plan",
                "--out",
            ])
            .arg(tmp.path().join(sweep))
            .env("HF_HOME", &hf_home)
            .env_remove("HF_HUB_CACHE")
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // DistilBERT not fetched: its cells are unknown, the others counted.
    for (name, config) in &models[..2] {
        put(name, config);
    }
    let partial = plan("a");
    assert!(
        partial.contains("disk: unknown for 144 of 432 cells")
            && partial.contains("distilbert/distilbert-base-uncased")
            && partial.contains("for the other 288 cells"),
        "{partial}"
    );
    put(models[2].0, &models[2].1);
    let stdout = plan("b");
    // By hand: per cell, (layers + 2) float16 matrices of 2,000 x hidden (every layer and the
    // embeddings at the best epoch, one more final layer), 144 cells per model; weights.json
    // adds well under 1%.
    let expected: f64 = [(12.0, 768.0), (24.0, 1024.0), (6.0, 768.0)]
        .iter()
        .map(|(l, h)| 144.0 * (l + 2.0) * 2000.0 * h * 2.0)
        .sum();
    let estimate = estimated_bytes(&stdout);
    assert!(
        stdout.contains("for 432 cells") && stdout.contains("no checkpoints"),
        "{stdout}"
    );
    assert!(
        (estimate - expected).abs() <= 0.02 * expected,
        "{estimate} vs {expected} by hand: {stdout}"
    );
}
