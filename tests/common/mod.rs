//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

pub fn golden(name: &str) -> HashMap<String, Tensor> {
    let path = fixtures()
        .join("golden")
        .join(format!("{name}.safetensors"));
    Tensor::read_safetensors(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .collect()
}

/// Max |a - b| over the positions where `mask` ([batch, seq]) is 1.
pub fn max_abs_diff_masked(a: &Tensor, b: &Tensor, mask: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    let m = mask.to_kind(tch::Kind::Float).unsqueeze(-1);
    ((a - b).abs() * m).max().double_value(&[])
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    (a - b).abs().max().double_value(&[])
}

/// The project's Python (the virtual environment made by .ci/setup), for tests whose reference
/// is HF transformers at run time.
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("HEAL_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("HEAL_VENV")));
    venv.join("bin").join("python")
}

pub fn heal_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_heal"))
}

/// Logits from HF transformers for `texts`, with the checkpoint loaded by from_pretrained
/// (tests/fixtures/score_with_hf.py), and the id2label it read.
pub fn hf_logits(checkpoint: &Path, texts: &[String]) -> (Vec<Vec<f64>>, serde_json::Value) {
    let python = venv_python();
    assert!(
        python.exists(),
        "{} missing: run `bash .ci/setup`",
        python.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let texts_file = tmp.path().join("texts.json");
    std::fs::write(&texts_file, serde_json::to_string(texts).unwrap()).unwrap();
    let out = std::process::Command::new(python)
        .arg(fixtures().join("score_with_hf.py"))
        .arg(checkpoint)
        .arg(&texts_file)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "HF failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let logits = serde_json::from_value(json["logits"].clone()).unwrap();
    (logits, json["id2label"].clone())
}

/// heal's logits for `texts`, one text per batch, with the checkpoint loaded by heal.
pub fn heal_logits(checkpoint: &Path, texts: &[String], num_labels: i64) -> Vec<Vec<f64>> {
    use heal::data::batching::Tokenized;
    let (model, _) = heal::model::SequenceClassifier::load(
        checkpoint,
        num_labels,
        heal::model::head::Pooling::Cls,
        tch::Device::Cpu,
    )
    .unwrap();
    let enc = heal::model::tokenizer::TextEncoder::from_dir(checkpoint, 128).unwrap();
    texts
        .iter()
        .map(|text| {
            let tok = Tokenized {
                encoded: enc.encode_batch(&[(text.clone(), None)]).unwrap(),
                labels: vec![0],
                pad_id: enc.pad_id,
                use_token_types: model.config.uses_token_types(),
                max_width: enc.max_len,
            };
            let logits =
                tch::no_grad(|| model.forward_t(&tok.collate(&[0], tch::Device::Cpu), false));
            Vec::<f64>::try_from(logits.squeeze_dim(0).to_kind(tch::Kind::Double)).unwrap()
        })
        .collect()
}

/// Asserts two logit tables agree to 1e-4.
pub fn assert_logits_close(ours: &[Vec<f64>], reference: &[Vec<f64>], what: &str) {
    assert_eq!(ours.len(), reference.len(), "{what}: row count");
    for (a, b) in ours.iter().zip(reference) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-4, "{what}: heal {a:?} vs HF {b:?}");
        }
    }
}

/// `heal finetune` of `model` (a folder) on the tiny 3-class data, train.jsonl / test.jsonl,
/// on the CPU, with `extra` flags; asserts success.
pub fn finetune_tiny(model: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let data = fixtures().join("tiny-data");
    let output = std::process::Command::new(heal_bin())
        .args(["finetune", "--model"])
        .arg(model)
        .arg("--data")
        .arg(data.join("train.jsonl"))
        .arg("--eval-data")
        .arg(data.join("test.jsonl"))
        .arg("--out")
        .arg(out)
        .args(["--device", "cpu"])
        .args(extra)
        .output()
        .expect("heal runs");
    assert!(
        output.status.success(),
        "heal finetune {extra:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs `heal ARGS`; asserts success.
#[allow(dead_code)]
pub fn heal_ok(args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new(heal_bin())
        .args(args)
        .output()
        .expect("heal runs");
    assert!(
        out.status.success(),
        "heal {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a Python script in the project's environment with `args` and parses its stdout as JSON.
#[allow(dead_code)]
pub fn python_json<T: serde::de::DeserializeOwned>(script: &str, args: &[&str]) -> T {
    let out = std::process::Command::new(venv_python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// Writes `dir/grid.toml`: a sweep grid of tiny-bert on the tiny dataset (the `[[dataset]]`
/// "tiny": tiny-data's train.jsonl, evaluated on its test.jsonl), with `base` as the lines of
/// `[base]` and `axes` as the lines of `[grid]` beside its model axis.
pub fn tiny_grid(dir: &Path, base: &str, axes: &str) -> PathBuf {
    let data = fixtures().join("tiny-data");
    let text = format!(
        "[base]\n{base}\n\n[grid]\nmodel = [\"{model}\"]\n{axes}\n\n[[dataset]]\nname = \"tiny\"\ndata = \"{train}\"\neval-data = \"{test}\"\n",
        model = fixtures().join("tiny-bert").display(),
        train = data.join("train.jsonl").display(),
        test = data.join("test.jsonl").display(),
    );
    let path = dir.join("grid.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// How many pixels of the PNG at `path` have exactly each of `colours`, decoded by Pillow (a
/// figure test then checks what the pixels show, not only that the file is a PNG).
pub fn png_colour_counts(path: &Path, colours: &[(u8, u8, u8)]) -> Vec<usize> {
    let script = r#"
import json, sys
from collections import Counter
from PIL import Image
counts = Counter(Image.open(sys.argv[1]).convert("RGB").get_flattened_data())
print(json.dumps([counts.get(tuple(c), 0) for c in json.loads(sys.argv[2])]))
"#;
    let wanted: Vec<[u8; 3]> = colours.iter().map(|c| [c.0, c.1, c.2]).collect();
    python_json(
        script,
        &[
            path.to_str().unwrap(),
            &serde_json::to_string(&wanted).unwrap(),
        ],
    )
}

/// The first `n` series colours of viz's palette, as (r, g, b).
pub fn palette(n: usize) -> Vec<(u8, u8, u8)> {
    viz::PALETTE[..n].iter().map(|c| (c.0, c.1, c.2)).collect()
}
