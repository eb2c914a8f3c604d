//! Evaluation: predictions and loss over a tokenised split, in the split's own order.

use crate::data::batching::Tokenized;
use crate::model::head::predictions;
use crate::model::SequenceClassifier;
use tch::{Kind, Reduction, Tensor};

/// Predictions (in example order) and the mean cross-entropy loss.
pub struct Evaluation {
    pub predicted: Vec<i64>,
    pub loss: f64,
}

pub fn evaluate(model: &SequenceClassifier, data: &Tokenized, batch_size: usize) -> Evaluation {
    let device = model.device();
    let mut predicted = vec![0i64; data.len()];
    let mut loss_sum = Tensor::zeros([], (Kind::Float, device));
    let batches = model.inference(|model| {
        model.map_batches(data, batch_size, |model, batch| {
            let logits = model.logits(batch);
            let loss =
                logits.cross_entropy_loss::<Tensor>(&batch.labels, None, Reduction::Sum, -100, 0.0);
            (predictions(&logits).to_device(tch::Device::Cpu), loss)
        })
    });
    // Summed in batch order, whichever worker finished first.
    for (indices, (pred, loss)) in batches {
        loss_sum += loss;
        let pred = Vec::<i64>::try_from(pred).expect("predictions are i64");
        for (&i, p) in indices.iter().zip(pred) {
            predicted[i] = p;
        }
    }
    let loss = loss_sum.double_value(&[]) / data.len().max(1) as f64;
    Evaluation { predicted, loss }
}

/// Evaluation of the head alone on precomputed head inputs ([examples, hidden], in example
/// order), for probes on a frozen encoder.
pub fn evaluate_features(
    head: &crate::model::head::Head,
    features: &Tensor,
    labels: &[i64],
    batch_size: usize,
) -> Evaluation {
    let device = features.device();
    let gold = Tensor::from_slice(labels).to_device(device);
    let (predicted, loss) = tch::no_grad(|| {
        let mut logits = Vec::new();
        for start in (0..labels.len()).step_by(batch_size.max(1)) {
            let len = batch_size.min(labels.len() - start) as i64;
            logits.push(head.forward_t(&features.narrow(0, start as i64, len), false));
        }
        let logits = Tensor::cat(&logits, 0);
        let loss = logits.cross_entropy_loss::<Tensor>(&gold, None, Reduction::Mean, -100, 0.0);
        (predictions(&logits), loss.double_value(&[]))
    });
    let predicted =
        Vec::<i64>::try_from(predicted.to_device(tch::Device::Cpu)).expect("predictions are i64");
    Evaluation { predicted, loss }
}
