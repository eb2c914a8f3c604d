//! Representation geometry of embedding matrices (rows = examples, columns = features), for
//! `heal drift` and the t-SNE panels: linear CKA and its debiased form, mean cosine of matching
//! rows, class centroids and their distances, Zhou & Srikumar's separation (mean between-class
//! over mean within-class distance), silhouette score and leave-one-out k-NN accuracy.
//!
//! Everything is f64. Labels are class indices `0..n_classes`.
//!
//! The O(n^2) metrics (silhouette, k-NN, separation) share one pass over the pairwise Euclidean
//! distances, in tiles computed in parallel (pairwise.rs); results do not depend on the number of
//! threads.

use ndarray::{Array1, Array2, ArrayView2};

mod centroids;
mod cka;
mod clusters;
mod drift;
mod pairwise;

pub use centroids::{centroid_distances, class_centroids};
pub use cka::{linear_cka, linear_cka_debiased};
pub use clusters::{cluster_scores, knn_accuracy, knn_fits, separation, silhouette, ClusterScores};
pub use drift::{layer_drift, mean_row_cosine, LayerDrift};
pub use pairwise::DIRECT_MAX_DIM;

/// Labels length must match; returns the number of classes (max label + 1, or the given
/// `n_classes` after checking the labels are below it).
fn check_labels(n: usize, labels: &[usize], n_classes: Option<usize>) -> usize {
    assert_eq!(labels.len(), n, "{} labels for {} rows", labels.len(), n);
    let max = labels.iter().copied().max().map_or(0, |m| m + 1);
    match n_classes {
        Some(k) => {
            assert!(max <= k, "label {} is not below n_classes = {}", max - 1, k);
            k
        }
        None => max,
    }
}

/// Column-centred copy in standard layout.
fn centred(x: ArrayView2<f64>) -> Array2<f64> {
    let n = x.nrows();
    let mut mean = Array1::<f64>::zeros(x.ncols());
    for row in x.rows() {
        mean += &row;
    }
    if n > 0 {
        mean /= n as f64;
    }
    Array2::from_shape_fn(x.dim(), |(i, j)| x[[i, j]] - mean[j])
}

fn row_sq_norms(x: &Array2<f64>) -> Array1<f64> {
    x.rows().into_iter().map(|r| r.dot(&r)).collect()
}
