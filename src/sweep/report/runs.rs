//! The report's view of each cell (its outcome under the selection protocol) and runs.csv, one
//! row per cell with every axis, its status, epochs, scores and timings, for pandas.

use super::{status_name, Protocol};
use crate::error::user;
use crate::run_dir::{RunDir, RunResult, Status, Timings};
use crate::sweep::Cell;
use serde::Serialize;

/// One finished (or unfinished) cell as the report sees it.
#[derive(Debug, Clone)]
pub(super) struct Outcome<'a> {
    pub(super) cell: &'a Cell,
    /// None: not finished.
    pub(super) status: Option<Status>,
    /// The reported score at the chosen epoch.
    pub(super) score: Option<f64>,
    /// The score the choice maximises.
    pub(super) select: Option<f64>,
    pub(super) reason: String,
    /// The epoch the protocol chose (1-based); None when unfinished or no epoch finished.
    pub(super) epoch: Option<usize>,
    /// result.json, when finished.
    pub(super) result: Option<RunResult>,
}

impl Outcome<'_> {
    /// The chosen epoch is the last one that ran: the run may still have been improving.
    pub(super) fn possibly_undertrained(&self) -> bool {
        match (&self.result, self.epoch) {
            (Some(r), Some(e)) => e == r.epochs_run,
            _ => false,
        }
    }
}

pub(super) fn outcome(cell: &Cell, protocol: Protocol) -> anyhow::Result<Outcome<'_>> {
    let dir = &cell.config.out;
    let run = RunDir::at(dir);
    if !run.is_finished() {
        return Ok(Outcome {
            cell,
            status: None,
            score: None,
            select: None,
            reason: String::new(),
            epoch: None,
            result: None,
        });
    }
    let result = run.read_result()?;
    let mut status = result.status;
    let mut reason = result.reason.clone();
    let (score, select, epoch) = match protocol {
        Protocol::Eval => {
            let s = result.best.as_ref().map(|b| b.f1_weighted);
            (s, s, (result.best_epoch > 0).then_some(result.best_epoch))
        }
        Protocol::Validation => {
            let epochs = run.read_metrics()?;
            let chosen = epochs
                .iter()
                .filter_map(|e| e.validation_f1_weighted.map(|v| (v, e)))
                .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.epoch.cmp(&a.1.epoch)));
            match chosen {
                Some((v, e)) => {
                    if e.collapsed && status == Status::Ok {
                        status = Status::Collapsed;
                        reason = format!(
                            "at the chosen epoch {} one class got {:.1}% of the predictions",
                            e.epoch,
                            e.predicted_majority_share * 100.0
                        );
                    }
                    (Some(e.f1_weighted), Some(v), Some(e.epoch))
                }
                None if epochs.is_empty() => (None, None, None),
                None => {
                    return Err(user(format!(
                        "{}: no validation scores in metrics.jsonl: the validation protocol needs cells run with `validation-split` (e.g. validation-split = 0.1 in the grid's [base]); or use --select eval",
                        dir.display()
                    )))
                }
            }
        }
    };
    Ok(Outcome {
        cell,
        status: Some(status),
        score,
        select,
        reason,
        epoch,
        result: Some(result),
    })
}

/// One row of runs.csv; the header is the field names. Empty fields: not known (unfinished
/// cells, runs without an epoch).
#[derive(Debug, Serialize)]
struct RunRow {
    cell: String,
    model: String,
    dataset: String,
    corrupt: String,
    /// The share of layers corrupted in percent (empty for counts and layer lists).
    level_percent: Option<f64>,
    side: String,
    method: String,
    train: String,
    pooling: String,
    lr: f64,
    seed: u64,
    /// ok, diverged, collapsed, failed or unfinished.
    status: String,
    reason: String,
    /// result.json's best epoch (by the evaluation split's weighted F1).
    best_epoch: Option<usize>,
    /// The epoch the report's protocol chose.
    chosen_epoch: Option<usize>,
    epochs_run: Option<usize>,
    possibly_undertrained: Option<bool>,
    /// Scores at the best epoch.
    f1_weighted: Option<f64>,
    f1_macro: Option<f64>,
    accuracy: Option<f64>,
    /// The weighted F1 the tables use (at the chosen epoch).
    reported_f1: Option<f64>,
    prepare_seconds: Option<f64>,
    train_seconds: Option<f64>,
    eval_seconds: Option<f64>,
    total_seconds: Option<f64>,
    /// Whether the cell holds analysis artefacts (RUN/analysis/).
    analysis: bool,
}

/// run.json's timings alone, so that the rest of the file may come from another version.
fn timings(run: &RunDir) -> Option<Timings> {
    let text = std::fs::read_to_string(run.run_json()).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    serde_json::from_value(value.get("timings")?.clone()).ok()
}

/// runs.csv's bytes: one row per cell, in plan order.
pub(super) fn runs_csv(outcomes: &[Outcome]) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for o in outcomes {
        let c = o.cell;
        let run = RunDir::at(&c.config.out);
        let t = o.result.as_ref().and_then(|_| timings(&run));
        let best = o.result.as_ref().and_then(|r| r.best.as_ref());
        w.serialize(RunRow {
            cell: c.name.clone(),
            model: c.model.clone(),
            dataset: c.dataset.clone(),
            corrupt: c.config.corrupt.to_string(),
            level_percent: c.config.corrupt.share_percent(),
            side: c.config.corrupt.side().map_or("both", |s| s.name()).into(),
            method: c.config.method.to_string(),
            train: c.config.train.to_string(),
            pooling: c.pooling_name().into(),
            lr: c.config.lr,
            seed: c.config.seed,
            status: o.status.map_or("unfinished", status_name).into(),
            reason: o.reason.clone(),
            best_epoch: o.result.as_ref().map(|r| r.best_epoch),
            chosen_epoch: o.epoch,
            epochs_run: o.result.as_ref().map(|r| r.epochs_run),
            possibly_undertrained: o.result.as_ref().map(|_| o.possibly_undertrained()),
            f1_weighted: best.map(|b| b.f1_weighted),
            f1_macro: best.map(|b| b.f1_macro),
            accuracy: best.map(|b| b.accuracy),
            reported_f1: o.score,
            prepare_seconds: t.map(|t| t.prepare_seconds),
            train_seconds: t.map(|t| t.train_seconds),
            eval_seconds: t.map(|t| t.eval_seconds),
            total_seconds: t.map(|t| t.total_seconds),
            analysis: run.analysis_dir().is_dir(),
        })?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("runs.csv: {e}"))
}
