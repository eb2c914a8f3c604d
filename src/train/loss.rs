//! The training loss of a batch, and the features the head-only mode computes it from.

use super::prepare::Prepared;
use crate::data::batching::Tokenized;
use crate::model::encoder::EncoderWeights;
use crate::model::SequenceClassifier;
use tch::{Kind, Reduction, Tensor};

/// The mean cross-entropy loss of one training batch: from the cached features, through the
/// frozen encoder (--train head), or through the whole model (with `weights`, made for this
/// step, when given).
pub(super) fn batch_loss(
    p: &Prepared,
    features: Option<&Tensor>,
    head_only: bool,
    indices: &[usize],
    weights: Option<&EncoderWeights>,
) -> Tensor {
    let batch = p.train.collate(indices, p.device);
    let logits = match (features, head_only) {
        (Some(f), _) => {
            let idx = Tensor::from_slice(&indices.iter().map(|&i| i as i64).collect::<Vec<_>>())
                .to_device(p.device);
            p.model.head.forward_t(&f.index_select(0, &idx), true)
        }
        (None, true) => {
            let pooled = tch::no_grad(|| p.model.pooled(&batch, false));
            p.model.head.forward_t(&pooled, true)
        }
        (None, false) => match weights {
            Some(w) => p.model.forward_train_with(&batch, w),
            None => p.model.forward_t(&batch, true),
        },
    };
    logits.cross_entropy_loss::<Tensor>(&batch.labels, None, Reduction::Mean, -100, 0.0)
}

/// The head's input for every training example, computed once with the encoder in eval mode.
pub(super) fn pooled_features(
    model: &SequenceClassifier,
    data: &Tokenized,
    batch_size: usize,
) -> Tensor {
    let device = model.device();
    let mut features = Tensor::zeros(
        [data.len() as i64, model.config.hidden_size],
        (Kind::Float, device),
    );
    let pooled = model
        .inference(|model| model.map_batches(data, batch_size, |model, batch| model.pooled(batch)));
    for (indices, pooled) in pooled {
        let idx = Tensor::from_slice(&indices.iter().map(|&i| i as i64).collect::<Vec<_>>())
            .to_device(device);
        let _ = features.index_copy_(0, &idx, &pooled);
    }
    features
}
