//! The fully resolved fine-tuning configuration. The CLI builds it from flags and TOML; the
//! same struct is written to run.json, so "what ran" and "what was asked" cannot drift apart.

use super::optim::OptimizerKind;
use super::options::FinetuneOptions;
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
    /// Batches of `batch_size` per optimiser step.
    #[serde(default = "one")]
    pub gradient_accumulation_steps: usize,
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
    /// Patience in epochs on the selection score (validation weighted F1, else evaluation
    /// weighted F1); None: every epoch runs.
    #[serde(default)]
    pub early_stopping: Option<usize>,
    /// Optimiser steps between training-loss points in the TensorBoard event file (and
    /// between loss read-backs).
    #[serde(default = "log_every")]
    pub log_every: usize,
    /// Keep the resume state (RUN/resume/) when the run ends.
    #[serde(default)]
    pub keep_resume_state: bool,
    /// Evaluation examples in the sample of RUN/analysis/; 0: no artefacts.
    #[serde(default = "analysis_examples")]
    pub analysis_examples: usize,
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

    /// Whether the loop copies the weights at each new best epoch, for what is written from
    /// them at the end (a checkpoint, embeddings, the analysis artefacts).
    pub fn keeps_best_weights(&self) -> bool {
        self.saves(CheckpointStage::Best)
            || self.dumps(EmbeddingStage::Best)
            || self.analysis_examples > 0
    }

    /// The options that resolve to this config again, every one set except `overwrite`: a
    /// repeated run replaces a directory only when asked.
    pub fn to_options(&self) -> FinetuneOptions {
        let include: Vec<&str> = [
            (self.include.embeddings, "embeddings"),
            (self.include.pooler, "pooler"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        let modules: Vec<&str> = self.modules.iter().map(|m| m.name()).collect();
        FinetuneOptions {
            model: Some(self.model.clone()),
            revision: self.revision.clone(),
            data: Some(self.data.clone()),
            data_dir: self.data_dir.clone(),
            eval_data: self.eval_data.clone(),
            eval_split: self.eval_split,
            validation_split: self.validation_split,
            max_train_examples: self.max_train_examples,
            epochs: Some(self.epochs),
            lr: Some(self.lr),
            batch_size: Some(self.batch_size),
            gradient_accumulation_steps: Some(self.gradient_accumulation_steps),
            eval_batch_size: Some(self.eval_batch_size),
            max_len: Some(self.max_len),
            pooling: Some(self.pooling),
            optimizer: Some(self.optimizer),
            weight_decay: Some(self.weight_decay),
            warmup: Some(self.warmup),
            grad_clip: Some(self.grad_clip),
            seed: Some(self.seed),
            device: Some(self.device.clone()),
            precision: Some(self.precision),
            fused_optimizer: Some(self.fused_optimizer),
            threads: self.threads,
            out: Some(self.out.clone()),
            corrupt: Some(self.corrupt.to_string()),
            method: Some(self.method.to_string()),
            modules: Some(modules.join(",")),
            include: Some(if include.is_empty() {
                "none".into()
            } else {
                include.join(",")
            }),
            kaiming: Some(self.kaiming),
            corrupt_seed: Some(self.corrupt_seed),
            train: Some(self.train.to_string()),
            feature_cache: Some(self.feature_cache),
            save_checkpoint: Some(stage_list(&self.save_checkpoint)),
            dump_embeddings: Some(stage_list(&self.dump_embeddings)),
            overwrite: None,
            collapse_threshold: Some(self.collapse_threshold),
            log_every: Some(self.log_every),
            keep_resume_state: Some(self.keep_resume_state),
            early_stopping: Some(self.early_stopping.unwrap_or(0)),
            analysis_examples: Some(self.analysis_examples),
        }
    }
}

/// `corrupted,best` as the flags take it; `none` for no stage.
fn stage_list<T: clap::ValueEnum>(stages: &[T]) -> String {
    let names: Vec<String> = stages
        .iter()
        .filter_map(|s| s.to_possible_value().map(|v| v.get_name().to_string()))
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
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

fn analysis_examples() -> usize {
    super::options::defaults::ANALYSIS_EXAMPLES
}

fn one() -> usize {
    1
}

#[cfg(test)]
mod tests {
    use super::FinetuneOptions;

    #[test]
    fn a_config_turned_back_into_options_resolves_to_itself() {
        use crate::corrupt::method::Kaiming;
        use crate::model::{head::Pooling, precision::Precision};
        use crate::train::optim::OptimizerKind;
        let out = Some("runs/x".into());
        let full = FinetuneOptions {
            model: Some("some/model".into()),
            revision: Some("v1".into()),
            data: Some("train.jsonl".into()),
            data_dir: Some("data".into()),
            eval_data: None,
            eval_split: Some(0.2),
            validation_split: Some(0.1),
            max_train_examples: Some(50),
            epochs: Some(4),
            lr: Some(2e-5),
            batch_size: Some(8),
            gradient_accumulation_steps: Some(4),
            eval_batch_size: Some(16),
            max_len: Some(64),
            pooling: Some(Pooling::Mean),
            optimizer: Some(OptimizerKind::Adam),
            weight_decay: Some(0.01),
            warmup: Some(0.06),
            grad_clip: Some(0.5),
            seed: Some(3),
            device: Some("cpu".into()),
            precision: Some(Precision::Bf16),
            fused_optimizer: Some(false),
            threads: Some(2),
            out: out.clone(),
            corrupt: Some("bottom:25%".into()),
            method: Some("noise:0.5".into()),
            modules: Some("attention,ln_ffn".into()),
            include: Some("pooler,embeddings".into()),
            kaiming: Some(Kaiming::Linear),
            corrupt_seed: Some(9),
            train: Some("layers:top:2".into()),
            feature_cache: Some(false),
            save_checkpoint: Some("corrupted,best".into()),
            dump_embeddings: Some("best".into()),
            overwrite: Some(true),
            collapse_threshold: Some(0.9),
            early_stopping: Some(2),
            log_every: Some(5),
            keep_resume_state: Some(true),
            analysis_examples: Some(500),
        };
        let plain = FinetuneOptions {
            out,
            ..Default::default()
        };
        for options in [full, plain] {
            let cfg = options.resolve().unwrap();
            let again = cfg.to_options().resolve().unwrap();
            assert!(
                !again.overwrite,
                "a repeat never replaces a directory unasked"
            );
            assert_eq!(
                super::FinetuneConfig {
                    overwrite: cfg.overwrite,
                    ..again
                },
                cfg
            );
        }
    }
}
