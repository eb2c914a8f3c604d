//! The fine-tuning options as a user gives them (flags, a TOML file, a sweep grid's [base]),
//! their defaults (here and nowhere else), their checks, and their resolution into a
//! [`FinetuneConfig`]. The CLI derives its flags from this type; sweeps build cells from it.

use super::config::FinetuneConfig;
use super::optim::OptimizerKind;
use super::trainable::TrainMode;
use crate::corrupt::method::{Kaiming, Method};
use crate::corrupt::select::{parse_modules, Include};
use crate::corrupt::spec::LayerSpec;
use crate::error::user;
use crate::model::head::Pooling;
use crate::model::precision::Precision;
use clap::Args;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The defaults of every option that has one; `--help`, README and sweeps read them here.
pub mod defaults {
    pub const EPOCHS: usize = 3;
    pub const LR: f64 = 5e-5;
    pub const BATCH_SIZE: usize = 32;
    pub const EVAL_BATCH_SIZE: usize = 64;
    pub const MAX_LEN: usize = 128;
    pub const WEIGHT_DECAY: f64 = 0.0;
    pub const WARMUP: f64 = 0.1;
    pub const GRAD_CLIP: f64 = 1.0;
    pub const SEED: u64 = 42;
    pub const DEVICE: &str = "auto";
    pub const CORRUPT: &str = "none";
    pub const METHOD: &str = "reinit";
    pub const MODULES: &str = "all";
    pub const TRAIN: &str = "full";
    pub const COLLAPSE_THRESHOLD: f64 = 0.95;
    /// Off: every epoch runs.
    pub const EARLY_STOPPING: Option<usize> = None;
    pub const GRADIENT_ACCUMULATION_STEPS: usize = 1;
    pub const LOG_EVERY: usize = 10;
    /// The study's artefacts (RUN/analysis/) on a sample of this many evaluation examples.
    pub const ANALYSIS_EXAMPLES: usize = 2000;
    /// The most --analysis-examples takes: BERT-Base's vectors are 20 kB per example.
    pub const MAX_ANALYSIS_EXAMPLES: usize = 100_000;
}

