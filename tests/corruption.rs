//! The corruption engine: the damage has the asked statistics, touches nothing outside the
//! selection, is reproducible from its seed, and `heal corrupt` writes checkpoints that HF
//! transformers loads.

mod common;

use common::{assert_logits_close, fixtures, heal_bin, heal_logits, hf_logits};
use heal::corrupt::method::{Kaiming, Method};
use heal::corrupt::select::{parse_modules, Include};
use heal::corrupt::spec::LayerSpec;
use heal::corrupt::{corrupt, selection, CorruptionConfig};
use heal::model::checkpoint::{read_tensors, CheckpointFiles};
use heal::model::config::EncoderConfig;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use tch::Tensor;

fn load(dir: &Path) -> (EncoderConfig, HashMap<String, Tensor>) {
    let files = CheckpointFiles::locate(dir).unwrap();
    let cfg = EncoderConfig::from_file(&files.config).unwrap();
    let tensors = read_tensors(&files, cfg.family).unwrap();
    (cfg, tensors)
}

fn copy_all(t: &HashMap<String, Tensor>) -> HashMap<String, Tensor> {
    t.iter().map(|(k, v)| (k.clone(), v.copy())).collect()
}

fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.to_kind(tch::Kind::Float).flatten(0, -1)).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    values(t).iter().map(|v| v.to_bits()).collect()
}

fn config(spec: &str, method: &str, seed: u64) -> CorruptionConfig {
    CorruptionConfig {
        spec: LayerSpec::parse(spec).unwrap(),
        modules: parse_modules("all").unwrap(),
        include: Include::default(),
        method: Method::parse(method).unwrap(),
        kaiming: Kaiming::He,
        seed,
    }
}

fn mean_var(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, var)
}

#[test]
fn reinit_draws_inside_the_kaiming_bound_with_the_right_moments() {
    let dir = heal::defaults::minilm_l6_dir().unwrap();
    for kaiming in [Kaiming::He, Kaiming::Linear] {
        let (cfg, tensors) = load(&dir);
        let mut c = config("bottom:2", "reinit", 3);
        c.kaiming = kaiming;
        let report = corrupt(&c, &cfg, &tensors).unwrap();
        assert_eq!(report.layers, vec![1, 2]);
        assert_eq!(report.tensors.len(), 2 * 16);
        for t in &report.tensors {
            let v = values(&tensors[&t.name]);
            if t.name.ends_with(".bias") {
                assert!(v.iter().all(|&x| x == 0.0), "{} is all zeros", t.name);
            } else if t.name.contains("LayerNorm") {
                assert!(v.iter().all(|&x| x == 1.0), "{} is all ones", t.name);
            } else {
                let fan_in = t.shape[1] as f64;
                let bound = match kaiming {
                    Kaiming::He => (6.0 / fan_in).sqrt(),
                    Kaiming::Linear => 1.0 / fan_in.sqrt(),
                };
                assert!(
                    v.iter().all(|&x| (x as f64).abs() <= bound),
                    "{} inside +-{bound}",
                    t.name
                );
                let (mean, var) = mean_var(&v);
                let n = v.len() as f64;
                // The mean of n uniform draws has sd bound/sqrt(3n); allow 5 sd.
                assert!(
                    mean.abs() < 5.0 * bound / (3.0 * n).sqrt(),
                    "{}: mean {mean}",
                    t.name
                );
                let expected = bound * bound / 3.0;
                assert!(
                    (var / expected - 1.0).abs() < 0.02,
                    "{}: variance {var} vs {expected}",
                    t.name
                );
            }
        }
    }
}

