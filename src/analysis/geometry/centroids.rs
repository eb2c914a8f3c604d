//! Class centroids and the distances between them.

use ndarray::{Array2, ArrayView2};

use super::check_labels;

/// Class means, `n_classes x d`. A class without examples gets a row of NaN.
/// Panics if `labels.len() != x.nrows()` or a label is `>= n_classes`.
pub fn class_centroids(x: ArrayView2<f64>, labels: &[usize], n_classes: usize) -> Array2<f64> {
    check_labels(x.nrows(), labels, Some(n_classes));
    let mut sums = Array2::<f64>::zeros((n_classes, x.ncols()));
    let mut counts = vec![0usize; n_classes];
    for (row, &c) in x.rows().into_iter().zip(labels) {
        let mut target = sums.row_mut(c);
        target += &row;
        counts[c] += 1;
    }
    for (mut row, &count) in sums.rows_mut().into_iter().zip(&counts) {
        if count == 0 {
            row.fill(f64::NAN);
        } else {
            row /= count as f64;
        }
    }
    sums
}

/// Euclidean distances between class centroids, `n_classes x n_classes` (NaN where a class has
/// no examples). Same panics as [`class_centroids`].
pub fn centroid_distances(x: ArrayView2<f64>, labels: &[usize], n_classes: usize) -> Array2<f64> {
    let c = class_centroids(x, labels, n_classes);
    // The diagonal is exactly 0 (NaN for an empty class).
    Array2::from_shape_fn((n_classes, n_classes), |(i, j)| {
        euclidean(c.row(i), c.row(j))
    })
}

pub(super) fn euclidean(a: ndarray::ArrayView1<f64>, b: ndarray::ArrayView1<f64>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(p, q)| (p - q) * (p - q))
        .sum::<f64>()
        .sqrt()
}
