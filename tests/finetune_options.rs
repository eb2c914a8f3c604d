//! HF Trainer habits end to end on tiny-bert: gradient accumulation equals a larger batch,
//! early stopping follows its rule on the selection score, and a run.json given back as
//! --config repeats its run.

mod common;

use common::{fixtures, heal_bin};
use heal::run_dir::{read_metrics, read_result, EpochRecord};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A copy of tiny-bert without dropout: a batch of 16 and two micro-batches of 8 then see the
/// same network (dropout masks depend on the batch's shape).
fn tiny_bert_without_dropout(dir: &Path) -> PathBuf {
    let model = dir.join("tiny-bert-no-dropout");
    std::fs::create_dir_all(&model).unwrap();
    for entry in std::fs::read_dir(fixtures().join("tiny-bert")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, model.join(path.file_name().unwrap())).unwrap();
    }
    let config_path = model.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["hidden_dropout_prob"] = 0.0.into();
    config["attention_probs_dropout_prob"] = 0.0.into();
    std::fs::write(&config_path, config.to_string()).unwrap();
    model
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1.0)
}

fn weights(run: &Path) -> Vec<(String, tch::Tensor)> {
    let mut w =
        tch::Tensor::read_safetensors(run.join("checkpoint").join("model.safetensors")).unwrap();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

#[test]
fn accumulated_micro_batches_equal_one_larger_batch() {
    // 90 examples: five groups of 16 and a last partial group of 10 (micro-batches 8 and 2),
    // which steps too. lr 1e-2 moves the scores over the six epochs.
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_bert_without_dropout(tmp.path());
    let run = |name: &str, batch: &str, k: &str, fused: &str| {
        let dir = tmp.path().join(name);
        common::finetune_tiny(
            &model,
            &dir,
            &[
                "--epochs",
                "6",
                "--lr",
                "1e-2",
                "--max-train-examples",
                "90",
                "--save-checkpoint",
                "--batch-size",
                batch,
                "--gradient-accumulation-steps",
                k,
                "--fused-optimizer",
                fused,
            ],
        );
        dir
    };
    for fused in ["true", "false"] {
        let large = run(&format!("16x1-{fused}"), "16", "1", fused);
        let accumulated = run(&format!("8x2-{fused}"), "8", "2", fused);
        let (a, b) = (
            read_metrics(&large).unwrap(),
            read_metrics(&accumulated).unwrap(),
        );
        assert_eq!(a.len(), 6);
        for (x, y) in a.iter().zip(&b) {
            let what = format!("fused {fused}, epoch {}", x.epoch);
            assert!(
                close(x.train_loss, y.train_loss, 1e-4),
                "{what}: {x:?} vs {y:?}"
            );
            assert!(
                close(x.eval_loss, y.eval_loss, 1e-4),
                "{what}: {x:?} vs {y:?}"
            );
            assert_eq!(x.lr, y.lr, "{what}: the schedule counts optimiser steps");
        }
        let (ra, rb) = (
            read_result(&large).unwrap(),
            read_result(&accumulated).unwrap(),
        );
        assert_eq!(ra.best_epoch, rb.best_epoch);
        assert!(
            ra.best.unwrap().f1_weighted > a[0].f1_weighted,
            "the scores move: {a:?}"
        );
        for ((name, x), (_, y)) in weights(&large).iter().zip(&weights(&accumulated)) {
            let diff = (x - y).abs().max().double_value(&[]);
            assert!(diff < 1e-3, "fused {fused}: {name} differs by {diff}");
        }
    }
    // The option's default is one batch per step: K = 1 changes nothing.
    let losses = |name: &str, extra: &[&str]| -> Vec<(f64, f64)> {
        let dir = tmp.path().join(name);
        let mut args = vec!["--epochs", "2", "--batch-size", "8"];
        args.extend_from_slice(extra);
        common::finetune_tiny(&fixtures().join("tiny-bert"), &dir, &args);
        read_metrics(&dir)
            .unwrap()
            .iter()
            .map(|e| (e.train_loss, e.eval_loss))
            .collect()
    };
    assert_eq!(
        losses("default", &[]),
        losses("k1", &["--gradient-accumulation-steps", "1"])
    );
}

/// The epoch after which patience `n` stops a run with these records: `n` epochs after the
/// best selection score (validation weighted F1 when present, else evaluation), if any.
fn expected_stop(epochs: &[EpochRecord], n: usize, max_epochs: usize) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for e in epochs {
        let score = e.validation_f1_weighted.unwrap_or(e.f1_weighted);
        if best.is_none_or(|(_, b)| score > b) {
            best = Some((e.epoch, score));
        }
        if e.epoch < max_epochs && e.epoch - best.unwrap().0 >= n {
            return Some(e.epoch);
        }
    }
    None
}

