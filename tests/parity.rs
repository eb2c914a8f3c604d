//! Every layer's hidden states and the logits agree with HF transformers (golden outputs made
//! by tests/fixtures/make_fixtures.py) to 1e-4 max abs, for BERT (the embedded minilm-l6),
//! DistilBERT and RoBERTa; the sharded-safetensors and `pytorch_model.bin` formats against
//! HF's logits on folders HF and torch wrote at test time; bf16 against torch's autocast.

mod common;

use common::{fixtures, golden, max_abs_diff, max_abs_diff_masked};
use heal::model::head::Pooling;
use heal::model::{Batch, SequenceClassifier};
use tch::{Device, Tensor};

const TOL: f64 = 1e-4;

/// The compute precision is process-wide (`heal::model::precision::set`): every test here
/// holds this lock, so the bf16 test cannot change another test's products.
static PRECISION: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn precision_lock() -> std::sync::MutexGuard<'static, ()> {
    PRECISION.lock().unwrap_or_else(|e| e.into_inner())
}

fn batch_of(g: &std::collections::HashMap<String, Tensor>) -> Batch {
    let ids = &g["input_ids"];
    Batch {
        input_ids: ids.shallow_clone(),
        token_type_ids: g["token_type_ids"].shallow_clone(),
        attention_mask: g["attention_mask"].shallow_clone(),
        labels: Tensor::zeros([ids.size()[0]], (tch::Kind::Int64, Device::Cpu)),
    }
}

/// Compares all hidden states (real tokens only) and the logits; returns the worst difference.
fn check(model: &SequenceClassifier, name: &str) -> f64 {
    let _fp32 = precision_lock();
    let g = golden(name);
    let batch = batch_of(&g);
    let states = tch::no_grad(|| model.hidden_states(&batch, false));
    let layers = model.config.num_layers as usize;
    assert_eq!(
        states.len(),
        layers + 1,
        "{name}: embeddings output plus one state per layer"
    );
    let mut worst: f64 = 0.0;
    for (i, state) in states.iter().enumerate() {
        let d = max_abs_diff_masked(
            state,
            &g[&format!("hidden_states.{i}")],
            &batch.attention_mask,
        );
        assert!(d < TOL, "{name}: hidden state {i} differs from HF by {d:e}");
        worst = worst.max(d);
    }
    let logits = tch::no_grad(|| model.forward_t(&batch, false));
    let d = max_abs_diff(&logits, &g["logits"]);
    assert!(d < TOL, "{name}: logits differ from HF by {d:e}");
    worst.max(d)
}

fn tiny(name: &str, pooling: Pooling) -> SequenceClassifier {
    let (model, report) =
        SequenceClassifier::load(&fixtures().join(name), 3, pooling, Device::Cpu).unwrap();
    assert!(
        report.initialised.is_empty(),
        "{name}: the fixture has its head: {:?}",
        report.initialised
    );
    model
}

#[test]
fn tiny_bert_matches_hf() {
    check(&tiny("tiny-bert", Pooling::Cls), "tiny-bert");
}

#[test]
fn tiny_distilbert_matches_hf() {
    check(&tiny("tiny-distilbert", Pooling::Cls), "tiny-distilbert");
}

#[test]
fn tiny_roberta_matches_hf() {
    check(&tiny("tiny-roberta", Pooling::Cls), "tiny-roberta");
}

#[test]
fn tiny_bert_mean_pooling_matches_hand_computed_head() {
    let _fp32 = precision_lock();
    let model = tiny("tiny-bert", Pooling::Mean);
    let g = golden("tiny-bert");
    let logits = tch::no_grad(|| model.forward_t(&batch_of(&g), false));
    let d = max_abs_diff(&logits, &g["logits_mean_pooling"]);
    assert!(d < TOL, "mean-pooling logits differ by {d:e}");
}

#[test]
fn minilm_l6_matches_hf() {
    let dir = heal::defaults::minilm_l6_dir().expect("minilm-l6 is installed by .ci/setup");
    let g = golden("minilm-l6");
    for pooling in [Pooling::Cls, Pooling::Mean] {
        let (model, report) = SequenceClassifier::load(&dir, 5, pooling, Device::Cpu).unwrap();
        assert_eq!(
            report.initialised,
            vec!["classifier.bias", "classifier.weight"]
        );
        // Use the reference's randomly drawn head so the logits are comparable.
        model.restore(&[
            (
                "classifier.weight".to_string(),
                g["classifier.weight"].shallow_clone(),
            ),
            (
                "classifier.bias".to_string(),
                g["classifier.bias"].shallow_clone(),
            ),
        ]);
        match pooling {
            Pooling::Cls => {
                let worst = check(&model, "minilm-l6");
                eprintln!("minilm-l6: worst difference to HF {worst:e}");
            }
            Pooling::Mean => {
                let _fp32 = precision_lock();
                let logits = tch::no_grad(|| model.forward_t(&batch_of(&g), false));
                let d = max_abs_diff(&logits, &g["logits_mean_pooling"]);
                assert!(d < TOL, "minilm-l6 mean-pooling logits differ by {d:e}");
            }
        }
    }
}

