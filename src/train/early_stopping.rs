//! `--early-stopping N`: patience in epochs on the selection score.

use crate::run_dir::{EpochRecord, StoppedEarly};
use serde::{Deserialize, Serialize};

/// Watches the selection score epoch by epoch, as HF's `EarlyStoppingCallback` does: only a
/// score above the best so far counts as an improvement. Serialized in a run's resume state.
#[derive(Clone, Serialize, Deserialize)]
pub struct EarlyStopping {
    patience: Option<usize>,
    /// The best epoch so far and its score.
    best: Option<(usize, f64)>,
}

impl EarlyStopping {
    /// `patience` None: never stops.
    pub fn new(patience: Option<usize>) -> Self {
        EarlyStopping {
            patience,
            best: None,
        }
    }

    /// Takes a finished epoch; Some when the run should stop after it.
    pub fn update(&mut self, record: &EpochRecord) -> Option<StoppedEarly> {
        // The validation split when the run has one: choosing by the evaluation split would
        // leak it into the result.
        let (score, split) = match record.validation_f1_weighted {
            Some(f1) => (f1, "validation"),
            None => (record.f1_weighted, "evaluation"),
        };
        if self.best.is_none_or(|(_, best)| score > best) {
            self.best = Some((record.epoch, score));
        }
        let patience = self.patience?;
        let (best_epoch, best) = self.best?;
        let unit = if patience == 1 { "epoch" } else { "epochs" };
        (record.epoch - best_epoch >= patience).then(|| StoppedEarly {
            epoch: record.epoch,
            reason: format!(
                "the {split} split's weighted F1 has not improved for {patience} {unit} (best {best:.4} at epoch {best_epoch})"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::EarlyStopping;
    use crate::run_dir::EpochRecord;

    fn record(epoch: usize, f1: f64, validation: Option<f64>) -> EpochRecord {
        serde_json::from_value(serde_json::json!({
            "epoch": epoch, "train_loss": 1.0, "eval_loss": 1.0, "accuracy": f1,
            "f1_weighted": f1, "f1_macro": f1, "lr": 1e-5, "train_seconds": 1.0,
            "eval_seconds": 1.0, "train_examples_per_second": 1.0,
            "predicted_majority_share": 0.5, "collapsed": false,
            "validation_f1_weighted": validation,
        }))
        .unwrap()
    }

    /// The epoch after which `patience` stops a run with these (evaluation, validation) scores.
    fn stop(patience: Option<usize>, scores: &[(f64, Option<f64>)]) -> Option<usize> {
        let mut s = EarlyStopping::new(patience);
        scores
            .iter()
            .enumerate()
            .find_map(|(i, &(f1, v))| s.update(&record(i + 1, f1, v)))
            .map(|stopped| stopped.epoch)
    }

    #[test]
    fn stops_after_patience_epochs_without_a_strict_improvement() {
        let eval = |xs: &[f64]| xs.iter().map(|&x| (x, None)).collect::<Vec<_>>();
        assert_eq!(stop(Some(2), &eval(&[0.5, 0.6, 0.6, 0.55, 0.9])), Some(4));
        assert_eq!(stop(Some(2), &eval(&[0.5, 0.6, 0.5, 0.7, 0.6])), None);
        assert_eq!(stop(Some(1), &eval(&[0.5, 0.5])), Some(2));
        assert_eq!(stop(None, &eval(&[0.5, 0.4, 0.3])), None);
    }

    #[test]
    fn the_validation_split_decides_when_present() {
        // The evaluation score keeps rising; the validation score peaks at epoch 1.
        let scores = [(0.5, Some(0.8)), (0.6, Some(0.7)), (0.7, Some(0.8))];
        assert_eq!(stop(Some(2), &scores), Some(3));
        let mut s = EarlyStopping::new(Some(1));
        let stopped = s.update(&record(1, 0.5, Some(0.8)));
        assert!(stopped.is_none());
        let stopped = s.update(&record(2, 0.6, Some(0.7))).unwrap();
        assert_eq!(stopped.epoch, 2);
        assert!(stopped.reason.contains("validation"), "{}", stopped.reason);
        assert!(
            stopped.reason.contains("for 1 epoch "),
            "{}",
            stopped.reason
        );
    }
}
