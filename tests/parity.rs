//! Every layer's hidden states and the logits agree with HF transformers (golden outputs made
//! by tests/fixtures/make_fixtures.py) to 1e-4 max abs, for BERT (the embedded minilm-l6),
//! DistilBERT and RoBERTa.

mod common;

use common::{fixtures, golden, max_abs_diff, max_abs_diff_masked};
use heal::model::head::Pooling;
use heal::model::{Batch, SequenceClassifier};
use tch::{Device, Tensor};

const TOL: f64 = 1e-4;

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
                let logits = tch::no_grad(|| model.forward_t(&batch_of(&g), false));
                let d = max_abs_diff(&logits, &g["logits_mean_pooling"]);
                assert!(d < TOL, "minilm-l6 mean-pooling logits differ by {d:e}");
            }
        }
    }
}
