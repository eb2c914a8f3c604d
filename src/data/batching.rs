//! Tokenised examples, length-grouped batches and padding to the longest example in a batch.

use super::Example;
use crate::model::tokenizer::{Encoded, TextEncoder};
use crate::model::{precision, Batch};
use rand::seq::SliceRandom;
use rand::Rng;
use tch::{Device, Tensor};

/// How many batches' worth of examples are sorted together when grouping by length.
const GROUP_BATCHES: usize = 50;

/// Examples turned into token ids, ready to batch.
#[derive(Debug, Clone)]
pub struct Tokenized {
    pub encoded: Vec<Encoded>,
    pub labels: Vec<i64>,
    pub pad_id: i64,
    /// Whether token type ids are fed to the model (zeros otherwise).
    pub use_token_types: bool,
    /// The widest a batch is padded to: the tokeniser's length limit, which the model's
    /// positions allow. Rounding a batch's width up ([`precision::pad_multiple`]) stops here.
    pub max_width: usize,
}

impl Tokenized {
    pub fn new(
        encoder: &TextEncoder,
        examples: &[Example],
        use_token_types: bool,
    ) -> anyhow::Result<Self> {
        let texts: Vec<(String, Option<String>)> = examples
            .iter()
            .map(|e| (e.text.clone(), e.text_pair.clone()))
            .collect();
        Ok(Tokenized {
            encoded: encoder.encode_batch(&texts)?,
            labels: examples.iter().map(|e| e.label).collect(),
            pad_id: encoder.pad_id,
            use_token_types,
            max_width: encoder.max_len,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Total real (non-padding) tokens in the given examples.
    pub fn tokens(&self, indices: &[usize]) -> usize {
        indices.iter().map(|&i| self.encoded[i].ids.len()).sum()
    }

    /// The padded width of a batch of `indices`: its longest example (at least 1 token),
    /// rounded up to a multiple of `multiple` where [`max_width`](Self::max_width) allows.
    pub fn width(&self, indices: &[usize], multiple: usize) -> usize {
        let longest = indices
            .iter()
            .map(|&i| self.encoded[i].ids.len())
            .max()
            .unwrap_or(1)
            .max(1);
        let rounded = longest.div_ceil(multiple.max(1)) * multiple.max(1);
        rounded.min(self.max_width).max(longest)
    }

    /// Training batches: a seeded permutation, cut into groups of 50 batches, each group sorted
    /// by length and cut into batches, and the batches shuffled. Similar lengths share a batch
    /// (little padding) while the order stays random.
    pub fn train_batches(&self, batch_size: usize, rng: &mut impl Rng) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(rng);
        let mut batches = Vec::new();
        for group in order.chunks(batch_size * GROUP_BATCHES) {
            let mut group = group.to_vec();
            group.sort_by_key(|&i| std::cmp::Reverse(self.encoded[i].ids.len()));
            batches.extend(group.chunks(batch_size).map(|c| c.to_vec()));
        }
        batches.shuffle(rng);
        batches
    }

    /// Evaluation batches: all examples sorted by length (longest first), in order.
    pub fn eval_batches(&self, batch_size: usize) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(self.encoded[i].ids.len()), i));
        order.chunks(batch_size).map(|c| c.to_vec()).collect()
    }

    /// Pads the chosen examples to the longest of them, rounded up to the multiple the
    /// precision and device ask for ([`precision::pad_multiple`]) but never past
    /// [`max_width`](Self::max_width) nor shortening an example, and moves them to `device`.
    pub fn collate(&self, indices: &[usize], device: Device) -> Batch {
        let width = self.width(indices, precision::pad_multiple(device));
        let n = indices.len();
        let mut ids = vec![self.pad_id; n * width];
        let mut types = vec![0i64; n * width];
        let mut mask = vec![0i64; n * width];
        for (row, &i) in indices.iter().enumerate() {
            let e = &self.encoded[i];
            let start = row * width;
            ids[start..start + e.ids.len()].copy_from_slice(&e.ids);
            if self.use_token_types {
                types[start..start + e.type_ids.len()].copy_from_slice(&e.type_ids);
            }
            mask[start..start + e.ids.len()]
                .iter_mut()
                .for_each(|m| *m = 1);
        }
        let labels: Vec<i64> = indices.iter().map(|&i| self.labels[i]).collect();
        let shape = [n as i64, width as i64];
        Batch {
            input_ids: Tensor::from_slice(&ids).view(shape).to_device(device),
            token_type_ids: Tensor::from_slice(&types).view(shape).to_device(device),
            attention_mask: Tensor::from_slice(&mask).view(shape).to_device(device),
            labels: Tensor::from_slice(&labels).to_device(device),
        }
    }
}
