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

use crate::fsio;
use anyhow::Context;
use checkpoint::{CheckpointFiles, LoadReport};
use config::EncoderConfig;
use encoder::{Encoder, EncoderWeights, Pass};
use head::{Head, Pooling};
use std::path::Path;
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

    /// Every chosen layer's pooled vectors of a dataset, rows in example order, on the CPU:
    /// layer 0 is the embeddings output, layer i the output of encoder layer i. The encoder
    /// runs in eval mode; `batches` gives each batch with the rows it fills.
    pub fn layer_vectors(
        &self,
        rows: usize,
        batches: impl IntoIterator<Item = (Vec<usize>, Batch)>,
        layers: &[usize],
        pooling: Pooling,
    ) -> Vec<(usize, Tensor)> {
        let hidden = self.config.hidden_size;
        let mut out: Vec<(usize, Tensor)> = layers
            .iter()
            .map(|&l| {
                (
                    l,
                    Tensor::zeros([rows as i64, hidden], (Kind::Float, Device::Cpu)),
                )
            })
            .collect();
        self.inference(|model| {
            for (indices, batch) in batches {
                // [CLS] pooling reads position 0 of every layer: the last at that row only.
                let states = model.hidden_states(&batch, pooling == Pooling::Cls);
                let idx =
                    Tensor::from_slice(&indices.iter().map(|&i| i as i64).collect::<Vec<_>>());
                for (layer, target) in out.iter_mut() {
                    let pooled = pooling
                        .pool(&states[*layer], &batch.attention_mask)
                        .to_device(Device::Cpu);
                    let _ = target.index_copy_(0, &idx, &pooled);
                }
            }
        });
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
    fn pass(&self, all_layers: bool, last_first_only: bool) -> Pass<'_> {
        Pass {
            train: false,
            all_layers,
            last_first_only,
            weights: Some(&self.weights),
        }
    }

    /// The embeddings output, then every layer's output ([batch, seq, hidden]); with
    /// `last_first_only` the last layer's at position 0 only ([batch, 1, hidden]).
    pub fn hidden_states(&self, batch: &Batch, last_first_only: bool) -> Vec<Tensor> {
        self.model.encoder.forward_pass(
            &batch.input_ids,
            &batch.token_type_ids,
            &batch.attention_mask,
            self.pass(true, last_first_only),
        )
    }

    /// The vector the head reads, [batch, hidden], as [`SequenceClassifier::pooled`] in eval
    /// mode.
    pub fn pooled(&self, batch: &Batch) -> Tensor {
        let first_only = self.model.pooling == Pooling::Cls;
        self.model.pooled_by(batch, self.pass(false, first_only))
    }

    /// Classification logits [batch, num_labels], as [`SequenceClassifier::forward_t`] in eval
    /// mode.
    pub fn logits(&self, batch: &Batch) -> Tensor {
        self.model.head.forward_t(&self.pooled(batch), false)
    }
}
