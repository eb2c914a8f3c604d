//! BERT-family sequence classifiers on tch, loaded from HF checkpoint folders.

pub mod checkpoint;
pub mod config;
pub mod dropout;
pub mod encoder;
pub mod head;
pub mod layout;
pub mod place;
pub mod precision;
pub mod tokenizer;

use crate::data::batching::Tokenized;
use crate::fsio;
use anyhow::Context;
use checkpoint::{CheckpointFiles, LoadReport};
use config::EncoderConfig;
use encoder::{Encoder, EncoderWeights, Keep, Pass};
use head::{Head, Pooling};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use tch::{nn, Device, Kind, Tensor};

/// A padded batch on the model's device.
#[derive(Debug)]
pub struct Batch {
    /// [batch, seq] token ids.
    pub input_ids: Tensor,
    /// [batch, seq] segment ids (zeros where the family has none).
    pub token_type_ids: Tensor,
    /// [batch, seq] 1 for real tokens, 0 for padding.
    pub attention_mask: Tensor,
    /// [batch] class indices.
    pub labels: Tensor,
}

/// Encoder + pooling + classification head, with its parameters in one var store whose
/// names are HF's *ForSequenceClassification names.
pub struct SequenceClassifier {
    pub vs: nn::VarStore,
    pub config: EncoderConfig,
    pub encoder: Encoder,
    pub head: Head,
    pub pooling: Pooling,
    pub num_labels: i64,
}

impl SequenceClassifier {
    /// Builds the model for `config` with freshly initialised parameters (seeded by the caller
    /// through `tch::manual_seed`).
    pub fn new(config: EncoderConfig, num_labels: i64, pooling: Pooling, device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let encoder = Encoder::new(&root, &config);
        let head = Head::new(&root, &config, num_labels);
        SequenceClassifier {
            vs,
            config,
            encoder,
            head,
            pooling,
            num_labels,
        }
    }

    /// Loads a checkpoint folder; head tensors the folder lacks are initialised as HF does.
    pub fn load(
        dir: &Path,
        num_labels: i64,
        pooling: Pooling,
        device: Device,
    ) -> anyhow::Result<(Self, LoadReport)> {
        let files = CheckpointFiles::locate(dir)?;
        let config = EncoderConfig::from_file(&files.config)?;
        Self::from_checkpoint(&files, config, num_labels, pooling, device)
    }

    /// As [`load`](Self::load), for a caller that has already located the files and read
    /// config.json.
    pub fn from_checkpoint(
        files: &CheckpointFiles,
        config: EncoderConfig,
        num_labels: i64,
        pooling: Pooling,
        device: Device,
    ) -> anyhow::Result<(Self, LoadReport)> {
        let family = config.family;
        let model = Self::new(config, num_labels, pooling, device);
        let tensors = checkpoint::read_tensors(files, family)?;
        let source = files
            .weights
            .first()
            .map(|p| p.as_path())
            .unwrap_or(&files.dir);
        let report = checkpoint::load_into(&model.vs, &tensors, family, source)?;
        Ok((model, report))
    }