/// Every option is optional here: a flag wins over the TOML file, the TOML file over the
/// default. TOML keys are the flag names (`batch-size = 32`).
#[derive(Args, Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FinetuneOptions {
    /// Checkpoint: `minilm-l6`, an HF folder (config.json + model.safetensors or
    /// pytorch_model.bin, tokenizer.json or vocab.txt), or a hub id such as
    /// google-bert/bert-base-uncased (from the HF cache, else downloaded into it).
    /// [default: minilm-l6]
    #[arg(long)]
    pub model: Option<String>,
    /// Hub revision (branch, tag or commit) when --model is a hub id. [default: main]
    #[arg(long)]
    pub revision: Option<String>,
    /// Data: `bbc-news`, a .jsonl/.jsonl.gz/.csv/.tsv file with text, label (and text_pair), a
    /// folder with train.* and validation.*/test.*, or a name `heal data fetch` knows (sst2,
    /// imdb, ag_news, ...: taken from --data-dir, fetched there first if missing). Label names
    /// come from labels.json beside the file, else the sorted set of training labels.
    /// [default: bbc-news]
    #[arg(long)]
    pub data: Option<String>,
    /// heal's data folder, where `--data NAME` finds (or fetches) a named dataset.
    /// [default: $HEAL_DATA_DIR, else ~/.cache/heal/data]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Evaluation file (same format). Without it: the dataset's own held-out split.
    #[arg(long, conflicts_with = "eval_split")]
    pub eval_data: Option<PathBuf>,
    /// Evaluate on a seeded, stratified carve-out of this fraction of the training data.
    #[arg(long)]
    pub eval_split: Option<f64>,
    /// Also carve this fraction of the training data (seeded, stratified, after
    /// --max-train-examples) as a validation split, scored every epoch next to the evaluation
    /// split: epochs and learning rates can then be chosen without the evaluation split
    /// (`heal report --select validation`).
    #[arg(long)]
    pub validation_split: Option<f64>,
    /// Train on a seeded random subset of this many training examples.
    #[arg(long)]
    pub max_train_examples: Option<usize>,
    /// Passes over the training data. [default: 3]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Peak learning rate. [default: 5e-5]
    #[arg(long)]
    pub lr: Option<f64>,
    /// Training batch size. [default: 32]
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// One optimiser step per K batches of --batch-size (the same update as one batch of K
    /// times the size; the schedule counts optimiser steps). [default: 1]
    #[arg(long, value_name = "K")]
    pub gradient_accumulation_steps: Option<usize>,
    /// Evaluation batch size. [default: 64]
    #[arg(long)]
    pub eval_batch_size: Option<usize>,
    /// Truncate every example to this many tokens, special tokens included. [default: 128]
    #[arg(long)]
    pub max_len: Option<usize>,
    /// What the classifier reads: cls (the first token, as HF) or mean (mean of the non-[CLS],
    /// non-padding tokens). [default: cls]
    #[arg(long, value_enum)]
    pub pooling: Option<Pooling>,
    /// adamw (decoupled weight decay) or adam (the paper's). [default: adamw]
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// Weight decay. [default: 0]
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Fraction of steps for linear warm-up, then linear decay to 0. [default: 0.1]
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Clip the global gradient norm to this; 0 disables. [default: 1.0]
    #[arg(long)]
    pub grad_clip: Option<f64>,
    /// Seed for initialisation, dropout, batch order and carve-outs. [default: 42]
    #[arg(long)]
    pub seed: Option<u64>,
    /// auto, cpu, cuda or cuda:N. [default: auto]
    #[arg(long)]
    pub device: Option<String>,
    /// Matrix-product precision: fp32, or bf16 (bfloat16 products, float32 weights, optimiser,
    /// LayerNorm and loss; fast on CPUs with AMX and on Ampere or newer GPUs; on x86 CPUs
    /// without AMX the products run on float32 kernels with bfloat16's rounding,
    /// HEAL_BF16_KERNELS=bf16|fp32 overriding the choice). [default: fp32]
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
    /// On the CPU, take optimiser steps with heal's fused Adam/AdamW (clipping, update and
    /// gradient zeroing in two memory passes; the same arithmetic as libtorch's); false uses
    /// libtorch's optimiser. [default: true]
    #[arg(long)]
    pub fused_optimizer: Option<bool>,
    /// libtorch threads. [default: one per core]
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run directory. [default: runs/<model>-<data>-<time>]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Layers to damage before training: none, all, bottom:25%, top:50%, bottom:3, layers:1-3,7
    /// (1-based; a percentage p of L layers selects floor(L*p/100 + 0.5) layers). [default: none]
    #[arg(long)]
    pub corrupt: Option<String>,
    /// How: reinit (LayerNorm weights 1, biases 0, other weights Kaiming-uniform), noise:S
    /// (w + S*std(w)*N(0,1)), zero, shuffle, bitflip:P (each bit with probability P) or
    /// bitflip:n=K (exactly K bits). [default: reinit]
    #[arg(long)]
    pub method: Option<String>,
    /// Which modules of the chosen layers: all, attention (q,k,v,o), ffn (ffn_in,ffn_out),
    /// layernorm (ln_attn,ln_ffn), or a list of q,k,v,o,ffn_in,ffn_out,ln_attn,ln_ffn. [default: all]
    #[arg(long)]
    pub modules: Option<String>,
    /// Also damage parts outside the encoder layers: embeddings, pooler (BERT). [default: none]
    #[arg(long)]
    pub include: Option<String>,
    /// Kaiming bound for reinit: he (sqrt(6/fan_in), PyTorch's kaiming_uniform_ default) or
    /// linear (1/sqrt(fan_in), nn.Linear's reset). [default: he]
    #[arg(long, value_enum)]
    pub kaiming: Option<Kaiming>,
    /// Seed of the damage. [default: --seed]
    #[arg(long)]
    pub corrupt_seed: Option<u64>,
    /// Which parameters train (the head always does): full, head (probe on a frozen encoder),
    /// layernorm, bias (BitFit), attention, ffn, layers:SPEC (e.g. layers:1-3, layers:top:2) or
    /// ln-outliers:N (per LayerNorm, the N dimensions farthest from its mean weight). [default: full]
    #[arg(long)]
    pub train: Option<String>,
    /// With --train head, encode every example once and train the head on the cached features
    /// (same predictions, much faster); false re-encodes every epoch. [default: true]
    #[arg(long)]
    pub feature_cache: Option<bool>,
    /// Save models as HF folders: best (<out>/checkpoint), corrupted
    /// (<out>/checkpoint-corrupted), or both: corrupted,best. Alone: best.
    #[arg(long, num_args = 0..=1, default_missing_value = "best")]
    pub save_checkpoint: Option<String>,
    /// Write every layer's pooled vectors of the evaluation split to <out>/embeddings/<stage>/
    /// (as heal embed does) at these stages: pretrained, corrupted, best. Alone: all three.
    #[arg(long, num_args = 0..=1, default_missing_value = "pretrained,corrupted,best")]
    pub dump_embeddings: Option<String>,
    /// Replace an existing run directory.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub overwrite: Option<bool>,
    /// Flag a run as collapsed when one class gets more than this share of predictions. [default: 0.95]
    #[arg(long)]
    pub collapse_threshold: Option<f64>,
    /// Stop when the weighted F1 of the validation split (of the evaluation split without
    /// --validation-split) has not improved for N epochs; 0 turns it off. [default: off]
    #[arg(long, value_name = "N")]
    pub early_stopping: Option<usize>,
    /// Write the training loss and learning rate to the run's TensorBoard event file every N
    /// optimiser steps (the loss is read back from the device only then). [default: 10]
    #[arg(long, value_name = "N")]
    pub log_every: Option<usize>,
    /// Keep RUN/resume/ (the last epoch's training state, for --resume) when the run ends.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub keep_resume_state: Option<bool>,
    /// Keep the study's compact artefacts in <out>/analysis/ (every layer's pooled vectors of a
    /// fixed stratified sample of this many evaluation examples, float16, and weight statistics
    /// and histograms), so that `heal report` needs no checkpoint; 0 writes none. [default: 2000]
    #[arg(long, value_name = "N")]
    pub analysis_examples: Option<usize>,
}

