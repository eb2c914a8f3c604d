//! Which parameters heal: trainable counts against an independent count from the checkpoint's
//! tensor shapes, frozen tensors bit-identical after training, the cached linear probe equal to
//! the slow path, and in-memory corruption equal to `heal corrupt`.

mod common;

use common::{fixtures, heal_bin};
use heal::run_dir::read_metrics;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// name -> (shape, raw bytes), read with the safetensors crate alone.
fn tensors_of(file: &Path) -> HashMap<String, (Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, v)| (n, (v.shape().to_vec(), v.data().to_vec())))
        .collect()
}

fn finetune(model: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec!["--batch-size", "16", "--max-len", "32", "--lr", "1e-3"];
    args.extend_from_slice(extra);
    common::finetune_tiny(model, out, &args);
}

fn run_json(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap()
}

/// BERT tensor names that each mode trains, written from HF's naming, not from heal's tables.
fn trains(mode: &str, name: &str) -> bool {
    let head = name.starts_with("bert.pooler.") || name.starts_with("classifier.");
    head || match mode {
        "full" => true,
        "head" | "ln-outliers:4" => false,
        "layernorm" => name.contains("LayerNorm"),
        "bias" => name.ends_with("bias"),
        "attention" => {
            name.contains(".attention.self.") || name.contains(".attention.output.dense.")
        }
        "ffn" => {
            name.contains(".intermediate.dense.")
                || (name.contains(".output.dense.") && !name.contains("attention"))
        }
        "layers:2" => name.starts_with("bert.encoder.layer.1."),
        _ => unreachable!(),
    }
}

#[test]
fn trainable_counts_match_the_checkpoint_shapes_and_frozen_tensors_stay_put() {
    let model = fixtures().join("tiny-bert");
    let original = tensors_of(&model.join("model.safetensors"));
    let numel = |shape: &Vec<usize>| shape.iter().product::<usize>() as i64;
    let total: i64 = original.values().map(|(s, _)| numel(s)).sum();
    let ln_count = original
        .keys()
        .filter(|n| n.ends_with("LayerNorm.weight"))
        .count() as i64;
    let tmp = tempfile::tempdir().unwrap();
    for mode in [
        "full",
        "head",
        "layernorm",
        "bias",
        "attention",
        "ffn",
        "layers:2",
        "ln-outliers:4",
    ] {
        let run = tmp.path().join(mode.replace(':', "-"));
        finetune(
            &model,
            &run,
            &["--epochs", "1", "--train", mode, "--save-checkpoint"],
        );
        let mut expected: i64 = original
            .iter()
            .filter(|(n, _)| trains(mode, n))
            .map(|(_, (s, _))| numel(s))
            .sum();
        if mode == "ln-outliers:4" {
            expected += ln_count * 4 * 2;
        }
        let params = &run_json(&run)["parameters"];
        assert_eq!(params["trainable"], expected, "{mode}: trainable count");
        assert_eq!(params["total"], total, "{mode}: total");
        let trained = tensors_of(&run.join("checkpoint").join("model.safetensors"));
        let mut changed_trainable = 0;
        for (name, (_, bytes)) in &original {
            let same = &trained[name].1 == bytes;
            if trains(mode, name) {
                changed_trainable += usize::from(!same);
            } else if mode != "ln-outliers:4" || !name.contains("LayerNorm") {
                assert!(same, "{mode}: frozen {name} changed");
            }
        }
        assert!(changed_trainable > 0, "{mode}: something trained");
    }
}

