//! `heal weights`: statistics equal numpy/scipy's, histograms count every parameter once, and the
//! change between checkpoints equals numpy's on a checkpoint damaged by `heal corrupt`.

mod common;

use common::{fixtures, heal_bin, heal_ok, python_json};
use heal::analysis::weights::stats_of;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Float element count of a safetensors file, read from its JSON header alone.
fn float_elements(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .filter(|(_, v)| v["dtype"].as_str().unwrap().starts_with('F') || v["dtype"] == "BF16")
        .map(|(_, v)| {
            v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .product::<u64>()
        })
        .sum()
}

#[test]
fn outliers_and_kurtosis_by_hand() {
    // 100 zeros and one 100: mean 100/101, population std 100*sqrt(100)/101, so 100 sits
    // 9.95 std from the mean (an outlier) and the zeros 0.0995 std (not).
    let mut v = vec![0.0; 100];
    v.push(100.0);
    let (mean, mean_abs, std, lo, hi, kurt, outliers) = stats_of(&v);
    assert!((mean - 100.0 / 101.0).abs() < 1e-12);
    assert!((mean_abs - 100.0 / 101.0).abs() < 1e-12);
    assert!((std - 1000.0 / 101.0).abs() < 1e-9);
    assert_eq!((lo, hi, outliers), (0.0, 100.0, 1));
    // A two-point distribution is a scaled Bernoulli(p), p = 1/101, whose excess kurtosis is
    // (1 - 6 p q) / (p q).
    let (p, q) = (1.0 / 101.0, 100.0 / 101.0);
    assert!(
        (kurt - (1.0 - 6.0 * p * q) / (p * q)).abs() < 1e-9,
        "{kurt}"
    );
    // A constant tensor has no spread, no outliers and no kurtosis.
    let (_, _, std, _, _, kurt, outliers) = stats_of(&[0.5; 8]);
    assert_eq!((std, outliers), (0.0, 0));
    assert!(kurt.is_nan());
}

#[test]
fn stats_and_histograms_of_one_checkpoint() {
    let ckpt = fixtures().join("tiny-bert");
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("w");
    heal_ok(&[
        "weights",
        ckpt.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
        "--bins",
        "37",
    ]);
    for f in [
        "stats.csv",
        "histograms.csv",
        "histograms.png",
        "histograms.svg",
        "summary.json",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    // Every float parameter of the file is counted once in the histograms.
    let total = float_elements(&ckpt.join("model.safetensors"));
    let hist = read_csv(&dir.join("histograms.csv"));
    let counted: u64 = hist
        .iter()
        .map(|r| r["count"].parse::<u64>().unwrap())
        .sum();
    assert_eq!(counted, total);
    let bins_per_group = hist.iter().filter(|r| r["group"] == "q").count();
    assert_eq!(bins_per_group, 37);
    // Per-tensor statistics equal numpy / scipy's on the same file.
    let script = r#"
import json, sys
import numpy as np
from scipy.stats import kurtosis
from safetensors.numpy import load_file
out = {}
for name, t in load_file(sys.argv[1]).items():
    if t.dtype.kind != 'f':
        continue
    x = t.astype(np.float64).ravel()
    m, s = x.mean(), x.std()
    out[name] = dict(mean_abs=float(np.abs(x).mean()), std=float(s), max_abs=float(np.abs(x).max()),
                     kurtosis=float(kurtosis(x)) if s > 0 else None,
                     outliers=int((np.abs(x - m) > 6 * s).sum()) if s > 0 else 0, count=int(x.size))
print(json.dumps(out))
"#;
    let reference: HashMap<String, serde_json::Value> =
        python_json(script, &[ckpt.join("model.safetensors").to_str().unwrap()]);
    let stats = read_csv(&dir.join("stats.csv"));
    assert_eq!(stats.len(), reference.len());
    for row in &stats {
        // Our names are normalised (bert. prefix); the file's may lack it.
        let r = reference
            .get(&row["tensor"])
            .or_else(|| reference.get(row["tensor"].trim_start_matches("bert.")))
            .unwrap_or_else(|| panic!("{} not in the file", row["tensor"]));
        for key in ["mean_abs", "std", "max_abs"] {
            let ours: f64 = row[key].parse().unwrap();
            let theirs = r[key].as_f64().unwrap();
            assert!(
                (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1e-6),
                "{} {key}: {ours} vs {theirs}",
                row["tensor"]
            );
        }
        match r["kurtosis"].as_f64() {
            Some(k) => {
                let ours: f64 = row["kurtosis"].parse().unwrap();
                assert!(
                    (ours - k).abs() < 1e-7 * k.abs().max(1.0),
                    "{} kurtosis {ours} vs {k}",
                    row["tensor"]
                );
            }
            None => assert_eq!(row["kurtosis"], ""),
        }
        assert_eq!(
            row["outliers"],
            r["outliers"].to_string(),
            "{}",
            row["tensor"]
        );
        assert_eq!(row["count"], r["count"].to_string());
    }
}

#[test]
fn change_between_checkpoints_equals_numpy() {
    let ckpt = fixtures().join("tiny-bert");
    let tmp = tempfile::tempdir().unwrap();
    let damaged = tmp.path().join("damaged");
    heal_ok(&[
        "corrupt",
        "--model",
        ckpt.to_str().unwrap(),
        "--spec",
        "layers:2",
        "--method",
        "noise:0.05",
        "--out",
        damaged.to_str().unwrap(),
    ]);
    let dir = tmp.path().join("w");
    heal_ok(&[
        "weights",
        ckpt.to_str().unwrap(),
        damaged.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
        "--names",
        "before,after",
    ]);
    for f in [
        "changes.csv",
        "modules.csv",
        "layers.csv",
        "change_heatmap.png",
        "change_heatmap.svg",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let script = r#"
import json, sys
import numpy as np
from safetensors.numpy import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
out = {}
for name in a:
    if a[name].dtype.kind != 'f':
        continue
    x, y = a[name].astype(np.float64).ravel(), b[name].astype(np.float64).ravel()
    out[name] = [float(np.linalg.norm(y - x) / np.linalg.norm(x)) if np.linalg.norm(x) > 0 else None,
                 float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y))) if np.linalg.norm(x) > 0 and np.linalg.norm(y) > 0 else None]
