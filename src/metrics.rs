//! Classification scores with scikit-learn's definitions: accuracy, weighted and macro F1
//! (over the labels present in the gold or predicted values, zero where undefined), and the
//! confusion matrix.

use serde::{Deserialize, Serialize};

/// Scores of one evaluation, as fractions in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub accuracy: f64,
    pub f1_weighted: f64,
    pub f1_macro: f64,
}

/// `matrix[gold][predicted]` counts over `num_labels` classes.
pub fn confusion_matrix(gold: &[i64], predicted: &[i64], num_labels: usize) -> Vec<Vec<u64>> {
    let mut m = vec![vec![0u64; num_labels]; num_labels];
    for (&g, &p) in gold.iter().zip(predicted) {
        m[g as usize][p as usize] += 1;
    }
    m
}

/// Accuracy, weighted F1 and macro F1, equal to scikit-learn's `accuracy_score` and
/// `f1_score(average="weighted" | "macro")` with default arguments.
pub fn scores(gold: &[i64], predicted: &[i64], num_labels: usize) -> Scores {
    assert_eq!(
        gold.len(),
        predicted.len(),
        "gold and predicted lengths differ"
    );
    let m = confusion_matrix(gold, predicted, num_labels);
    let n = gold.len() as f64;
    let correct: u64 = (0..num_labels).map(|c| m[c][c]).sum();
    let mut weighted = 0.0;
    let mut macro_sum = 0.0;
    let mut present = 0usize;
    for c in 0..num_labels {
        let tp = m[c][c] as f64;
        let support: f64 = m[c].iter().sum::<u64>() as f64;
        let predicted_c: f64 = m.iter().map(|row| row[c]).sum::<u64>() as f64;
        if support == 0.0 && predicted_c == 0.0 {
            continue; // scikit-learn only scores labels seen in gold or predictions
        }
        present += 1;
        let (fp, fn_) = (predicted_c - tp, support - tp);
        let denom = 2.0 * tp + fp + fn_;
        let f1 = if denom > 0.0 { 2.0 * tp / denom } else { 0.0 };
        macro_sum += f1;
        weighted += f1 * support;
    }
    Scores {
        accuracy: if n > 0.0 { correct as f64 / n } else { 0.0 },
        f1_weighted: if n > 0.0 { weighted / n } else { 0.0 },
        f1_macro: if present > 0 {
            macro_sum / present as f64
        } else {
            0.0
        },
    }
}

/// The largest share of examples given to one class, and that class.
pub fn majority_share(labels: &[i64], num_labels: usize) -> (usize, f64) {
    let mut counts = vec![0usize; num_labels.max(1)];
    for &l in labels {
        counts[l as usize] += 1;
    }
    let (class, &count) = counts
        .iter()
        .enumerate()
        .max_by_key(|(_, &c)| c)
        .unwrap_or((0, &0));
    (
        class,
        if labels.is_empty() {
            0.0
        } else {
            count as f64 / labels.len() as f64
        },
    )
}

/// Collapse: one class predicted for more than `threshold` of the examples while the gold
/// labels are not that lopsided.
pub fn is_collapsed(gold: &[i64], predicted: &[i64], num_labels: usize, threshold: f64) -> bool {
    let (_, pred_share) = majority_share(predicted, num_labels);
    let (_, gold_share) = majority_share(gold, num_labels);
    pred_share > threshold && gold_share <= threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_case() {
        // gold 0 0 1 1 2, predicted 0 1 1 1 0:
        // class 0: tp 1 fp 1 fn 1 -> f1 0.5, support 2; class 1: tp 2 fp 1 fn 0 -> 0.8, support 2;
        // class 2: tp 0 fp 0 fn 1 -> 0, support 1. weighted = (1.0 + 1.6 + 0) / 5 = 0.52.
        let s = scores(&[0, 0, 1, 1, 2], &[0, 1, 1, 1, 0], 3);
        assert!((s.accuracy - 0.6).abs() < 1e-12);
        assert!((s.f1_weighted - 0.52).abs() < 1e-12);
        assert!((s.f1_macro - 1.3 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn collapse_needs_balanced_gold() {
        let gold = [0, 1, 0, 1, 0, 1, 0, 1, 0, 1];
        let all_zero = [0; 10];
        assert!(is_collapsed(&gold, &all_zero, 2, 0.95));
        assert!(!is_collapsed(&all_zero, &all_zero, 2, 0.95));
        assert!(!is_collapsed(&gold, &gold, 2, 0.95));
    }
}
