//! End to end on the tiny fixtures: the run directory contract, the checkpoint that HF
//! transformers loads and scores identically, TOML configs, seeds, and collapse detection.

mod common;

use common::{assert_logits_close, fixtures, heal_bin, heal_logits, hf_logits};
use heal::data::batching::Tokenized;
use heal::model::head::Pooling;
use heal::model::tokenizer::TextEncoder;
use heal::model::SequenceClassifier;
use heal::run_dir::{read_metrics, read_result, Status};
use std::path::Path;
use std::process::Command;
use tch::Device;

fn finetune(model: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    common::finetune_tiny(&fixtures().join(model), out, extra)
}

/// Fine-tunes tiny-bert (batch 8, lr 3e-3, plus `extra`) into `dir`; the (train, eval) loss of
/// every epoch.
fn tiny_bert_losses(dir: &Path, extra: &[&str]) -> Vec<(f64, f64)> {
    let mut args = vec!["--batch-size", "8", "--lr", "3e-3"];
    args.extend_from_slice(extra);
    finetune("tiny-bert", dir, &args);
    read_metrics(dir)
        .unwrap()
        .iter()
        .map(|e| (e.train_loss, e.eval_loss))
        .collect()
}

fn test_texts() -> Vec<String> {
    let text = std::fs::read_to_string(fixtures().join("tiny-data").join("test.jsonl")).unwrap();
    text.lines()
        .take(6)
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn check_family(model: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let out = finetune(
        model,
        &run,
        &[
            "--epochs",
            "4",
            "--batch-size",
            "8",
            "--lr",
            "3e-3",
            "--save-checkpoint",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("run directory:"),
        "summary printed: {stdout}"
    );

    // The contract: run.json, metrics.jsonl (one line per epoch), result.json.
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(run_json["config"]["epochs"], 4);
    assert_eq!(
        run_json["labels"]["names"],
        serde_json::json!(["business", "sport", "tech"])
    );
    assert_eq!(run_json["data"]["train_examples"], 96);
    // The libtorch this build linked (build.rs reads it from LIBTORCH's version.py): 2.13 by
    // default, 2.11 from examples/gpu/build.sh.
    let libtorch = env!("HEAL_LIBTORCH_VERSION");
    assert!(libtorch.starts_with("2."), "{libtorch}");
    assert_eq!(run_json["versions"]["libtorch"], libtorch);
    let epochs = read_metrics(&run).unwrap();
    assert_eq!(
        epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let result = read_result(&run).unwrap();
    let best = result.best.unwrap();
    assert!(result.best_epoch >= 1 && result.best_epoch <= 4);
    let best_record = &epochs[result.best_epoch - 1];
    assert_eq!(best.f1_weighted, best_record.f1_weighted);
    assert!(epochs.iter().all(|e| e.f1_weighted <= best.f1_weighted));
    for v in [best.accuracy, best.f1_weighted, best.f1_macro] {
        assert!((0.0..=1.0).contains(&v));
    }
    assert_eq!(result.confusion_matrix.iter().flatten().sum::<u64>(), 48);

    // The checkpoint holds the best epoch: re-scoring the test split gives its weighted F1.
    let ckpt = run.join("checkpoint");
    let (reloaded, report) = SequenceClassifier::load(&ckpt, 3, Pooling::Cls, Device::Cpu).unwrap();
    assert!(
        report.initialised.is_empty(),
        "head saved: {:?}",
        report.initialised
    );
    let enc = TextEncoder::from_dir(&ckpt, 128).unwrap();
    let test = heal::data::load_task(
        &fixtures()
            .join("tiny-data")
            .join("train.jsonl")
            .display()
            .to_string(),
        None,
        &heal::data::EvalSource::File(fixtures().join("tiny-data").join("test.jsonl")),
        0,
    )
    .unwrap();
    let tok = Tokenized::new(&enc, &test.eval, reloaded.config.uses_token_types()).unwrap();
    let ev = heal::train::eval::evaluate(&reloaded, &tok, 16);
    let rescored = heal::metrics::scores(&tok.labels, &ev.predicted, 3);
    assert!(
        (rescored.f1_weighted - best.f1_weighted).abs() < 1e-9,
        "checkpoint is the best epoch"
    );

    // HF transformers loads the folder and scores identically.
    let texts = test_texts();
    let (reference, id2label) = hf_logits(&ckpt, &texts);
    assert_eq!(
        id2label,
        serde_json::json!({"0": "business", "1": "sport", "2": "tech"})
    );
    assert_logits_close(&heal_logits(&ckpt, &texts, 3), &reference, model);
}

#[test]
fn bert_run_directory_and_checkpoint_in_hf() {
    check_family("tiny-bert");
}

#[test]
fn distilbert_run_directory_and_checkpoint_in_hf() {
    check_family("tiny-distilbert");
}

#[test]
fn roberta_run_directory_and_checkpoint_in_hf() {
    check_family("tiny-roberta");
}

#[test]
fn same_seed_same_numbers_other_seed_other_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, seed: &str| {
        tiny_bert_losses(&tmp.path().join(name), &["--epochs", "2", "--seed", seed])
    };
    let a = run("a", "7");
    let b = run("b", "7");
    let c = run("c", "8");
    assert_eq!(a, b, "same seed, same losses");
    assert_ne!(a, c, "another seed, other losses");
}

#[test]
fn toml_config_with_flag_override() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("run.toml");
    std::fs::write(
        &cfg,
        "epochs = 1\nbatch-size = 16\nlr = 0.002\npooling = \"mean\"\noptimizer = \"adam\"\n",
    )
    .unwrap();
    let run = tmp.path().join("run");
    finetune(
        "tiny-bert",
        &run,
        &["--config", cfg.to_str().unwrap(), "--epochs", "2"],
    );
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    let c = &run_json["config"];
    assert_eq!(c["epochs"], 2, "the flag wins over the file");
    assert_eq!(c["batch-size"], 16);
    assert_eq!(c["lr"], 0.002);
    assert_eq!(c["pooling"], "mean");
    assert_eq!(c["optimizer"], "adam");
    assert_eq!(read_metrics(&run).unwrap().len(), 2);
}

#[test]
fn eval_split_carves_stratified_share() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let data = fixtures().join("tiny-data").join("train.jsonl");
    let out = Command::new(heal_bin())
        .args(["finetune", "--model"])
        .arg(fixtures().join("tiny-bert"))
        .arg("--data")
        .arg(&data)
        .args(["--eval-split", "0.25", "--epochs", "1", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = read_result(&run).unwrap();
    assert_eq!(result.eval_examples, 24, "25% of 96");
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(run_json["data"]["train_examples"], 72);
}

#[test]
fn huge_learning_rate_is_flagged_collapsed() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    finetune("tiny-bert", &run, &["--epochs", "2", "--lr", "0.1"]);
    let result = read_result(&run).unwrap();
    assert_eq!(result.status, Status::Collapsed, "{:?}", result);
    assert!(result.reason.contains("predictions"));
}

#[test]
fn non_finite_loss_is_flagged_diverged() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    finetune(
        "tiny-bert",
        &run,
        &[
            "--epochs",
            "2",
            "--lr",
            "1e10",
            "--grad-clip",
            "0",
            "--warmup",
            "0",
        ],
    );
    let result = read_result(&run).unwrap();
    assert_eq!(result.status, Status::Diverged, "{result:?}");
    assert!(result.reason.contains("non-finite"), "{}", result.reason);
}