    /// Whether backward passes give the word embeddings' gradient as a sparse tensor (only the
    /// rows of the batch's tokens); only the fused optimiser takes such gradients.
    pub fn set_sparse_embedding_grads(&self, on: bool) {
        self.encoder
            .embeddings
            .sparse_grad
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Hidden states: the embeddings output, then every layer's output ([batch, seq, hidden]).
    pub fn hidden_states(&self, batch: &Batch, train: bool) -> Vec<Tensor> {
        self.encoder.forward_t(
            &batch.input_ids,
            &batch.token_type_ids,
            &batch.attention_mask,
            train,
            true,
        )
    }

    /// The vector the head reads, [batch, hidden]. Under [CLS] pooling the last layer runs at
    /// position 0 only (the rest of its output is never read), in training too: its dropout
    /// masks at position 0 are those of the whole-layer pass.
    pub fn pooled(&self, batch: &Batch, train: bool) -> Tensor {
        let pass = Pass {
            train,
            last_first_only: self.pooling == Pooling::Cls,
            ..Default::default()
        };
        self.pooled_by(batch, pass)
    }

    /// Training logits [batch, num_labels] from weights made for this step
    /// ([`Encoder::weights`](encoder::Encoder::weights), outside `no_grad`): the numbers of
    /// `forward_t(batch, true)`, and under bf16 the casts stay reachable afterwards
    /// ([`EncoderWeights::grad_sources`]), for a backward pass that stops at them.
    pub fn forward_train_with(&self, batch: &Batch, weights: &EncoderWeights) -> Tensor {
        let pass = Pass {
            train: true,
            last_first_only: self.pooling == Pooling::Cls,
            weights: Some(weights),
            ..Default::default()
        };
        self.head.forward_t(&self.pooled_by(batch, pass), true)
    }

    fn pooled_by(&self, batch: &Batch, pass: Pass) -> Tensor {
        let last = self
            .encoder
            .forward_pass(
                &batch.input_ids,
                &batch.token_type_ids,
                &batch.attention_mask,
                pass,
            )
            .pop()
            .expect("the encoder returns at least one state");
        self.pooling.pool(&last, &batch.attention_mask)
    }

    /// Runs `f` with the model set up for inference: no autograd, and the encoder's weights
    /// made once for all of `f`'s passes (under bf16: cast to bfloat16, q|k|v stacked) instead
    /// of at every product (see [`EncoderWeights`]). The parameters must not change inside `f`.
    pub fn inference<R>(&self, f: impl FnOnce(&Inference<'_>) -> R) -> R {
        tch::no_grad(|| {
            let weights = self.encoder.weights();
            f(&Inference {
                model: self,
                weights,
            })
        })
    }

    /// Every chosen layer's pooled vectors of `data`, rows in example order, on the CPU:
    /// layer 0 is the embeddings output, layer i the output of encoder layer i. The encoder
    /// runs in eval mode, over `data`'s evaluation batches of `batch_size`.
    pub fn layer_vectors(
        &self,
        data: &Tokenized,
        batch_size: usize,
        layers: &[usize],
        pooling: Pooling,
    ) -> Vec<(usize, Tensor)> {
        let hidden = self.config.hidden_size;
        let pooled = self.inference(|model| {
            model.map_batches(data, batch_size, |model, batch| {
                // [CLS] pooling reads position 0 of every layer: the last at that row only.
                model
                    .states(batch, layers, pooling == Pooling::Cls)
                    .iter()
                    .map(|state| {
                        pooling
                            .pool(state, &batch.attention_mask)
                            .to_device(Device::Cpu)
                    })
                    .collect::<Vec<_>>()
            })
        });
        let mut out: Vec<(usize, Tensor)> = layers
            .iter()
            .map(|&l| {
                (
                    l,
                    Tensor::zeros([data.len() as i64, hidden], (Kind::Float, Device::Cpu)),
                )
            })
            .collect();
        for (indices, vectors) in pooled {
            let idx = Tensor::from_slice(&indices.iter().map(|&i| i as i64).collect::<Vec<_>>());
            for ((_, target), v) in out.iter_mut().zip(&vectors) {
                let _ = target.index_copy_(0, &idx, v);
            }
        }
        out
    }

    /// Classification logits [batch, num_labels].
    pub fn forward_t(&self, batch: &Batch, train: bool) -> Tensor {
        self.head.forward_t(&self.pooled(batch, train), train)
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Writes an HF-compatible folder: config.json (with id2label), model.safetensors and the
    /// tokenizer files of `tokenizer_dir`. The folder appears complete or not at all.
    pub fn save_hf(
        &self,
        dir: &Path,
        label_names: &[String],
        tokenizer_dir: &Path,
    ) -> anyhow::Result<()> {
        let mut config = self.config.raw.clone();
        let obj = config
            .as_object_mut()
            .context("config.json is not an object")?;
        let id2label: serde_json::Map<String, serde_json::Value> = label_names
            .iter()
            .enumerate()
            .map(|(i, n)| (i.to_string(), n.clone().into()))
            .collect();
        let label2id: serde_json::Map<String, serde_json::Value> = label_names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), (i as i64).into()))
            .collect();
        obj.insert(
            "architectures".into(),
            vec![self.config.family.classifier_architecture()].into(),
        );
        obj.insert("id2label".into(), id2label.into());
        obj.insert("label2id".into(), label2id.into());
        obj.insert("problem_type".into(), "single_label_classification".into());
        obj.insert("torch_dtype".into(), "float32".into());
        obj.insert("heal_pooling".into(), serde_json::to_value(self.pooling)?);
        fsio::write_dir_atomic(dir, |tmp| {
            fsio::write_json(&tmp.join("config.json"), &config)?;
            checkpoint::write_safetensors(&self.vs, &tmp.join("model.safetensors"))?;
            for name in checkpoint::TOKENIZER_FILES {
                let src = tokenizer_dir.join(name);
                if src.is_file() {
                    std::fs::copy(&src, tmp.join(name))
                        .with_context(|| format!("copying {}", src.display()))?;
                }
            }
            Ok(())
        })
    }

    /// A CPU copy of every parameter, to restore later (e.g. the best epoch's weights).
    pub fn snapshot(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.detach().to_device(Device::Cpu).copy()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Copies a [`snapshot`](Self::snapshot) back into the parameters.
    pub fn restore(&self, snapshot: &[(String, Tensor)]) {
        let vars = self.vs.variables();
        tch::no_grad(|| {
            for (name, value) in snapshot {
                if let Some(var) = vars.get(name) {
                    var.shallow_clone().copy_(&value.to_kind(Kind::Float));
                }
            }
        });
    }
}

/// A [`SequenceClassifier`] in eval mode with its weights made once
/// ([`SequenceClassifier::inference`]); every method runs without autograd.
pub struct Inference<'a> {
    model: &'a SequenceClassifier,
    weights: EncoderWeights,
}

