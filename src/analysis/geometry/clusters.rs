//! How well the classes cluster in one matrix: separation, silhouette and leave-one-out k-NN
//! accuracy, all from the pairwise pass.

use ndarray::ArrayView2;

use super::check_labels;
use super::pairwise::{pairwise_pass, Pass};

/// Mean Euclidean distance over pairs of examples of different classes divided by the mean over
/// pairs (i < j) of the same class (Zhou & Srikumar). NaN when there is no pair of one of the two
/// kinds. Panics if `labels.len() != x.nrows()`.
pub fn separation(x: ArrayView2<f64>, labels: &[usize]) -> f64 {
    let n_classes = check_labels(x.nrows(), labels, None);
    let pass = pairwise_pass(x, labels, n_classes, None);
    separation_from(&pass, labels, n_classes)
}

/// scikit-learn's `silhouette_score(X, labels, metric="euclidean")`: the mean over examples of
/// `(b - a) / max(a, b)`, with a the mean distance to the other members of the example's class,
/// b the smallest mean distance to another class's members; 0 for an example alone in its class
/// (and where a = b = 0). NaN where scikit-learn raises: fewer than 2 or more than n - 1 distinct
/// labels. Works for any number of columns. Panics if `labels.len() != x.nrows()`.
pub fn silhouette(x: ArrayView2<f64>, labels: &[usize]) -> f64 {
    let n_classes = check_labels(x.nrows(), labels, None);
    let pass = pairwise_pass(x, labels, n_classes, None);
    silhouette_from(&pass, labels, n_classes)
}

/// Leave-one-out k-NN accuracy: each example is classified by a uniform vote of its k nearest
/// other examples (Euclidean; among equal distances the smaller index is nearer), a tied vote
/// going to the smallest class index, as scikit-learn's `KNeighborsClassifier` under
/// `cross_val_score(..., cv=LeaveOneOut())`. k is capped at n - 1; NaN for n < 2.
/// Panics if k = 0 or `labels.len() != x.nrows()`.
/// The leave-one-out k-NN accuracy needs more examples than neighbours (each example's `k`
/// neighbours come from the other n - 1): a `--k` of n or more is the user's to fix, named
/// with the set it was asked of.
pub fn knn_fits(k: usize, n: usize, set: &std::path::Path) -> anyhow::Result<()> {
    if k >= n {
        return Err(crate::error::user(format!(
            "--k {k}: {} has {n} examples; give fewer neighbours than examples",
            set.display()
        )));
    }
    Ok(())
}

pub fn knn_accuracy(x: ArrayView2<f64>, labels: &[usize], k: usize) -> f64 {
    assert!(k >= 1, "knn_accuracy: k must be at least 1");
    let n_classes = check_labels(x.nrows(), labels, None);
    if x.nrows() < 2 {
        return f64::NAN;
    }
    let pass = pairwise_pass(x, labels, n_classes, Some(k));
    pass.knn_accuracy()
}

/// Silhouette, k-NN accuracy and separation of one matrix (one distance pass for all three).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ClusterScores {
    pub silhouette: f64,
    pub knn: f64,
    pub separation: f64,
}

/// [`silhouette`], [`knn_accuracy`] and [`separation`] of `x` from one pass over the pairwise
/// distances; works for any number of columns (t-SNE maps have 2). Same NaN rules and panics.
pub fn cluster_scores(x: ArrayView2<f64>, labels: &[usize], k: usize) -> ClusterScores {
    assert!(k >= 1, "cluster_scores: k must be at least 1");
    let n_classes = check_labels(x.nrows(), labels, None);
    let n = x.nrows();
    let pass = pairwise_pass(x, labels, n_classes, (n >= 2).then_some(k));
    ClusterScores {
        silhouette: silhouette_from(&pass, labels, n_classes),
        knn: if n >= 2 {
            pass.knn_accuracy()
        } else {
            f64::NAN
        },
        separation: separation_from(&pass, labels, n_classes),
    }
}

fn class_counts(labels: &[usize], n_classes: usize) -> Vec<usize> {
    let mut counts = vec![0usize; n_classes];
    for &c in labels {
        counts[c] += 1;
    }
    counts
}

fn silhouette_from(pass: &Pass, labels: &[usize], n_classes: usize) -> f64 {
    let n = labels.len();
    let counts = class_counts(labels, n_classes);
    let present = counts.iter().filter(|&&c| c > 0).count();
    if present < 2 || present > n - 1 {
        return f64::NAN;
    }
    let mut total = 0.0;
    for (i, &c) in labels.iter().enumerate() {
        if counts[c] == 1 {
            continue;
        }
        let sums = &pass.class_sums[i * n_classes..(i + 1) * n_classes];
        let a = sums[c] / (counts[c] - 1) as f64;
        let b = (0..n_classes)
            .filter(|&o| o != c && counts[o] > 0)
            .map(|o| sums[o] / counts[o] as f64)
            .fold(f64::INFINITY, f64::min);
        let m = a.max(b);
        if m > 0.0 {
            total += (b - a) / m;
        }
    }
    total / n as f64
}

fn separation_from(pass: &Pass, labels: &[usize], n_classes: usize) -> f64 {
    let n = labels.len();
    let counts = class_counts(labels, n_classes);
    // Ordered pairs (each unordered pair twice; the ratio of means is the same).
    let within_pairs: usize = counts.iter().map(|&c| c * c.saturating_sub(1)).sum();
    let between_pairs = n * n.saturating_sub(1) - within_pairs;
    if within_pairs == 0 || between_pairs == 0 {
        return f64::NAN;
    }
    let (mut within, mut between) = (0.0, 0.0);
    for (i, &c) in labels.iter().enumerate() {
        let sums = &pass.class_sums[i * n_classes..(i + 1) * n_classes];
        within += sums[c];
        between += sums
            .iter()
            .enumerate()
            .filter(|&(o, _)| o != c)
            .map(|(_, v)| v)
            .sum::<f64>();
    }
    (between / between_pairs as f64) / (within / within_pairs as f64)
}