macro_rules! overlay {
    ($top:expr, $base:expr, $($f:ident),*) => {
        FinetuneOptions { $($f: $top.$f.or($base.$f)),* }
    };
}

impl FinetuneOptions {
    /// `self` where set, otherwise `base`.
    pub fn over(self, base: FinetuneOptions) -> FinetuneOptions {
        overlay!(
            self,
            base,
            model,
            revision,
            data,
            data_dir,
            eval_data,
            eval_split,
            validation_split,
            max_train_examples,
            epochs,
            lr,
            batch_size,
            eval_batch_size,
            max_len,
            pooling,
            optimizer,
            weight_decay,
            warmup,
            grad_clip,
            seed,
            device,
            precision,
            fused_optimizer,
            threads,
            out,
            corrupt,
            method,
            modules,
            include,
            kaiming,
            corrupt_seed,
            train,
            feature_cache,
            save_checkpoint,
            dump_embeddings,
            overwrite,
            collapse_threshold,
            early_stopping,
            gradient_accumulation_steps,
            log_every,
            keep_resume_state,
            analysis_examples
        )
    }

    pub fn from_toml(path: &Path) -> anyhow::Result<FinetuneOptions> {
        crate::fsio::read_toml(path, "config")
    }

    /// `--config`: a TOML file, or a run's run.json, whose resolved config gives every option
    /// (all but --overwrite) so that the run repeats exactly.
    pub fn from_file(path: &Path) -> anyhow::Result<FinetuneOptions> {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            return Ok(crate::run_dir::read_config(path)?.to_options());
        }
        Self::from_toml(path)
    }

    /// Applies defaults and checks every value.
    pub fn resolve(self) -> anyhow::Result<FinetuneConfig> {
        let model = self
            .model
            .unwrap_or_else(|| crate::defaults::MINILM_L6.into());
        let data = self
            .data
            .unwrap_or_else(|| crate::defaults::BBC_NEWS.into());
        let cfg = FinetuneConfig {
            out: self.out.unwrap_or_else(|| default_out(&model, &data)),
            model,
            revision: self.revision,
            data,
            data_dir: self.data_dir,
            eval_data: self.eval_data,
            eval_split: self.eval_split,
            validation_split: self.validation_split,
            max_train_examples: self.max_train_examples,
            epochs: self.epochs.unwrap_or(defaults::EPOCHS),
            lr: self.lr.unwrap_or(defaults::LR),
            batch_size: self.batch_size.unwrap_or(defaults::BATCH_SIZE),
            gradient_accumulation_steps: self
                .gradient_accumulation_steps
                .unwrap_or(defaults::GRADIENT_ACCUMULATION_STEPS),
            eval_batch_size: self.eval_batch_size.unwrap_or(defaults::EVAL_BATCH_SIZE),
            max_len: self.max_len.unwrap_or(defaults::MAX_LEN),
            pooling: self.pooling.unwrap_or_default(),
            optimizer: self.optimizer.unwrap_or_default(),
            weight_decay: self.weight_decay.unwrap_or(defaults::WEIGHT_DECAY),
            warmup: self.warmup.unwrap_or(defaults::WARMUP),
            grad_clip: self.grad_clip.unwrap_or(defaults::GRAD_CLIP),
            seed: self.seed.unwrap_or(defaults::SEED),
            device: self.device.unwrap_or_else(|| defaults::DEVICE.into()),
            precision: self.precision.unwrap_or_default(),
            fused_optimizer: self.fused_optimizer.unwrap_or(true),
            threads: self.threads,
            corrupt: LayerSpec::parse(self.corrupt.as_deref().unwrap_or(defaults::CORRUPT))?,
            method: Method::parse(self.method.as_deref().unwrap_or(defaults::METHOD))?,
            modules: parse_modules(self.modules.as_deref().unwrap_or(defaults::MODULES))?,
            include: Include::parse(self.include.as_deref().unwrap_or(""))?,
            kaiming: self.kaiming.unwrap_or_default(),
            corrupt_seed: self.corrupt_seed.or(self.seed).unwrap_or(defaults::SEED),
            train: TrainMode::parse(self.train.as_deref().unwrap_or(defaults::TRAIN))?,
            feature_cache: self.feature_cache.unwrap_or(true),
            save_checkpoint: parse_stage_list("save-checkpoint", self.save_checkpoint.as_deref())?,
            dump_embeddings: parse_stage_list("dump-embeddings", self.dump_embeddings.as_deref())?,
            overwrite: self.overwrite.unwrap_or(false),
            collapse_threshold: self
                .collapse_threshold
                .unwrap_or(defaults::COLLAPSE_THRESHOLD),
            early_stopping: self
                .early_stopping
                .or(defaults::EARLY_STOPPING)
                .filter(|&n| n > 0),
            log_every: self.log_every.unwrap_or(defaults::LOG_EVERY),
            keep_resume_state: self.keep_resume_state.unwrap_or(false),
            analysis_examples: self
                .analysis_examples
                .unwrap_or(defaults::ANALYSIS_EXAMPLES),
        };
        super::limits::check(&cfg)?;
        Ok(cfg)
    }
}

/// A comma-separated list of stages (`corrupted,best`), each parsed by clap's `ValueEnum`
/// (names and aliases as `--help` lists them), in the enum's order without repeats. `none`
/// (and `false`) is the empty list.
fn parse_stage_list<T: clap::ValueEnum + Ord>(
    flag: &str,
    text: Option<&str>,
) -> anyhow::Result<Vec<T>> {
    let Some(text) = text else { return Ok(vec![]) };
    let mut stages = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part == "none" || part == "false" {
            continue;
        }
        stages.push(T::from_str(part, false).map_err(|_| {
            let names: Vec<String> = T::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
                .collect();
            user(format!(
                "--{flag} {part:?}: use {} or a comma-separated list of them",
                names.join(", ")
            ))
        })?);
    }
    stages.sort();
    stages.dedup();
    Ok(stages)
}

/// `runs/<model>-<data>-<time>`.
fn default_out(model: &str, data: &str) -> PathBuf {
    let short = |s: &str| {
        let p = Path::new(s);
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| s.to_string());
        name.split('.').next().unwrap_or("run").to_string()
    };
    PathBuf::from("runs").join(format!(
        "{}-{}-{}",
        short(model),
        short(data),
        crate::run_dir::timestamp()
    ))
}