#[test]
fn early_stopping_follows_the_selection_score() {
    let tmp = tempfile::tempdir().unwrap();
    let mut stopped = 0;
    for (name, extra) in [
        ("eval", &[][..]),
        ("validation", &["--validation-split", "0.25"][..]),
    ] {
        let run = tmp.path().join(name);
        let mut args = vec![
            "--epochs",
            "8",
            "--batch-size",
            "8",
            "--lr",
            "1e-2",
            "--early-stopping",
            "2",
        ];
        args.extend_from_slice(extra);
        let out = common::finetune_tiny(&fixtures().join("tiny-bert"), &run, &args);
        let epochs = read_metrics(&run).unwrap();
        let result = read_result(&run).unwrap();
        assert_eq!(result.epochs_run, epochs.len());
        assert_eq!(
            epochs.iter().any(|e| e.validation_f1_weighted.is_some()),
            name == "validation"
        );
        // The best epoch is still the evaluation split's best.
        let best = epochs
            .iter()
            .max_by(|a, b| {
                a.f1_weighted
                    .total_cmp(&b.f1_weighted)
                    .then(b.epoch.cmp(&a.epoch))
            })
            .unwrap();
        assert_eq!(result.best_epoch, best.epoch);
        match expected_stop(&epochs, 2, 8) {
            Some(epoch) => {
                stopped += 1;
                assert_eq!(epoch, epochs.len(), "{name}: stops at once");
                let s = result.stopped_early.expect("recorded in result.json");
                assert_eq!(s.epoch, epoch);
                assert!(s.reason.contains(name), "{name}: {}", s.reason);
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(stderr.contains("early stopping after epoch"), "{stderr}");
            }
            None => {
                assert_eq!(epochs.len(), 8, "{name}: runs every epoch");
                assert!(result.stopped_early.is_none());
            }
        }
    }
    assert!(stopped > 0, "at least one of the runs stops early");
    // result.json without the field (older runs) still reads.
    let result = tmp.path().join("eval").join("result.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    value.as_object_mut().unwrap().remove("stopped_early");
    std::fs::write(&result, value.to_string()).unwrap();
    assert!(read_result(&tmp.path().join("eval"))
        .unwrap()
        .stopped_early
        .is_none());
}

#[test]
fn a_run_json_as_config_repeats_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first");
    common::finetune_tiny(
        &fixtures().join("tiny-bert"),
        &first,
        &[
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--gradient-accumulation-steps",
            "2",
            "--lr",
            "3e-3",
            "--corrupt",
            "top:1",
            "--method",
            "noise:0.5",
            "--train",
            "ln-outliers:4",
            "--pooling",
            "mean",
            "--seed",
            "5",
            "--validation-split",
            "0.2",
        ],
    );
    let run_json = first.join("run.json");
    let heal = |args: &[&std::ffi::OsStr]| Command::new(heal_bin()).args(args).output().unwrap();
    // Without --out the run.json names its own directory, which is never replaced unasked.
    let again = heal(&["finetune".as_ref(), "--config".as_ref(), run_json.as_ref()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--overwrite"));
    let second = tmp.path().join("second");
    let out = heal(&[
        "finetune".as_ref(),
        "--config".as_ref(),
        run_json.as_ref(),
        "--out".as_ref(),
        second.as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = |dir: &Path| {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
        let mut c = v["config"].clone();
        c.as_object_mut().unwrap().remove("out");
        c
    };
    assert_eq!(config(&first), config(&second));
    let scores = |dir: &Path| -> Vec<[f64; 6]> {
        read_metrics(dir)
            .unwrap()
            .iter()
            .map(|e| {
                let v = e.validation_f1_weighted.unwrap();
                [
                    e.train_loss,
                    e.eval_loss,
                    e.accuracy,
                    e.f1_weighted,
                    e.f1_macro,
                    v,
                ]
            })
            .collect()
    };
    assert_eq!(scores(&first), scores(&second));
    let (a, b) = (read_result(&first).unwrap(), read_result(&second).unwrap());
    assert_eq!(
        (a.status, a.best_epoch, a.best, a.last, a.confusion_matrix),
        (b.status, b.best_epoch, b.best, b.last, b.confusion_matrix)
    );
    // A .json file that is not a run.json is a user error.
    let other = tmp.path().join("other.json");
    std::fs::write(&other, "{\"epochs\": 2}").unwrap();
    let bad = heal(&["finetune".as_ref(), "--config".as_ref(), other.as_ref()]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("not a heal run.json"), "{stderr}");
}