print(json.dumps(out))
"#;
    let reference: HashMap<String, Vec<Option<f64>>> = python_json(
        script,
        &[
            ckpt.join("model.safetensors").to_str().unwrap(),
            damaged.join("model.safetensors").to_str().unwrap(),
        ],
    );
    let changes = read_csv(&dir.join("changes.csv"));
    assert_eq!(changes.len(), reference.len());
    let mut moved = 0;
    for row in &changes {
        let r = reference
            .get(&row["tensor"])
            .or_else(|| reference.get(row["tensor"].trim_start_matches("bert.")))
            .unwrap();
        let rel: f64 = row["relative_change"].parse().unwrap_or(f64::NAN);
        match r[0] {
            Some(x) => assert!((rel - x).abs() < 1e-9, "{}: {rel} vs {x}", row["tensor"]),
            None => assert!(rel.is_nan()),
        }
        if rel > 0.0 {
            moved += 1;
            assert_eq!(
                row["layer"], "2",
                "{} moved but is not in layer 2",
                row["tensor"]
            );
        }
    }
    // Exactly the tensors the corruption report says it changed (and that had a norm to be
    // relative to; tiny-bert's biases are zero).
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(damaged.join("corruption_report.json")).unwrap())
            .unwrap();
    let changed = report["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["changed"].as_u64().unwrap() > 0 && t["before"]["norm"].as_f64().unwrap() > 0.0
        })
        .count();
    assert!(changed > 0);
    assert_eq!(moved, changed);
    // The per-layer table pools weight and bias: layer 2 changed, layer 1 not.
    let layers = read_csv(&dir.join("layers.csv"));
    let rel = |l: &str| -> f64 {
        layers.iter().find(|r| r["layer"] == l).unwrap()["relative_change"]
            .parse()
            .unwrap()
    };
    assert_eq!(rel("1"), 0.0);
    assert!(rel("2") > 0.0);
}

#[test]
fn a_run_directory_compares_pretrained_corrupted_and_healed() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let model = fixtures().join("tiny-bert");
    let out = common::finetune_tiny(
        &model,
        &run,
        &[
            "--corrupt",
            "top:50%",
            "--save-checkpoint",
            "corrupted,best",
            "--epochs",
            "1",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let o = heal_ok(&["weights", run.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("rel. change from start"), "{text}");
    let dir = run.join("weights");
    assert!(dir.join("start_heatmap.png").is_file());
    let layers = read_csv(&dir.join("layers.csv"));
    // Healing moves the damaged top layers away from their corrupted start and they stay far
    // from the pretrained weights (re-initialised, cosine near 0).
    let top = layers.iter().find(|r| r["layer"] == "2").unwrap();
    let cos_pre: f64 = top["cosine"].parse().unwrap();
    let cos_start: f64 = top["cosine_to_start"].parse().unwrap();
    assert!(cos_pre.abs() < 0.5, "{cos_pre}");
    assert!(cos_start > 0.9, "{cos_start}");
    let hist = read_csv(&dir.join("histograms.csv"));
    let names: std::collections::BTreeSet<&str> =
        hist.iter().map(|r| r["checkpoint"].as_str()).collect();
    assert_eq!(
        names,
        ["corrupted", "healed", "pretrained"].into_iter().collect()
    );
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let out = Command::new(heal_bin())
        .args([
            "weights",
            missing.to_str().unwrap(),
            "--out",
            tmp.path().join("w").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("nope"), "{err}");
    // Without --out and not a run directory.
    let out = Command::new(heal_bin())
        .args(["weights", fixtures().join("tiny-bert").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out"));
}