impl Inference<'_> {
    fn pass<'p>(&'p self, keep: Keep<'p>, last_first_only: bool) -> Pass<'p> {
        Pass {
            train: false,
            keep,
            last_first_only,
            weights: Some(&self.weights),
        }
    }

    /// The chosen states ([batch, seq, hidden]; 0 = the embeddings output, i = layer i's
    /// output), in the order given; with `last_first_only` the highest at position 0 only
    /// ([batch, 1, hidden]). The layers above the highest are not run.
    pub fn states(&self, batch: &Batch, layers: &[usize], last_first_only: bool) -> Vec<Tensor> {
        self.model.encoder.forward_pass(
            &batch.input_ids,
            &batch.token_type_ids,
            &batch.attention_mask,
            self.pass(Keep::Chosen(layers), last_first_only),
        )
    }

    /// The vector the head reads, [batch, hidden], as [`SequenceClassifier::pooled`] in eval
    /// mode.
    pub fn pooled(&self, batch: &Batch) -> Tensor {
        let first_only = self.model.pooling == Pooling::Cls;
        self.model
            .pooled_by(batch, self.pass(Keep::Last, first_only))
    }

    /// Classification logits [batch, num_labels], as [`SequenceClassifier::forward_t`] in eval
    /// mode.
    pub fn logits(&self, batch: &Batch) -> Tensor {
        self.model.head.forward_t(&self.pooled(batch), false)
    }

    /// `f` of every evaluation batch of `data` ([`Tokenized::eval_batches`]), in batch order,
    /// each with its rows. On the CPU the batches are shared out to workers that split
    /// libtorch's threads between them ([`workers_for`]: on a few cores, one worker per thread,
    /// each multiplying on a single thread). At encoder sizes like minilm-l6's, products of a
    /// few hundred rows, two threads splitting every operation spend much of their time
    /// forking, joining and waiting at OpenMP barriers, while two batches side by side keep
    /// both cores busy: `heal embed` of SST-2's validation split 3.1 -> 2.8 s in float32,
    /// 1.9 -> 1.6 s under bf16, on 2 cores. With single-threaded workers a batch's numbers no
    /// longer depend on the thread count. On a GPU, or with one thread, the batches run in
    /// turn.
    pub fn map_batches<T: Send>(
        &self,
        data: &Tokenized,
        batch_size: usize,
        f: impl Fn(&Self, &Batch) -> T + Sync,
    ) -> Vec<(Vec<usize>, T)> {
        let device = self.model.device();
        let batches = data.eval_batches(batch_size);
        let threads = tch::get_num_threads().max(1) as usize;
        let workers = if device == Device::Cpu {
            workers_for(threads).min(batches.len())
        } else {
            1
        };
        if workers <= 1 {
            return batches
                .into_iter()
                .map(|indices| {
                    let out = f(self, &data.collate(&indices, device));
                    (indices, out)
                })
                .collect();
        }
        let each = (threads / workers).max(1) as i32;
        let next = AtomicUsize::new(0);
        let mut done: Vec<(usize, T)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        // Both settings are per thread in libtorch: OpenMP's team size and
                        // autograd's mode.
                        tch::set_num_threads(each);
                        tch::no_grad(|| {
                            let mut mine = Vec::new();
                            loop {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                let Some(indices) = batches.get(i) else { break };
                                mine.push((i, f(self, &data.collate(indices, device))));
                            }
                            mine
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        // set_num_threads also records the count that threads libtorch starts later take.
        tch::set_num_threads(threads as i32);
        done.sort_by_key(|(i, _)| *i);
        let mut batches = batches.into_iter();
        done.into_iter()
            .map(|(_, out)| (batches.next().expect("one result per batch"), out))
            .collect()
    }
}

/// The most batches in flight at once: each holds its own activations, so a many-core node
/// gives several threads to each worker rather than a worker to each thread.
const MOST_WORKERS: usize = 8;

/// How many workers share `threads` evenly: the largest count up to [`MOST_WORKERS`] that
/// divides them (2 threads: 2 workers of 1; 12: 6 of 2; 7: 7 of 1).
fn workers_for(threads: usize) -> usize {
    (1..=MOST_WORKERS.min(threads))
        .rev()
        .find(|w| threads.is_multiple_of(*w))
        .unwrap_or(1)
}

// SAFETY: an `Inference` only reads its tensors (the parameters and the weights made for the
// pass; no operation of an eval-mode forward writes into them, and autograd is off), and
// libtorch tensors may be read from several threads at once. `map_batches` relies on this to
// run batches side by side.
unsafe impl Sync for Inference<'_> {}

#[cfg(test)]
mod tests {
    use super::workers_for;

    #[test]
    fn workers_share_the_threads_evenly_up_to_eight() {
        let cases = [
            (1, 1),
            (2, 2),
            (3, 3),
            (7, 7),
            (8, 8),
            (12, 6),
            (16, 8),
            (64, 8),
            (11, 1),
        ];
        for (threads, workers) in cases {
            assert_eq!(workers_for(threads), workers, "{threads} threads");
            assert!(threads.is_multiple_of(workers));
        }
    }
}