#[test]
fn a_libtorch_failure_mid_run_still_writes_result_json() {
    // Adam's state overflows float at this learning rate: libtorch's optimiser raises an error
    // mid-step (heal's fused step would just diverge, so libtorch's is asked for).
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let data = fixtures().join("tiny-data");
    let out = Command::new(heal_bin())
        .args(["finetune", "--model"])
        .arg(fixtures().join("tiny-bert"))
        .arg("--data")
        .arg(data.join("train.jsonl"))
        .arg("--eval-data")
        .arg(data.join("test.jsonl"))
        .args(["--lr", "1e38", "--grad-clip", "0", "--warmup", "0"])
        .args(["--fused-optimizer", "false", "--out"])
        .arg(&run)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = read_result(&run).unwrap();
    assert_eq!(result.status, Status::Failed);
    assert!(result.reason.contains("libtorch"), "{}", result.reason);
}

#[test]
fn bf16_precision_trains_and_is_recorded() {
    // bf16 products (the stacked q/k/v product included) on the tiny BERT: the loss falls and
    // the run records its precision.
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    finetune(
        "tiny-bert",
        &run,
        &[
            "--epochs",
            "4",
            "--batch-size",
            "8",
            "--lr",
            "1e-2",
            "--precision",
            "bf16",
        ],
    );
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(run_json["config"]["precision"], "bf16");
    let epochs = read_metrics(&run).unwrap();
    assert_eq!(epochs.len(), 4);
    assert!(epochs.iter().all(|e| e.train_loss.is_finite()));
    assert!(
        epochs[3].train_loss < epochs[0].train_loss,
        "{:?}",
        epochs.iter().map(|e| e.train_loss).collect::<Vec<_>>()
    );
}

