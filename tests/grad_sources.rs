//! Under bf16 the training loop takes the encoder weights' gradients at their bfloat16 casts
//! (`GradSource`) and the fused step reads them as they are, instead of letting the casts'
//! backward convert them to float32 first. Conversion from bfloat16 is exact, so the step must
//! be the same bit for bit: parameters after one step, after a step over two micro-batches,
//! and with some of a layer's stacked q|k|v frozen, equal to the step through the casts.

mod common;

use common::{fixtures, golden};
use heal::model::head::Pooling;
use heal::model::precision::{self, Precision};
use heal::model::{Batch, SequenceClassifier};
use heal::train::optim::{OptimizerKind, Stepper};
use tch::{Device, Kind, Tensor};

fn model(name: &str) -> SequenceClassifier {
    // The same head initialisation for every copy.
    tch::manual_seed(0);
    let (m, _) =
        SequenceClassifier::load(&fixtures().join(name), 3, Pooling::Cls, Device::Cpu).unwrap();
    m.set_sparse_embedding_grads(true);
    m
}

fn batch(name: &str) -> Batch {
    let g = golden(name);
    let ids = g["input_ids"].repeat([2, 1]);
    let rows = ids.size()[0];
    Batch {
        input_ids: ids,
        token_type_ids: g["token_type_ids"].repeat([2, 1]),
        attention_mask: g["attention_mask"].repeat([2, 1]),
        labels: Tensor::arange(rows, (Kind::Int64, Device::Cpu)).remainder(3),
    }
}

/// The parameters after `micro` backward passes and one fused step, the weights' gradients
/// taken at the casts (`at_casts`) or at the parameters.
fn after_step(
    name: &str,
    at_casts: bool,
    micro: usize,
    freeze: Option<&str>,
) -> Vec<(String, Tensor)> {
    let m = model(name);
    if let Some(frozen) = freeze {
        let vars = m.vs.variables();
        let _ = vars[frozen].shallow_clone().set_requires_grad(false);
    }
    let mut opt = Stepper::new(&m.vs, OptimizerKind::Adamw, 1e-3, 0.01, true).unwrap();
    assert!(opt.is_fused());
    let b = batch(name);
    for pass in 0..micro {
        heal::model::dropout::seed(7 + pass as u64);
        let loss = if at_casts {
            let w = m.encoder.weights();
            let logits = m.forward_train_with(&b, &w);
            let loss = logits.cross_entropy_for_logits(&b.labels) * (1.0 / micro as f64);
            let sources = w.grad_sources();
            assert!(!sources.is_empty(), "{name}: bf16 weights are casts");
            opt.accumulate(&loss, &sources);
            loss
        } else {
            let logits = m.forward_t(&b, true);
            let loss = logits.cross_entropy_for_logits(&b.labels) * (1.0 / micro as f64);
            opt.accumulate(&loss, &[]);
            loss
        };
        assert!(loss.double_value(&[]).is_finite());
    }
    opt.step(|_, _| None, 1.0);
    let mut out: Vec<(String, Tensor)> = m.vs.variables().into_iter().collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn a_step_on_gradients_taken_at_the_casts_is_the_step_through_them() {
    precision::set(Precision::Bf16);
    let frozen = "bert.encoder.layer.0.attention.self.key.weight";
    for name in ["tiny-bert", "tiny-roberta", "tiny-distilbert"] {
        for (micro, freeze) in [(1, None), (2, None), (1, Some(frozen))] {
            if freeze.is_some() && name != "tiny-bert" {
                continue;
            }
            let before = {
                let mut v: Vec<(String, Tensor)> = model(name).vs.variables().into_iter().collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v
            };
            let through = after_step(name, false, micro, freeze);
            let at = after_step(name, true, micro, freeze);
            let mut moved = 0;
            for (((n, a), (_, b)), (_, start)) in through.iter().zip(&at).zip(&before) {
                assert!(
                    a.equal(b),
                    "{name}, {micro} micro-batches, frozen {freeze:?}: {n} differs by {:e}",
                    (a - b).abs().max().double_value(&[])
                );
                if !a.equal(start) {
                    moved += 1;
                }
                if Some(n.as_str()) == freeze {
                    assert!(a.equal(start), "{n} is frozen");
                }
            }
            // The step did something: most parameters moved.
            assert!(
                moved * 2 > through.len(),
                "{name}: {moved} of {} moved",
                through.len()
            );
        }
    }
    precision::set(Precision::Fp32);
}
