//! The run directory: the contract between training and every later tool.
//!
//! run.json (what ran), metrics.jsonl (one object per epoch), checkpoint/ (on request), and
//! result.json, written last: a directory without result.json is unfinished.

use crate::error::user;
use crate::fsio;
use crate::metrics::Scores;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const RUN_JSON: &str = "run.json";
pub const METRICS_JSONL: &str = "metrics.jsonl";
pub const RESULT_JSON: &str = "result.json";
pub const CHECKPOINT_DIR: &str = "checkpoint";

/// One line of metrics.jsonl.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub eval_loss: f64,
    pub accuracy: f64,
    pub f1_weighted: f64,
    pub f1_macro: f64,
    /// Learning rate at the last step of the epoch.
    pub lr: f64,
    /// Wall time of the epoch's training steps.
    pub train_seconds: f64,
    pub eval_seconds: f64,
    pub train_examples_per_second: f64,
    /// Share of evaluation examples given to the most predicted class.
    pub predicted_majority_share: f64,
    pub collapsed: bool,
    /// Weighted F1 and accuracy on the validation carve-out (runs with --validation-split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_f1_weighted: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_accuracy: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Diverged,
    Collapsed,
    Failed,
}

/// result.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub status: Status,
    /// Why the status is not ok (empty when it is).
    pub reason: String,
    /// 1-based; 0 when no epoch finished.
    pub best_epoch: usize,
    pub best: Option<Scores>,
    #[serde(rename = "final")]
    pub last: Option<Scores>,
    pub epochs_run: usize,
    pub label_names: Vec<String>,
    /// `[gold][predicted]` counts at the best epoch.
    pub confusion_matrix: Vec<Vec<u64>>,
    pub eval_examples: usize,
    pub wall_seconds: f64,
}

/// An open run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Creates the folder. A folder that already holds files is refused unless `overwrite`,
    /// so a finished run is never clobbered by accident; with `overwrite` the old result.json
    /// goes first, so the folder never looks finished while it is rewritten.
    pub fn create(path: &Path, overwrite: bool) -> anyhow::Result<Self> {
        if path.exists() {
            let busy = std::fs::read_dir(path)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true);
            if busy && !overwrite {
                let what = if path.join(RESULT_JSON).exists() {
                    "a finished run"
                } else {
                    "files"
                };
                return Err(user(format!(
                    "{}: already holds {what}: choose another --out or pass --overwrite",
                    path.display()
                )));
            }
            let _ = std::fs::remove_file(path.join(RESULT_JSON));
            let _ = std::fs::remove_file(path.join(METRICS_JSONL));
        }
        std::fs::create_dir_all(path).map_err(|e| {
            user(format!(
                "{}: cannot create the run directory ({e})",
                path.display()
            ))
        })?;
        Ok(RunDir {
            path: path.to_path_buf(),
        })
    }

    pub fn write_run_json(&self, value: &impl Serialize) -> anyhow::Result<()> {
        fsio::write_json(&self.path.join(RUN_JSON), value)
    }

    /// Rewrites metrics.jsonl with every epoch so far (atomically, so it is never half a line).
    pub fn write_metrics(&self, epochs: &[EpochRecord]) -> anyhow::Result<()> {
        let mut text = String::new();
        for e in epochs {
            text.push_str(&serde_json::to_string(e)?);
            text.push('\n');
        }
        fsio::write_atomic(&self.path.join(METRICS_JSONL), text.as_bytes())
    }

    pub fn write_result(&self, result: &RunResult) -> anyhow::Result<()> {
        fsio::write_json(&self.path.join(RESULT_JSON), result)
    }

    pub fn checkpoint_dir(&self) -> PathBuf {
        self.path.join(CHECKPOINT_DIR)
    }
}

/// Reads a finished run's result.json.
pub fn read_result(run: &Path) -> anyhow::Result<RunResult> {
    let path = run.join(RESULT_JSON);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        user(format!(
            "{}: cannot read ({e}): is the run finished?",
            path.display()
        ))
    })?;
    serde_json::from_str(&text)
        .map_err(|e| user(format!("{}: not a heal result ({e})", path.display())))
}

/// Reads metrics.jsonl.
pub fn read_metrics(run: &Path) -> anyhow::Result<Vec<EpochRecord>> {
    let path = run.join(METRICS_JSONL);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| user(format!("{}: cannot read ({e})", path.display())))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| user(format!("{}: line {}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// The `config` object of a run directory's run.json, or None when `path` is not a run
/// directory (no run.json).
pub fn read_run_config(path: &Path) -> anyhow::Result<Option<serde_json::Value>> {
    let run_json = path.join(RUN_JSON);
    if !run_json.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&run_json)
        .map_err(|e| user(format!("{}: cannot read ({e})", run_json.display())))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| user(format!("{}: not valid JSON ({e})", run_json.display())))?;
    Ok(Some(json["config"].clone()))
}