#[test]
fn fused_step_with_sparse_embedding_gradients_matches_libtorch_optimiser() {
    // The fused step takes the gradients from the backward pass (the word embeddings' as a
    // sparse tensor, rows never seen skipped) and libtorch's AdamW reads dense `.grad` fields:
    // with the same seed (same batches, same dropout masks) both runs give the same losses up
    // to float rounding, every epoch.
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, fused: &str| {
        tiny_bert_losses(
            &tmp.path().join(name),
            &["--epochs", "3", "--fused-optimizer", fused],
        )
    };
    let fused = run("fused", "true");
    let torch = run("torch", "false");
    assert_eq!(fused.len(), 3);
    for ((a, b), (c, d)) in fused.iter().zip(&torch) {
        assert!(
            (a - c).abs() < 1e-4 * c.abs().max(1.0),
            "{fused:?} vs {torch:?}"
        );
        assert!(
            (b - d).abs() < 1e-4 * d.abs().max(1.0),
            "{fused:?} vs {torch:?}"
        );
    }
}

/// The dropout mask as src/model/dropout.rs documents it, written out here element by element:
/// key = mix(seed ^ mix(n + G)); element 2k / 2k + 1 is the low / high half of
/// mix(key + (k + 1) G); kept (scaled by 1 / (1 - p)) when that half is at least round(p 2^32).
fn reference_mask(seed: u64, n: u64, len: usize, p: f64) -> Vec<f32> {
    const G: u64 = 0x9e37_79b9_7f4a_7c15;
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let key = mix(seed ^ mix(n.wrapping_add(G)));
    let threshold = (p * 4_294_967_296.0).round() as u64;
    (0..len)
        .map(|i| {
            let h = mix(key.wrapping_add((i as u64 / 2 + 1).wrapping_mul(G)));
            let half = if i % 2 == 0 { h & 0xffff_ffff } else { h >> 32 };
            if half >= threshold {
                (1.0 / (1.0 - p)) as f32
            } else {
                0.0
            }
        })
        .collect()
}

#[test]
fn dropout_masks_are_the_same_on_any_thread_count() {
    // The masks a seeded run draws, with libtorch and rayon at 1, 2 and 4 threads: the same
    // bits every time, and the documented hash's values.
    let shapes: [(&[i64], f64); 4] = [
        (&[3, 7, 33], 0.1),
        (&[2, 129], 0.5),
        (&[4, 13, 32], 0.1),
        (&[1000], 0.9),
    ];
    let draw = |threads: usize| -> Vec<Vec<f32>> {
        tch::set_num_threads(threads as i32);
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                heal::model::dropout::seed(11);
                shapes
                    .iter()
                    .map(|(shape, p)| {
                        Vec::<f32>::try_from(heal::model::dropout::mask(shape, *p).flatten(0, -1))
                            .unwrap()
                    })
                    .collect()
            })
    };
    let one = draw(1);
    for (n, ((shape, p), mask)) in shapes.iter().zip(&one).enumerate() {
        let want = reference_mask(11, n as u64, mask.len(), *p);
        assert_eq!(mask, &want, "mask {n} {shape:?} p={p}");
        let kept = mask.iter().filter(|&&m| m > 0.0).count() as f64 / mask.len() as f64;
        assert!((kept - (1.0 - p)).abs() < 0.1, "mask {n}: kept {kept}");
    }
    for threads in [2, 4] {
        let other = draw(threads);
        for (a, b) in one.iter().zip(&other) {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(a), bits(b), "{threads} threads");
        }
    }
}
