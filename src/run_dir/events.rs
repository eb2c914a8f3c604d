//! The run's TensorBoard event file (`RunDir::new_events_file`): what a run writes there and at
//! which step, so that `tensorboard --logdir RUN` (or a folder of runs) shows it while it goes.
//!
//! Steps are optimiser steps. Every `log-every` steps: `train/loss`, the mean training loss of
//! the examples since the previous point, and `train/lr`, that step's learning rate. At the last
//! step of each epoch: `train/epoch`, `train/epoch_loss`, `train/examples_per_second`,
//! `eval/loss`, `eval/accuracy`, `eval/f1_weighted`, `eval/f1_macro` (and
//! `validation/f1_weighted`, `validation/accuracy` with a validation split), the same numbers
//! as metrics.jsonl's; then the file is flushed. At step 0: `run/config`, the resolved config as
//! JSON (Text dashboard), and the hyper-parameters for the HParams dashboard; at the end:
//! `best/accuracy`, `best/f1_weighted`, `best/f1_macro`, `best/epoch` and the run's status.

use super::{EpochRecord, RunDir, RunJson, RunResult, Status};
use crate::tensorboard::hparams::{self, HParam, SessionStatus};
use crate::tensorboard::{EventWriter, Value};

pub struct RunEvents {
    writer: EventWriter,
    every: usize,
    /// Loss sum and examples since the last `train/loss` point.
    window: (f64, usize),
    /// The epoch's loss sum and examples when they were last read.
    epoch_mark: (f64, usize),
    step: usize,
}

/// The config as hyper-parameters: numbers, strings and booleans as they are, lists and
/// tables as their JSON text; unset options and the output folder left out.
fn hparams_of(run_json: &RunJson) -> anyhow::Result<Vec<(String, HParam)>> {
    let serde_json::Value::Object(config) = serde_json::to_value(&run_json.config)? else {
        return Ok(vec![]);
    };
    Ok(config
        .into_iter()
        .filter(|(name, _)| name != "out" && name != "overwrite")
        .filter_map(|(name, value)| {
            let value = match value {
                serde_json::Value::Null => return None,
                serde_json::Value::Bool(b) => HParam::Bool(b),
                serde_json::Value::Number(n) => HParam::Number(n.as_f64()?),
                serde_json::Value::String(s) => HParam::Text(s),
                other => HParam::Text(other.to_string()),
            };
            Some((name, value))
        })
        .collect())
}

impl RunEvents {
    /// Creates a new event file in `run` and writes the run's config and hyper-parameters.
    pub fn create(run: &RunDir, run_json: &RunJson) -> anyhow::Result<Self> {
        let mut writer = EventWriter::create(&run.new_events_file())?;
        let config = serde_json::to_string_pretty(&run_json.config)?;
        writer.write(
            0,
            &[
                Value::text("run/config", &format!("```json\n{config}\n```")),
                hparams::session_start(
                    &hparams_of(run_json)?,
                    crate::tensorboard::event::wall_time(),
                ),
            ],
        )?;
        writer.flush()?;
        Ok(RunEvents {
            writer,
            every: run_json.config.log_every.max(1),
            window: (0.0, 0),
            epoch_mark: (0.0, 0),
            step: 0,
        })
    }

    /// Takes the epoch's running loss sum and example count at `step`, wherever the loop read
    /// them back; writes `train/loss` and `train/lr` when `step` is a multiple of `log-every`.
    pub fn train_progress(
        &mut self,
        step: usize,
        epoch_loss_sum: f64,
        epoch_examples: usize,
        lr: f64,
    ) -> anyhow::Result<()> {
        self.window.0 += epoch_loss_sum - self.epoch_mark.0;
        self.window.1 += epoch_examples - self.epoch_mark.1;
        self.epoch_mark = (epoch_loss_sum, epoch_examples);
        self.step = step;
        if !step.is_multiple_of(self.every) || self.window.1 == 0 {
            return Ok(());
        }
        let loss = self.window.0 / self.window.1 as f64;
        self.window = (0.0, 0);
        self.writer.write(
            step,
            &[
                Value::scalar("train/loss", loss),
                Value::scalar("train/lr", lr),
            ],
        )
    }

    /// Writes an epoch's record at `step`, its last, and flushes the file.
    pub fn epoch(&mut self, step: usize, e: &EpochRecord) -> anyhow::Result<()> {
        self.epoch_mark = (0.0, 0);
        self.step = step;
        let mut values = vec![
            Value::scalar("train/epoch", e.epoch as f64),
            Value::scalar("train/epoch_loss", e.train_loss),
            Value::scalar("train/examples_per_second", e.train_examples_per_second),
            Value::scalar("eval/loss", e.eval_loss),
            Value::scalar("eval/accuracy", e.accuracy),
            Value::scalar("eval/f1_weighted", e.f1_weighted),
            Value::scalar("eval/f1_macro", e.f1_macro),
        ];
        if let Some(f1) = e.validation_f1_weighted {
            values.push(Value::scalar("validation/f1_weighted", f1));
        }
        if let Some(accuracy) = e.validation_accuracy {
            values.push(Value::scalar("validation/accuracy", accuracy));
        }
        self.writer.write(step, &values)?;
        self.writer.flush()
    }

    /// Writes the best epoch's scores and how the run ended, and flushes the file.
    pub fn finish(&mut self, result: &RunResult) -> anyhow::Result<()> {
        let mut values = vec![];
        if let Some(best) = &result.best {
            values.extend([
                Value::scalar("best/accuracy", best.accuracy),
                Value::scalar("best/f1_weighted", best.f1_weighted),
                Value::scalar("best/f1_macro", best.f1_macro),
                Value::scalar("best/epoch", result.best_epoch as f64),
            ]);
        }
        let status = match result.status {
            Status::Ok | Status::Collapsed => SessionStatus::Success,
            Status::Diverged | Status::Failed => SessionStatus::Failure,
        };
        values.push(hparams::session_end(
            status,
            crate::tensorboard::event::wall_time(),
        ));
        self.writer.write(self.step, &values)?;
        self.writer.flush()
    }
}
