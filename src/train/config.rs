//! The fully resolved fine-tuning configuration. The CLI builds it from flags and TOML; the
//! same struct is written to run.json, so "what ran" and "what was asked" cannot drift apart.

use super::optim::OptimizerKind;
use super::trainable::TrainMode;
use crate::corrupt::method::{Kaiming, Method};
use crate::corrupt::select::{Include, Module};
use crate::corrupt::spec::LayerSpec;
use crate::corrupt::CorruptionConfig;
use crate::model::head::Pooling;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FinetuneConfig {
    /// `minilm-l6` or an HF checkpoint folder.
    pub model: String,
    /// The hub revision when `model` is a hub id (None: main).
    #[serde(default)]
    pub revision: Option<String>,
    /// `bbc-news`, a data file, a folder with train.* (and validation.* / test.*), or a name
    /// `heal data fetch` knows.
    pub data: String,
    /// heal's data folder for a named `data`; None: $HEAL_DATA_DIR, else ~/.cache/heal/data.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// A separate evaluation file.
    pub eval_data: Option<PathBuf>,
    /// A stratified carve-out of the training data for evaluation.
    pub eval_split: Option<f64>,
    /// A stratified carve-out of the training data scored every epoch beside the evaluation
    /// split, for choosing epochs and learning rates without the evaluation split.
    #[serde(default)]
    pub validation_split: Option<f64>,
    /// Train on a seeded random subset of this many examples.
    pub max_train_examples: Option<usize>,
    pub epochs: usize,
    pub lr: f64,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    pub max_len: usize,
    pub pooling: Pooling,
    pub optimizer: OptimizerKind,
    pub weight_decay: f64,
    /// Fraction of all optimiser steps spent warming the learning rate up.
    pub warmup: f64,
    /// Global gradient-norm limit; 0 turns clipping off.
    pub grad_clip: f64,
    pub seed: u64,
    pub device: String,
    /// Matrix-product precision (fp32, or bf16 mixed precision).
    #[serde(default)]
    pub precision: crate::model::precision::Precision,
    /// Fused optimiser step on the CPU (float32): the same update as libtorch's, in two passes.
    #[serde(default = "yes")]
    pub fused_optimizer: bool,
    /// libtorch intra-op threads; None keeps libtorch's default (one per core).
    pub threads: Option<usize>,
    pub out: PathBuf,
    /// Which layers to damage before training.
    pub corrupt: LayerSpec,
    /// How to damage them.
    pub method: Method,
    /// Which modules inside the layers.
    pub modules: Vec<Module>,
    /// Parts outside the encoder layers to damage too.
    pub include: Include,
    pub kaiming: Kaiming,
    /// Seed of the damage (defaults to `seed`).
    pub corrupt_seed: u64,
    /// Which parameters train.
    pub train: TrainMode,
    /// With `train = head`: encode every example once and train the head on cached features.
    pub feature_cache: bool,
    /// Stages whose evaluation-split embeddings (every layer) go to embeddings/<stage>/.
    pub dump_embeddings: Vec<EmbeddingStage>,
    /// Models to save as HF folders: `corrupted` (checkpoint-corrupted/), `best` (checkpoint/).
    pub save_checkpoint: Vec<CheckpointStage>,
    /// Replace an existing run directory.
    pub overwrite: bool,
    /// A run is "collapsed" when one class gets more than this share of the predictions.
    pub collapse_threshold: f64,
    /// Optimiser steps between training-loss points in the TensorBoard event file (and
    /// between loss read-backs).
    #[serde(default = "log_every")]
    pub log_every: usize,
}

/// Declaration order is the order of a stage list (`corrupted,best`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointStage {
    /// The damaged starting point, in checkpoint-corrupted/.
    Corrupted,
    /// The best epoch's model, in checkpoint/.
    #[value(alias = "true")]
    Best,
}

impl FinetuneConfig {
    pub fn corruption(&self) -> CorruptionConfig {
        CorruptionConfig {
            spec: self.corrupt.clone(),
            modules: self.modules.clone(),
            include: self.include,
            method: self.method.clone(),
            kaiming: self.kaiming,
            seed: self.corrupt_seed,
        }
    }

    /// The corruption setting as figures name it: the spec's title ("bottom 25%"), with the
    /// method added when it is not the paper's re-initialisation ("top 50%, noise:0.5").
    pub fn setting_title(&self) -> String {
        let base = self.corrupt.title();
        if self.corrupt == LayerSpec::None || self.method == Method::Reinit {
            base
        } else {
            format!("{base}, {}", self.method)
        }
    }

    pub fn saves(&self, stage: CheckpointStage) -> bool {
        self.save_checkpoint.contains(&stage)
    }
}

/// Declaration order is the pipeline's order and that of a stage list.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingStage {
    /// The checkpoint as loaded.
    Pretrained,
    /// After the damage (only with --corrupt).
    Corrupted,
    /// The best epoch's model.
    Best,
}

impl EmbeddingStage {
    pub fn name(self) -> &'static str {
        match self {
            EmbeddingStage::Pretrained => "pretrained",
            EmbeddingStage::Corrupted => "corrupted",
            EmbeddingStage::Best => "best",
        }
    }
}

impl FinetuneConfig {
    pub fn dumps(&self, stage: EmbeddingStage) -> bool {
        self.dump_embeddings.contains(&stage)
    }
}

fn yes() -> bool {
    true
}

fn log_every() -> usize {
    super::options::defaults::LOG_EVERY
}
