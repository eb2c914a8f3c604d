//! `heal embed`: .npy files byte-identical to numpy.save's, per-layer [CLS] vectors equal to HF
//! transformers' hidden states, run directories as sources, and the TensorBoard export.

mod common;

use common::{fixtures, golden, heal_bin, max_abs_diff};
use heal::npy;
use std::path::Path;
use std::process::Command;
use tch::Tensor;

#[test]
fn npy_bytes_equal_numpy_save() {
    let dir = fixtures().join("golden");
    let f: Vec<f32> = (0..15).map(|i| i as f32 / 7.0).collect();
    assert_eq!(
        npy::encode(&f, &[3, 5]),
        std::fs::read(dir.join("npy_f32_3x5.npy")).unwrap()
    );
    assert_eq!(
        npy::encode(&[3i64, -1, 0, 7], &[4]),
        std::fs::read(dir.join("npy_i64_4.npy")).unwrap()
    );
    // numpy.linspace(-1, 1, 38400, dtype=float32): computed in float64, then rounded.
    let n = 38400;
    let lin: Vec<f32> = (0..n)
        .map(|i| (-1.0 + 2.0 * i as f64 / (n - 1) as f64) as f32)
        .collect();
    let ours = npy::encode(&lin, &[100, 384]);
    let theirs = std::fs::read(dir.join("npy_f32_100x384.npy")).unwrap();
    assert_eq!(ours[..128], theirs[..128], "header");
    assert_eq!(ours.len(), theirs.len());
}

fn embed(args: &[&str]) -> std::process::Output {
    let out = Command::new(heal_bin())
        .arg("embed")
        .args(args)
        .args(["--device", "cpu"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "heal embed {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn read(dir: &Path) -> std::collections::HashMap<String, Tensor> {
    Tensor::read_safetensors(dir.join("embeddings.safetensors"))
        .unwrap()
        .into_iter()
        .collect()
}

#[test]
fn cls_vectors_of_every_layer_equal_hf_hidden_states() {
    let tmp = tempfile::tempdir().unwrap();
    // The texts the golden outputs were made from, as a data file.
    let refs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("golden/tokens.json")).unwrap(),
    )
    .unwrap();
    let texts = refs["tiny-bert"]["texts"].as_array().unwrap();
    let data = tmp.path().join("texts.jsonl");
    let rows: Vec<String> = texts
        .iter()
        .map(|t| serde_json::json!({"text": t, "label": 0}).to_string())
        .collect();
    std::fs::write(&data, rows.join("\n") + "\n").unwrap();
    let out = tmp.path().join("emb");
    let model = fixtures().join("tiny-bert");
    embed(&[
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--eval-data",
        data.to_str().unwrap(),
        "--max-len",
        "32",
        "--out",
        out.to_str().unwrap(),
    ]);
    let ours = read(&out);
    let g = golden("tiny-bert");
    for layer in 0..=2 {
        let reference = g[&format!("hidden_states.{layer}")].select(1, 0);
        let d = max_abs_diff(&ours[&format!("layer_{layer}")], &reference);
        assert!(d < 1e-4, "layer {layer}: [CLS] differs from HF by {d:e}");
    }
    // The .npy of a layer holds the same numbers as the safetensors file.
    let npy = std::fs::read(out.join("layer_2.npy")).unwrap();
    let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    let values: Vec<f32> = npy[10 + header_len..]
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let st = Vec::<f32>::try_from(ours["layer_2"].flatten(0, -1)).unwrap();
    assert_eq!(values, st);
    assert!(String::from_utf8_lossy(&npy[10..10 + header_len]).contains("'shape': (3, 32)"));
}

#[test]
fn run_directory_source_chosen_layers_and_projector_export() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    common::finetune_tiny(
        &fixtures().join("tiny-bert"),
        &run,
        &["--epochs", "1", "--save-checkpoint"],
    );
    let out = tmp.path().join("emb");
    embed(&[
        run.to_str().unwrap(),
        "--layers",
        "0,2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let t = read(&out);
    assert_eq!(
        t["layer_2"].size(),
        vec![48, 32],
        "the run's 48 evaluation examples"
    );
    assert!(!t.contains_key("layer_1"));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["layers"], serde_json::json!([0, 2]));
    assert_eq!(
        manifest["label_names"],
        serde_json::json!(["business", "sport", "tech"])
    );
    let tensors = std::fs::read_to_string(out.join("projector/tensors.tsv")).unwrap();
    let meta = std::fs::read_to_string(out.join("projector/metadata.tsv")).unwrap();
    assert_eq!(tensors.lines().count(), 48);
    assert!(tensors.lines().all(|l| l.split('\t').count() == 32));
    assert_eq!(
        meta.lines().count(),
        49,
        "a header row, then one row per example"
    );
    assert!(meta.lines().nth(1).unwrap().ends_with("\tsport") || meta.contains("\tbusiness"));
}

#[test]
fn a_layer_past_the_depth_is_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fixtures().join("tiny-data").join("test.jsonl");
    let out = Command::new(heal_bin())
        .args(["embed"])
        .arg(fixtures().join("tiny-bert"))
        .arg("--data")
        .arg(&data)
        .arg("--eval-data")
        .arg(&data)
        .args(["--layers", "0,9", "--out"])
        .arg(tmp.path().join("x"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--layers") && stderr.contains("2 layers"),
        "{stderr}"
    );
    assert!(!tmp.path().join("x").exists());
}

#[test]
fn trainer_dumps_pretrained_corrupted_and_best_stages() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let data = fixtures().join("tiny-data");
    let model = fixtures().join("tiny-bert");
    common::finetune_tiny(
        &model,
        &run,
        &[
            "--epochs",
            "2",
            "--lr",
            "3e-3",
            "--batch-size",
            "8",
            "--corrupt",
            "top:1",
            "--dump-embeddings",
            "--save-checkpoint",
        ],
    );
    let stage = |s: &str| read(&run.join("embeddings").join(s));
    let (pre, cor, best) = (stage("pretrained"), stage("corrupted"), stage("best"));
    // Layer 2 (the top one) was damaged; what lies below it is untouched.
    for layer in ["layer_0", "layer_1"] {
        assert_eq!(max_abs_diff(&pre[layer], &cor[layer]), 0.0, "{layer}");
    }
    assert!(max_abs_diff(&pre["layer_2"], &cor["layer_2"]) > 1e-3);
    // The pretrained stage equals heal embed on the checkpoint, the best stage heal embed on
    // the saved best checkpoint.
    let check = |source: &Path, dumped: &std::collections::HashMap<String, Tensor>, name: &str| {
        let out = tmp.path().join(name);
        embed(&[
            source.to_str().unwrap(),
            "--data",
            data.join("train.jsonl").to_str().unwrap(),
            "--eval-data",
            data.join("test.jsonl").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let fresh = read(&out);
        for layer in ["layer_0", "layer_1", "layer_2"] {
            let d = max_abs_diff(&fresh[layer], &dumped[layer]);
            assert!(d < 1e-5, "{name} {layer}: {d:e}");
        }
    };
    check(&model, &pre, "pre");
    check(&run.join("checkpoint"), &best, "best");
}
