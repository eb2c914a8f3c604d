//! The sample's pooled vectors per layer, with the run's pooling, as
//! [`SequenceClassifier::layer_vectors`] gives them to `heal embed` and `--dump-embeddings`.

use crate::data::batching::Tokenized;
use crate::model::SequenceClassifier;
use ndarray::Array2;
use tch::{Kind, Tensor};

/// The rows `sample` of `eval` as a set of their own, in the sample's order.
pub fn sample_set(eval: &Tokenized, sample: &[usize]) -> Tokenized {
    Tokenized {
        encoded: sample.iter().map(|&i| eval.encoded[i].clone()).collect(),
        labels: sample.iter().map(|&i| eval.labels[i]).collect(),
        pad_id: eval.pad_id,
        use_token_types: eval.use_token_types,
        max_width: eval.max_width,
    }
}

/// The chosen layers' pooled vectors of `set` (0 = the embeddings output), the encoder in eval
/// mode, each as an [examples, hidden] matrix.
pub fn layer_matrices(
    model: &SequenceClassifier,
    set: &Tokenized,
    layers: &[usize],
    batch_size: usize,
) -> anyhow::Result<Vec<(usize, Array2<f32>)>> {
    model
        .layer_vectors(set, batch_size, layers, model.pooling)
        .into_iter()
        .map(|(layer, t)| Ok((layer, matrix(&t)?)))
        .collect()
}

/// A [rows, cols] float tensor as a matrix.
fn matrix(t: &Tensor) -> anyhow::Result<Array2<f32>> {
    let size = t.size();
    let (rows, cols) = (size[0] as usize, size[1] as usize);
    let values = Vec::<f32>::try_from(t.to_kind(Kind::Float).contiguous().flatten(0, -1))?;
    Ok(Array2::from_shape_vec((rows, cols), values)?)
}
