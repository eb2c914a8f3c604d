//! `heal finetune --resume RUN`: the training loop's state after each finished epoch, saved in
//! RUN/resume/ (state.safetensors: weights and optimiser moments; state.json: the rest), so
//! that an interrupted run continues from its last finished epoch as if it had never stopped:
//! same batches, same dropout masks, same optimiser steps, so the same metrics.
//!
//! Only the fused optimiser's state can be saved (libtorch's Adam keeps its moments where tch
//! cannot read them), so runs on libtorch's optimiser write no state and cannot be resumed.

use super::config::FinetuneConfig;
use super::early_stopping::EarlyStopping;
use super::fused::AdamState;
use super::optim::Stepper;
use super::options::FinetuneOptions;
use super::prepare::Prepared;
use crate::error::user;
use crate::fsio::output::{Output, Staged};
use crate::model::checkpoint::write_named_safetensors;
use crate::model::dropout;
use crate::run_dir::{read_config, EpochRecord, RunDir, Timings};
use anyhow::Context;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tch::Tensor;

const STATE_JSON: &str = "state.json";
const STATE_TENSORS: &str = "state.safetensors";
/// Test-only: milliseconds to sleep after every optimiser step, so that a test can kill a
/// run of the tiny model in the middle of an epoch.
const TEST_STEP_DELAY: &str = "HEAL_TEST_STEP_DELAY_MS";

/// The best epoch's predictions (and weights, when a checkpoint is to be saved).
#[derive(Default)]
pub(super) struct BestSnapshot {
    pub predictions: Option<(usize, Vec<i64>)>,
    pub weights: Option<Vec<(String, Tensor)>>,
}

/// What the loop carries from one epoch to the next, apart from the model and optimiser.
pub(super) struct LoopState {
    /// The batch order's generator, drawn from once per epoch.
    pub rng: ChaCha8Rng,
    pub epochs: Vec<EpochRecord>,
    pub best: BestSnapshot,
    pub best_f1: f64,
    pub early_stopping: EarlyStopping,
    pub timings: Timings,
    /// Optimiser steps so far: the schedule's position.
    pub step: usize,
}

/// state.json: everything but tensors.
#[derive(Serialize, Deserialize)]
struct StateJson {
    epochs: Vec<EpochRecord>,
    best_predictions: Option<(usize, Vec<i64>)>,
    early_stopping: EarlyStopping,
    timings: Timings,
    step: usize,
    /// The batch-order generator's position, in 32-bit words (a u128, as text for JSON).
    rng_word_pos: String,
    dropout_calls: u64,
    adam_step: u64,
}

impl LoopState {
    /// The state before the first epoch.
    pub fn new(cfg: &FinetuneConfig) -> Self {
        LoopState {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            epochs: Vec::new(),
            best: BestSnapshot::default(),
            best_f1: f64::NEG_INFINITY,
            early_stopping: EarlyStopping::new(cfg.early_stopping),
            timings: Timings::default(),
            step: 0,
        }
    }

    /// Saves the state after an epoch, with the model's weights and the optimiser's moments,
    /// replacing the previous epoch's in one rename. Nothing is saved for libtorch's optimiser.
    pub fn save(&self, run: &RunDir, p: &Prepared, opt: &mut Stepper) -> anyhow::Result<()> {
        let Some(adam) = opt.fused() else {
            return Ok(());
        };
        let adam = adam.state();
        let mut tensors: Vec<(String, Tensor)> = p
            .model
            .snapshot()
            .into_iter()
            .map(|(n, t)| (format!("model.{n}"), t))
            .collect();
        for (i, slot) in adam.slots.iter().enumerate() {
            for (part, t) in ["m", "v", "touched"].iter().zip(slot) {
                tensors.push((format!("adam.{i}.{part}"), t.shallow_clone()));
            }
        }
        for (n, t) in self.best.weights.iter().flatten() {
            tensors.push((format!("best.{n}"), t.shallow_clone()));
        }
        let json = StateJson {
            epochs: self.epochs.clone(),
            best_predictions: self.best.predictions.clone(),
            early_stopping: self.early_stopping.clone(),
            timings: self.timings,
            step: self.step,
            rng_word_pos: self.rng.get_word_pos().to_string(),
            dropout_calls: dropout::calls(),
            adam_step: adam.step,
        };
        crate::fsio::write_dir_atomic(&run.resume_state(), |dir| {
            write_named_safetensors(&tensors, &dir.join(STATE_TENSORS))?;
            crate::fsio::write_json(&dir.join(STATE_JSON), &json)
        })
    }