#[test]
fn ln_outliers_update_only_the_outlier_dimensions() {
    // minilm-l6's LayerNorm weights are far from uniform, so the outliers are well defined.
    let model = heal::defaults::minilm_l6_dir().unwrap();
    let original = tensors_of(&model.join("model.safetensors"));
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    finetune(
        &model,
        &run,
        &[
            "--epochs",
            "1",
            "--train",
            "ln-outliers:8",
            "--save-checkpoint",
            "--max-train-examples",
            "32",
        ],
    );
    let trained = tensors_of(&run.join("checkpoint").join("model.safetensors"));
    let floats = |b: &[u8]| {
        b.chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect::<Vec<f32>>()
    };
    let mut moved_entries = 0;
    for (name, (_, bytes)) in &original {
        if !name.ends_with("LayerNorm.weight") {
            continue;
        }
        let w = floats(bytes);
        let mean = w.iter().map(|&x| x as f64).sum::<f64>() / w.len() as f64;
        let mut order: Vec<usize> = (0..w.len()).collect();
        order.sort_by(|&a, &b| ((w[b] as f64 - mean).abs()).total_cmp(&(w[a] as f64 - mean).abs()));
        let outliers = &order[..8];
        let bias_name = name.replace(".weight", ".bias");
        for tensor in [name.clone(), bias_name] {
            let before = floats(&original[&tensor].1);
            let after = floats(&trained[&format!("bert.{tensor}")].1);
            for i in 0..before.len() {
                if outliers.contains(&i) {
                    moved_entries += usize::from(before[i].to_bits() != after[i].to_bits());
                } else {
                    assert_eq!(
                        before[i].to_bits(),
                        after[i].to_bits(),
                        "{tensor}[{i}] is not an outlier"
                    );
                }
            }
        }
    }
    assert!(
        moved_entries > 50,
        "outlier entries trained ({moved_entries})"
    );
    let params = &run_json(&run)["parameters"];
    let heads = 384 * 384 + 384 + 384 * 3 + 3;
    assert_eq!(
        params["trainable"],
        13 * 8 * 2 + heads,
        "13 LayerNorms x 8 dims x (weight, bias) + pooler + classifier"
    );
}

#[test]
fn cached_linear_probe_gives_the_same_predictions_as_re_encoding() {
    let model = fixtures().join("tiny-bert");
    let tmp = tempfile::tempdir().unwrap();
    let (fast, slow) = (tmp.path().join("fast"), tmp.path().join("slow"));
    finetune(
        &model,
        &fast,
        &["--epochs", "3", "--train", "head", "--seed", "5"],
    );
    finetune(
        &model,
        &slow,
        &[
            "--epochs",
            "3",
            "--train",
            "head",
            "--seed",
            "5",
            "--feature-cache",
            "false",
        ],
    );
    let (a, b) = (read_metrics(&fast).unwrap(), read_metrics(&slow).unwrap());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (x.accuracy, x.f1_weighted),
            (y.accuracy, y.f1_weighted),
            "epoch {}",
            x.epoch
        );
        assert!(
            (x.train_loss - y.train_loss).abs() < 1e-5,
            "epoch {}: {} vs {}",
            x.epoch,
            x.train_loss,
            y.train_loss
        );
    }
    let ra = heal::run_dir::read_result(&fast).unwrap();
    let rb = heal::run_dir::read_result(&slow).unwrap();
    assert_eq!(ra.confusion_matrix, rb.confusion_matrix);
}

