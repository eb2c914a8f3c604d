//! metrics.jsonl's lines and result.json: what a run measured.

use crate::metrics::Scores;
use serde::{Deserialize, Serialize};

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

impl EpochRecord {
    /// The evaluation split's scores of this epoch.
    pub fn scores(&self) -> Scores {
        Scores {
            accuracy: self.accuracy,
            f1_weighted: self.f1_weighted,
            f1_macro: self.f1_macro,
        }
    }
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
    /// [`super::SCHEMA_VERSION`] of the writer; 0 for files written before it was recorded.
    #[serde(default)]
    pub schema_version: u32,
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
    /// Set when --early-stopping ended the run before its last epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<StoppedEarly>,
}

/// Why and when early stopping ended a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoppedEarly {
    /// The last epoch that ran (1-based).
    pub epoch: usize,
    pub reason: String,
}

/// A score read back from a file must be a share: a hand-edited or foreign result.json with an
/// F1 of 7.5 would otherwise flow into every table and claim.
fn check_share(path: &std::path::Path, field: &str, value: f64) -> anyhow::Result<()> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(crate::error::user(format!(
            "{}: {field} is {value}: scores are shares in [0, 1]; the file was edited or not written by heal",
            path.display()
        )))
    }
}

fn check_scores(path: &std::path::Path, at: &str, s: &Scores) -> anyhow::Result<()> {
    check_share(path, &format!("{at}.accuracy"), s.accuracy)?;
    check_share(path, &format!("{at}.f1_weighted"), s.f1_weighted)?;
    check_share(path, &format!("{at}.f1_macro"), s.f1_macro)
}

impl RunResult {
    /// Checks the values a reader relies on (`path` is the file it came from).
    pub fn check_values(&self, path: &std::path::Path) -> anyhow::Result<()> {
        if let Some(s) = &self.best {
            check_scores(path, "best", s)?;
        }
        if let Some(s) = &self.last {
            check_scores(path, "final", s)?;
        }
        Ok(())
    }
}

impl EpochRecord {
    /// Checks the scores of one metrics.jsonl line (`at` names the file and line).
    pub fn check_values(&self, path: &std::path::Path, line: usize) -> anyhow::Result<()> {
        let at = format!("line {line}");
        check_scores(path, &at, &self.scores())?;
        for (field, v) in [
            ("validation_f1_weighted", self.validation_f1_weighted),
            ("validation_accuracy", self.validation_accuracy),
        ] {
            if let Some(v) = v {
                check_share(path, &format!("{at}.{field}"), v)?;
            }
        }
        Ok(())
    }
}