/// heal's logits on the golden batch of tiny-bert's inputs, as a [rows][classes] table.
fn golden_batch_logits(model: &SequenceClassifier) -> Vec<Vec<f64>> {
    let logits = tch::no_grad(|| model.forward_t(&batch_of(&golden("tiny-bert")), false));
    Vec::<Vec<f64>>::try_from(logits.to_kind(tch::Kind::Double)).unwrap()
}

fn max_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    assert_eq!(a.len(), b.len(), "row count");
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn sharded_safetensors_pytorch_bin_and_bf16_match_hf_and_torch() {
    // tests/fixtures/hf_checkpoint_formats.py writes a noised tiny-bert as HF shards
    // (save_pretrained, max_shard_size 20KB) and as pytorch_model.bin (torch.save), and gives
    // HF's logits of each folder, and of the shards under torch's bf16 autocast.
    let tmp = tempfile::tempdir().unwrap();
    let run = std::process::Command::new(common::venv_python())
        .arg(fixtures().join("hf_checkpoint_formats.py"))
        .arg(tmp.path())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let hf: std::collections::HashMap<String, Vec<Vec<f64>>> =
        serde_json::from_slice(&run.stdout).unwrap();
    let sharded = tmp.path().join("sharded");
    let shards = std::fs::read_dir(&sharded)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with("model-") && name.ends_with(".safetensors")
        })
        .count();
    assert!(shards >= 2, "HF wrote {shards} shards");
    assert!(!sharded.join("model.safetensors").exists());
    assert!(tmp.path().join("bin").join("pytorch_model.bin").exists());
    let _lock = precision_lock();
    for format in ["sharded", "bin"] {
        let (model, report) =
            SequenceClassifier::load(&tmp.path().join(format), 3, Pooling::Cls, Device::Cpu)
                .unwrap();
        assert!(
            report.initialised.is_empty(),
            "{format}: every tensor read, none initialised: {:?}",
            report.initialised
        );
        let d = max_diff(&golden_batch_logits(&model), &hf[format]);
        assert!(d < TOL, "{format}: logits differ from HF's by {d:e}");
    }
    // bf16: heal's mixed precision against torch's autocast on the same weights, and clearly
    // apart from float32 (a bf16 that silently ran float32 fails the second assertion).
    let (model, _) = SequenceClassifier::load(&sharded, 3, Pooling::Cls, Device::Cpu).unwrap();
    let fp32 = golden_batch_logits(&model);
    heal::model::precision::set(heal::model::precision::Precision::Bf16);
    let bf16 = golden_batch_logits(&model);
    heal::model::precision::set(heal::model::precision::Precision::Fp32);
    let to_autocast = max_diff(&bf16, &hf["bf16"]);
    let to_fp32 = max_diff(&bf16, &fp32);
    let autocast_to_fp32 = max_diff(&hf["bf16"], &hf["sharded"]);
    // Autocast returns the classifier's output in bfloat16: at logits up to 2.3 one unit in the
    // last place is 2^-6 = 0.016, which is most of the measured 0.017. 0.03 leaves two such
    // units; bf16 against float32 is 0.19 here (autocast's own: 0.20).
    let what = format!(
        "heal bf16 vs autocast {to_autocast:e}, vs heal fp32 {to_fp32:e}; autocast vs fp32 {autocast_to_fp32:e}"
    );
    assert!(to_autocast < 0.03, "{what}");
    assert!(to_fp32 > 0.1 && autocast_to_fp32 > 0.1, "{what}");
    drop(_lock);

    // torch.save(model.state_dict()) (an OrderedDict, transformers before 4.18): libtorch's
    // unpickler cannot read it; one line naming the file and what to do, exit 2, no backtrace.
    let ordered = tmp.path().join("bin-ordered");
    let out = std::process::Command::new(common::heal_bin())
        .args(["corrupt", "--spec", "all", "--model"])
        .arg(&ordered)
        .arg("--out")
        .arg(tmp.path().join("never"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("bin-ordered/pytorch_model.bin") && stderr.contains("OrderedDict"),
        "{stderr}"
    );
    assert!(!tmp.path().join("never").exists(), "nothing written");
}