#[test]
fn in_memory_corruption_equals_heal_corrupt() {
    let model = fixtures().join("tiny-bert");
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    finetune(
        &model,
        &run,
        &[
            "--epochs",
            "1",
            "--corrupt",
            "top:1",
            "--method",
            "noise:2",
            "--corrupt-seed",
            "9",
            "--save-checkpoint",
            "corrupted,best",
        ],
    );
    let out = tmp.path().join("corrupted");
    let status = Command::new(heal_bin())
        .args(["corrupt", "--model"])
        .arg(&model)
        .args([
            "--spec", "top:1", "--method", "noise:2", "--seed", "9", "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(status.status.success());
    let a = tensors_of(&run.join("checkpoint-corrupted").join("model.safetensors"));
    let b = tensors_of(&out.join("model.safetensors"));
    let layer2: Vec<&String> = b
        .keys()
        .filter(|n| n.starts_with("bert.encoder.layer.1."))
        .collect();
    assert_eq!(layer2.len(), 16);
    for name in layer2 {
        assert_eq!(a[name].1, b[name].1, "{name}");
    }
    let report = &run_json(&run)["corruption"];
    assert_eq!(report["layers"], serde_json::json!([2]));
    assert_eq!(report["tensors"].as_array().unwrap().len(), 16);
    assert!(run.join("checkpoint").join("model.safetensors").exists());
}

/// tiny-bert in `dir` with every LayerNorm weight spread out (w[i] = 1 + 0.01 x (13 i mod
/// hidden), a permutation of distinct values), so that `ln-outliers:N`'s dimensions are well
/// defined; everything else as the fixture.
fn tiny_bert_with_spread_layernorms(dir: &Path) -> PathBuf {
    let src = fixtures().join("tiny-bert");
    std::fs::create_dir_all(dir).unwrap();
    for f in ["config.json", "vocab.txt", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let tensors: Vec<(String, tch::Tensor)> =
        tch::Tensor::read_safetensors(src.join("model.safetensors"))
            .unwrap()
            .into_iter()
            .map(|(name, t)| {
                if name.ends_with("LayerNorm.weight") {
                    let n = t.size()[0];
                    let w: Vec<f32> = (0..n).map(|i| 1.0 + 0.01 * ((13 * i) % n) as f32).collect();
                    (name, tch::Tensor::from_slice(&w))
                } else {
                    (name, t)
                }
            })
            .collect();
    tch::Tensor::write_safetensors(&tensors, dir.join("model.safetensors")).unwrap();
    dir.to_path_buf()
}

/// The `n` indices of `w` farthest from its mean (computed here, not by heal).
fn outlier_dims(w: &[f32], n: usize) -> Vec<usize> {
    let mean = w.iter().map(|&x| x as f64).sum::<f64>() / w.len() as f64;
    let mut order: Vec<usize> = (0..w.len()).collect();
    order.sort_by(|&a, &b| ((w[b] as f64 - mean).abs()).total_cmp(&(w[a] as f64 - mean).abs()));
    order.truncate(n);
    order
}

#[test]
fn frozen_tensors_stay_bit_identical_under_weight_decay() {
    // At weight decay 0, Adam leaves an entry with a zero gradient where it is, so a frozen
    // tensor that wrongly sat in the optimiser would still not move. At decay 0.5 (lr 1e-3,
    // AdamW multiplies every optimised entry by 1 - 5e-4 per step; Adam adds 0.5 w to its
    // gradient) it would: frozen tensors and ln-outliers' other entries must still be
    // bit-identical, for both optimisers and for libtorch's as well as the fused step.
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_bert_with_spread_layernorms(&tmp.path().join("model"));
    let original = tensors_of(&model.join("model.safetensors"));
    let floats = |b: &[u8]| {
        b.chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect::<Vec<f32>>()
    };
    let cases: [(&str, &str, &str); 5] = [
        ("head", "adamw", "true"),
        ("layers:2", "adam", "true"),
        ("ln-outliers:4", "adamw", "true"),
        ("ln-outliers:4", "adam", "true"),
        ("ln-outliers:4", "adamw", "false"),
    ];
    for (mode, optimizer, fused) in cases {
        let what = format!("{mode} {optimizer} fused={fused}");
        let run = tmp
            .path()
            .join(format!("{}-{optimizer}-{fused}", mode.replace(':', "-")));
        finetune(
            &model,
            &run,
            &[
                "--epochs",
                "1",
                "--weight-decay",
                "0.5",
                "--optimizer",
                optimizer,
                "--fused-optimizer",
                fused,
                "--train",
                mode,
                "--save-checkpoint",
            ],
        );
        let trained = tensors_of(&run.join("checkpoint").join("model.safetensors"));
        let (mut moved_trainable, mut moved_outliers) = (0, 0);
        for (name, (_, bytes)) in &original {
            let after = &trained[name].1;
            if mode == "ln-outliers:4" && name.contains("LayerNorm") {
                let weight = floats(&original[&name.replace(".bias", ".weight")].1);
                let outliers = outlier_dims(&weight, 4);
                let (before, after) = (floats(bytes), floats(after));
                for i in 0..before.len() {
                    let same = before[i].to_bits() == after[i].to_bits();
                    if outliers.contains(&i) {
                        moved_outliers += usize::from(!same);
                    } else {
                        assert!(same, "{what}: {name}[{i}] is not an outlier but moved");
                    }
                }
            } else if trains(mode, name) {
                moved_trainable += usize::from(after != bytes);
            } else {
                assert!(after == bytes, "{what}: frozen {name} changed");
            }
        }
        assert!(moved_trainable > 0, "{what}: something trained");
        if mode == "ln-outliers:4" {
            // 5 LayerNorms x 4 dims x (weight, bias): nearly all of them move.
            assert!(
                moved_outliers > 30,
                "{what}: {moved_outliers} outlier entries moved"
            );
        }
    }
}