#[test]
fn everything_outside_the_selection_is_bit_identical() {
    let dir = heal::defaults::minilm_l6_dir().unwrap();
    let (cfg, tensors) = load(&dir);
    let before = copy_all(&tensors);
    let mut c = config("layers:2,5", "noise:0.3", 1);
    c.modules = parse_modules("q,ffn_out,ln_attn").unwrap();
    let (_, selected) = selection(&c, &cfg).unwrap();
    assert_eq!(selected.len(), 2 * 3 * 2);
    corrupt(&c, &cfg, &tensors).unwrap();
    for (name, t) in &tensors {
        let same = bits(t) == bits(&before[name]);
        assert_eq!(same, !selected.contains(name), "{name}");
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let dir = fixtures().join("tiny-bert");
    for method in [
        "reinit",
        "noise:1",
        "shuffle",
        "bitflip:0.01",
        "bitflip:n=5",
    ] {
        let run = |seed| {
            let (cfg, tensors) = load(&dir);
            corrupt(&config("all", method, seed), &cfg, &tensors).unwrap();
            let mut names: Vec<_> = tensors.keys().cloned().collect();
            names.sort();
            names
                .iter()
                .flat_map(|n| bits(&tensors[n]))
                .collect::<Vec<u32>>()
        };
        assert_eq!(run(7), run(7), "{method}: same seed");
        assert_ne!(run(7), run(8), "{method}: other seed");
    }
}

#[test]
fn noise_has_the_asked_scale() {
    let dir = heal::defaults::minilm_l6_dir().unwrap();
    let (cfg, tensors) = load(&dir);
    let before = copy_all(&tensors);
    let report = corrupt(&config("layers:3", "noise:0.5", 2), &cfg, &tensors).unwrap();
    for t in report
        .tensors
        .iter()
        .filter(|t| t.shape.iter().product::<usize>() > 100_000)
    {
        let a = values(&before[&t.name]);
        let b = values(&tensors[&t.name]);
        let diff: Vec<f32> = a.iter().zip(&b).map(|(x, y)| y - x).collect();
        let (mean, var) = mean_var(&diff);
        let expected_sd = 0.5 * heal::corrupt::method::std_unbiased(&a);
        assert!(
            (var.sqrt() / expected_sd - 1.0).abs() < 0.02,
            "{}: noise sd {} vs {expected_sd}",
            t.name,
            var.sqrt()
        );
        assert!(
            mean.abs() < 5.0 * expected_sd / (a.len() as f64).sqrt(),
            "{}: noise mean {mean}",
            t.name
        );
    }
}

#[test]
fn shuffle_keeps_the_sorted_values_and_zero_zeroes() {
    let dir = fixtures().join("tiny-bert");
    let (cfg, tensors) = load(&dir);
    let before = copy_all(&tensors);
    let report = corrupt(&config("all", "shuffle", 4), &cfg, &tensors).unwrap();
    let (mut moved, mut total) = (0, 0);
    for t in &report.tensors {
        let mut a = values(&before[&t.name]);
        let mut b = values(&tensors[&t.name]);
        let distinct = a.iter().any(|&x| x != a[0]);
        moved += usize::from(a != b);
        total += usize::from(distinct);
        a.sort_by(f32::total_cmp);
        b.sort_by(f32::total_cmp);
        assert_eq!(a, b, "{}", t.name);
    }
    assert_eq!(
        moved, total,
        "every tensor with distinct values is permuted"
    );
    let (cfg, tensors) = load(&dir);
    let report = corrupt(&config("top:1", "zero", 4), &cfg, &tensors).unwrap();
    for t in &report.tensors {
        assert!(values(&tensors[&t.name]).iter().all(|&x| x == 0.0));
    }
}

#[test]
fn bitflip_n_changes_exactly_k_bits_and_rate_flips_about_p() {
    let dir = fixtures().join("tiny-bert");
    for k in [1u64, 17, 1000] {
        let (cfg, tensors) = load(&dir);
        let before = copy_all(&tensors);
        let report = corrupt(&config("all", &format!("bitflip:n={k}"), k), &cfg, &tensors).unwrap();
        let flipped: u64 = report
            .tensors
            .iter()
            .map(|t| {
                bits(&before[&t.name])
                    .iter()
                    .zip(bits(&tensors[&t.name]))
                    .map(|(a, b)| (a ^ b).count_ones() as u64)
                    .sum::<u64>()
            })
            .sum();
        assert_eq!(flipped, k);
        let counts = report.bit_flips.unwrap();
        assert_eq!(counts.total(), k);
    }
    let (cfg, tensors) = load(&dir);
    let report = corrupt(&config("all", "bitflip:0.001", 5), &cfg, &tensors).unwrap();
    let bits_total = report.values as f64 * 32.0;
    let expected = bits_total * 0.001;
    let got = report.bit_flips.unwrap().total() as f64;
    assert!(
        (got - expected).abs() < 5.0 * expected.sqrt(),
        "{got} flips vs {expected} expected"
    );
    let f = report.bit_flips.unwrap();
    // Per fp32 word: 1 sign, 8 exponent, 23 mantissa bits.
    assert!((f.exponent as f64 / got - 8.0 / 32.0).abs() < 0.05);
}

#[test]
fn heal_corrupt_writes_a_checkpoint_hf_transformers_loads() {
    let tmp = tempfile::tempdir().unwrap();
    for model in ["tiny-bert", "tiny-distilbert", "tiny-roberta"] {
        let out = tmp.path().join(model);
        let src = fixtures().join(model);
        let status = Command::new(heal_bin())
            .args(["corrupt", "--model"])
            .arg(&src)
            .args([
                "--spec",
                "bottom:50%",
                "--method",
                "reinit",
                "--seed",
                "3",
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        // Tensors outside layer 1 keep their bytes; layer 1's do not.
        let (cfg, original) = load(&src);
        let (_, damaged) = load(&out);
        let layer1 = heal::model::layout::Layout::of(cfg.family).layer_path(0) + ".";
        for (name, t) in &original {
            let same = bits(t) == bits(&damaged[name]);
            if !name.starts_with(&layer1) {
                assert!(same, "{model}: {name} is outside the selection");
            } else if heal::corrupt::select::role(name) == heal::corrupt::select::Role::Weight {
                assert!(!same, "{model}: {name} was re-drawn");
            }
        }
        // HF transformers loads the folder; its logits equal heal's for the same folder.
        let texts = [
            "market shares rose".to_string(),
            "the team won the match".to_string(),
        ];
        let (hf, _) = hf_logits(&out, &texts);
        assert_logits_close(&heal_logits(&out, &texts, 3), &hf, model);
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join("corruption_report.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(report["layers"], serde_json::json!([1]));
    }
}

#[test]
fn bad_specs_and_methods_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let model = fixtures().join("tiny-bert");
    let cases: [(&str, &str); 8] = [
        ("--spec", "bottom:150%"),
        ("--spec", "layers:0"),
        ("--spec", "layers:9-7"),
        ("--spec", "top:0%"),
        ("--spec", "layers:3"),
        ("--method", "noise:-1"),
        ("--method", "bitflip:2"),
        ("--modules", "heads"),
    ];
    for (flag, value) in cases {
        let out = tmp.path().join("x");
        let mut args = vec![
            "corrupt".to_string(),
            "--model".into(),
            model.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ];
        if flag != "--spec" {
            args.extend(["--spec".into(), "all".into()]);
        }
        args.extend([flag.to_string(), value.to_string()]);
        let r = Command::new(heal_bin()).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{value}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{value}: {stderr}");
        assert!(
            stderr.contains(value.trim_start_matches("--")),
            "{value}: {stderr}"
        );
        assert!(!out.exists());
    }
    // The model's depth is named when a spec reaches past it.
    let r = Command::new(heal_bin())
        .args(["corrupt", "--model"])
        .arg(&model)
        .args(["--spec", "layers:3", "--out"])
        .arg(tmp.path().join("y"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&r.stderr).contains("2 layers"));
}

/// `noise SRC DST`: tiny-bert's tensors each moved by seeded N(0, 0.1) noise (so that any
/// damage changes them: the fixture's LayerNorms are exactly 1 and 0), written to DST with
/// the config and vocabulary; prints the tensor names. `diff A B`: the names whose values
/// differ between A/model.safetensors and B/model.safetensors, read with numpy.
const TENSOR_NAMES: &str = r#"
import json, shutil, sys
import numpy as np
from safetensors.numpy import load_file, save_file
mode, a, b = sys.argv[1:4]
if mode == "noise":
    rng = np.random.default_rng(5)
    t = {k: (v + rng.normal(0, 0.1, v.shape)).astype(v.dtype)
         for k, v in load_file(f"{a}/model.safetensors").items()}
    for f in ("config.json", "vocab.txt", "tokenizer_config.json"):
        shutil.copy(f"{a}/{f}", f"{b}/{f}")
    save_file(t, f"{b}/model.safetensors", metadata={"format": "pt"})
    print(json.dumps(sorted(t)))
else:
    x, y = load_file(f"{a}/model.safetensors"), load_file(f"{b}/model.safetensors")
    assert sorted(x) == sorted(y), "the same tensor names"
    print(json.dumps(sorted(k for k in x if not np.array_equal(x[k], y[k]))))
"#;

#[test]
fn include_embeddings_and_pooler_damage_exactly_those_tensors() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    std::fs::create_dir(&model).unwrap();
    let src = fixtures().join("tiny-bert");
    let names: Vec<String> = common::python_json(
        TENSOR_NAMES,
        &["noise", src.to_str().unwrap(), model.to_str().unwrap()],
    );
    // The expected sets, from HF's BERT names: the embeddings block is the three embedding
    // tables and its LayerNorm; the pooler its dense layer; `--modules q` of layer 2 the
    // query projection of encoder.layer.1.
    let expected = |prefixes: &[&str]| -> Vec<String> {
        names
            .iter()
            .filter(|n| prefixes.iter().any(|p| n.starts_with(p)))
            .cloned()
            .collect()
    };
    let cases: [(&[&str], &[&str]); 3] = [
        (
            &[
                "--spec",
                "layers:2",
                "--modules",
                "q",
                "--include",
                "embeddings,pooler",
            ],
            &[
                "bert.embeddings.",
                "bert.pooler.dense.",
                "bert.encoder.layer.1.attention.self.query.",
            ],
        ),
        (
            &["--spec", "none", "--include", "pooler"],
            &["bert.pooler.dense."],
        ),
        (
            &["--spec", "none", "--include", "embeddings"],
            &["bert.embeddings."],
        ),
    ];
    for (i, (args, prefixes)) in cases.iter().enumerate() {
        let out = tmp.path().join(format!("out{i}"));
        let run = Command::new(heal_bin())
            .args(["corrupt", "--model"])
            .arg(&model)
            .args(*args)
            .args(["--method", "noise:1", "--seed", "3", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let changed: Vec<String> = common::python_json(
            TENSOR_NAMES,
            &["diff", model.to_str().unwrap(), out.to_str().unwrap()],
        );
        let want = expected(prefixes);
        assert!(want.len() >= 2, "{prefixes:?} names tensors of tiny-bert");
        assert_eq!(changed, want, "{args:?}: the changed tensors");
    }
}