    /// Restores a saved state into the prepared model, the optimiser and the dropout stream;
    /// None when the run has none.
    pub fn load(
        run: &RunDir,
        cfg: &FinetuneConfig,
        p: &Prepared,
        opt: &mut Stepper,
    ) -> anyhow::Result<Option<Self>> {
        let Some(adam) = opt.fused() else {
            return Err(user(format!(
                "{}: --resume needs heal's fused optimiser, whose state can be saved; this run uses libtorch's (a GPU, or --fused-optimizer false)",
                run.path.display()
            )));
        };
        let dir = run.resume_state();
        if !dir.join(STATE_JSON).is_file() {
            return Ok(None);
        }
        let what = || format!("reading the resume state in {}", dir.display());
        let text = std::fs::read_to_string(dir.join(STATE_JSON)).with_context(what)?;
        let json: StateJson = serde_json::from_str(&text).with_context(what)?;
        let mut tensors: HashMap<String, Tensor> =
            Tensor::read_safetensors(dir.join(STATE_TENSORS))
                .with_context(what)?
                .into_iter()
                .collect();
        let mut take = |name: String| {
            tensors
                .remove(&name)
                .with_context(|| format!("{}: no tensor {name}", dir.display()))
        };
        let mut weights = Vec::new();
        for (name, _) in p.model.snapshot() {
            weights.push((name.clone(), take(format!("model.{name}"))?));
        }
        p.model.restore(&weights);
        let mut slots = Vec::new();
        for i in 0..adam.vars().len() {
            let part = |p: &str| format!("adam.{i}.{p}");
            slots.push([take(part("m"))?, take(part("v"))?, take(part("touched"))?]);
        }
        adam.set_state(&AdamState {
            step: json.adam_step,
            slots,
        })
        .with_context(what)?;
        let mut best = tensors
            .into_iter()
            .filter_map(|(n, t)| Some((n.strip_prefix("best.")?.to_string(), t)))
            .collect::<Vec<_>>();
        best.sort_by(|a, b| a.0.cmp(&b.0));
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_word_pos(json.rng_word_pos.parse().with_context(what)?);
        dropout::set_calls(json.dropout_calls);
        log::info!(
            "{}: resuming after epoch {}",
            run.path.display(),
            json.epochs.len()
        );
        Ok(Some(LoopState {
            rng,
            best_f1: json
                .epochs
                .iter()
                .map(|e| e.f1_weighted)
                .fold(f64::NEG_INFINITY, f64::max),
            epochs: json.epochs,
            best: BestSnapshot {
                predictions: json.best_predictions,
                weights: (!best.is_empty()).then_some(best),
            },
            early_stopping: json.early_stopping,
            timings: json.timings,
            step: json.step,
        }))
    }
}

/// How a run treats the folder at its `--out`.
pub(super) enum Start {
    /// `heal finetune`: the target was checked before any work; an occupied one (allowed by
    /// --overwrite) is left alone while the new run is written beside it, and swapped for it
    /// once result.json is written.
    New(Output),
    /// `--resume`: continue the run in place from its saved state (from the first epoch when
    /// it saved none).
    Resume,
    /// A sweep cell started again: its folder is its own unfinished state, rewritten in place.
    Restart,
}

/// The run directory to write, the staged output to swap in at the end (a new run replacing
/// an old one), and the loop's state before its next epoch: a new run's, or when resuming the
/// saved one, restored into the prepared model (after preparation, so that the damage is not
/// applied again on top) and optimiser.
pub(super) fn start(
    cfg: &FinetuneConfig,
    p: &Prepared,
    opt: &mut Stepper,
    how: Start,
) -> anyhow::Result<(RunDir, Option<Staged>, LoopState)> {
    let run = RunDir::at(&cfg.out);
    let restart = match how {
        Start::New(output) if output.occupied() => {
            let staged = output.stage()?;
            let run = RunDir::at(staged.path());
            return Ok((run, Some(staged), LoopState::new(cfg)));
        }
        Start::New(output) => {
            output.begin()?;
            false
        }
        Start::Resume => {
            if let Some(state) = LoopState::load(&run, cfg, p, opt)? {
                return Ok((run, None, state));
            }
            log::info!(
                "{}: no saved state; starting from the first epoch",
                cfg.out.display()
            );
            true
        }
        Start::Restart => true,
    };
    // Started afresh, a resumed run or a cell clears what the killed attempt left.
    let run = RunDir::create(&cfg.out, restart)?;
    Ok((run, None, LoopState::new(cfg)))
}

/// Removes the run's resume state (a finished run needs none) unless --keep-resume-state.
pub(super) fn discard(run: &RunDir, cfg: &FinetuneConfig) {
    if !cfg.keep_resume_state {
        let _ = std::fs::remove_dir_all(run.resume_state());
    }
}

/// The pause after each optimiser step that tests ask for with HEAL_TEST_STEP_DELAY_MS
/// (zero, no pause, otherwise).
pub(super) fn test_step_delay() -> std::time::Duration {
    let ms = std::env::var(TEST_STEP_DELAY)
        .ok()
        .and_then(|v| v.parse().ok());
    std::time::Duration::from_millis(ms.unwrap_or(0))
}

/// The config of the run in `dir` for `--resume`, with `given`'s --threads and
/// --keep-resume-state: refused when the run is finished or cannot be resumed. Other options
/// are refused: the saved state continues only the run that run.json describes.
pub fn resume_config(dir: &Path, given: FinetuneOptions) -> anyhow::Result<FinetuneConfig> {
    let run = RunDir::at(dir);
    let rest = FinetuneOptions {
        threads: None,
        keep_resume_state: None,
        ..given.clone()
    };
    if format!("{rest:?}") != format!("{:?}", FinetuneOptions::default()) {
        return Err(user(
            "--resume takes every option from RUN/run.json; only --threads and --keep-resume-state may be given with it",
        ));
    }
    if !RunDir::is_run(dir) {
        return Err(user(format!(
            "{}: not a run directory (no run.json): nothing to resume",
            dir.display()
        )));
    }
    let mut cfg = read_config(&run.run_json())?;
    if !cfg.fused_optimizer {
        return Err(user(format!(
            "{}: ran with --fused-optimizer false: libtorch's optimiser state cannot be saved, so the run cannot be resumed",
            dir.display()
        )));
    }
    if run.is_finished() {
        return Err(user(format!(
            "{}: already finished (it has result.json): nothing to resume",
            dir.display()
        )));
    }
    cfg.out = dir.to_path_buf();
    cfg.threads = given.threads.or(cfg.threads);
    cfg.keep_resume_state = given.keep_resume_state.unwrap_or(cfg.keep_resume_state);
    Ok(cfg)
}
