//! One layer of `heal drift`: two embedding matrices of the same examples compared.

use ndarray::ArrayView2;

use super::centroids::{class_centroids, euclidean};
use super::cka::cka_sums;
use super::clusters::cluster_scores;
use crate::error::user;

/// Mean over rows of cos(x_i, y_i). A row that is zero on either side contributes 0 and is
/// counted. Panics if the shapes differ; NaN only for a matrix without rows.
pub fn mean_row_cosine(x: ArrayView2<f64>, y: ArrayView2<f64>) -> f64 {
    assert_eq!(
        x.dim(),
        y.dim(),
        "mean_row_cosine: shapes differ ({:?} and {:?})",
        x.dim(),
        y.dim()
    );
    let n = x.nrows();
    if n == 0 {
        return f64::NAN;
    }
    let mut total = 0.0;
    for (a, b) in x.rows().into_iter().zip(y.rows()) {
        let na = a.dot(&a).sqrt();
        let nb = b.dot(&b).sqrt();
        if na > 0.0 && nb > 0.0 {
            total += a.dot(&b) / (na * nb);
        }
    }
    total / n as f64
}

/// Everything `heal drift` reports for one layer of two embedding matrices of the same examples.
/// NaN values (see the functions) serialise as `null`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerDrift {
    pub cka: f64,
    pub cka_debiased: f64,
    /// `None` when the two sides have different widths.
    pub mean_cosine: Option<f64>,
    pub separation_a: f64,
    pub separation_b: f64,
    pub silhouette_a: f64,
    pub silhouette_b: f64,
    pub knn_a: f64,
    pub knn_b: f64,
    /// Per class, the distance between its centroid in A and in B; empty when the widths
    /// differ (NaN for a class without examples).
    pub centroid_shift: Vec<f64>,
}

/// Compares two embedding matrices of the same examples (row i of `a` and of `b` is the same
/// example). User errors (exit code 2) for different row counts, fewer than 4 rows, a labels
/// length that does not match, a label `>= n_classes`, k = 0, or a non-finite value.
pub fn layer_drift(
    a: ArrayView2<f64>,
    b: ArrayView2<f64>,
    labels: &[usize],
    n_classes: usize,
    k: usize,
) -> anyhow::Result<LayerDrift> {
    let n = a.nrows();
    if b.nrows() != n {
        return Err(user(format!(
            "the two embedding matrices have different numbers of rows ({} and {}); they must \
             hold the same examples in the same order",
            n,
            b.nrows()
        )));
    }
    if n < 4 {
        return Err(user(format!(
            "need at least 4 examples to compare representations, got {n}"
        )));
    }
    if labels.len() != n {
        return Err(user(format!(
            "{} labels for {} embedded examples; they must match one to one",
            labels.len(),
            n
        )));
    }
    if let Some((i, &c)) = labels.iter().enumerate().find(|&(_, &c)| c >= n_classes) {
        return Err(user(format!(
            "example {i} has label index {c}, but there are only {n_classes} classes"
        )));
    }
    if k == 0 {
        return Err(user("k for k-NN accuracy must be at least 1"));
    }
    check_finite("A", a)?;
    check_finite("B", b)?;

    let sums = cka_sums(a, b);
    let same_width = a.ncols() == b.ncols();
    let (sa, sb) = rayon::join(
        || cluster_scores(a, labels, k),
        || cluster_scores(b, labels, k),
    );
    let centroid_shift = if same_width {
        let (ca, cb) = (
            class_centroids(a, labels, n_classes),
            class_centroids(b, labels, n_classes),
        );
        (0..n_classes)
            .map(|c| euclidean(ca.row(c), cb.row(c)))
            .collect()
    } else {
        Vec::new()
    };
    Ok(LayerDrift {
        cka: sums.biased(),
        cka_debiased: sums.debiased(),
        mean_cosine: same_width.then(|| mean_row_cosine(a, b)),
        separation_a: sa.separation,
        separation_b: sb.separation,
        silhouette_a: sa.silhouette,
        silhouette_b: sb.silhouette,
        knn_a: sa.knn,
        knn_b: sb.knn,
        centroid_shift,
    })
}

fn check_finite(side: &str, m: ArrayView2<f64>) -> anyhow::Result<()> {
    match m.indexed_iter().find(|(_, v)| !v.is_finite()) {
        Some(((i, j), v)) => Err(user(format!(
            "embedding {side} has a non-finite value ({v}) at row {i}, column {j}"
        ))),
        None => Ok(()),
    }
}
