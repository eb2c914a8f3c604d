//! PCA before t-SNE, with linfa-reduction.

use super::params::check_finite;
use crate::error::user;
use anyhow::{Context, Result};
use linfa::traits::{Fit, Predict};
use linfa::DatasetBase;
use linfa_reduction::Pca;
use ndarray::{Array2, ArrayView2};

/// Projects the rows of `x` on their first principal components (centred, not whitened), with
/// linfa-reduction's `Pca`.
///
/// The output has min(dims, rows, columns) columns, in order of decreasing variance; each
/// column's sign is whatever linfa's solver gives (deterministic for an input). Components that
/// linfa drops because their singular value is at round-off level (the data has lower rank,
/// e.g. fewer rows than columns) come back as columns of zeros, which is their projection.
///
/// linfa's solver (LOBPCG, without BLAS) stops on an absolute residual of about 1e-10, which
/// data with large eigenvalues never reaches; it then iterates into round-off and can break
/// down. So the centred data are scaled to unit Frobenius norm before linfa sees them and the
/// projection is scaled back (PCA commutes with scaling).
pub fn pca(x: ArrayView2<f64>, dims: usize) -> Result<Array2<f64>> {
    let (n, m) = x.dim();
    if n == 0 || m == 0 {
        return Err(user(format!("PCA of an empty {n} x {m} matrix")));
    }
    if dims == 0 {
        return Err(user("PCA to 0 dimensions; ask for 1 or more"));
    }
    check_finite(x, "PCA")?;
    let k = dims.min(n).min(m);
    let mean = x.mean_axis(ndarray::Axis(0)).expect("rows > 0");
    let centred = &x - &mean;
    let norm = centred.iter().map(|v| v * v).sum::<f64>().sqrt();
    if norm == 0.0 {
        // Every row the same: every projection is 0.
        return Ok(Array2::zeros((n, k)));
    }
    let scaled = centred.mapv(|v| v / norm);
    let projected = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Pca::params(k)
            .fit(&DatasetBase::from(scaled.view()))
            .map(|model| -> Array2<f64> { model.predict(&scaled) })
    }))
    .map_err(|_| anyhow::anyhow!("linfa's PCA solver broke down"))
    .and_then(|r| r.map_err(anyhow::Error::from))
    .with_context(|| format!("PCA of a {n} x {m} matrix to {k} dimensions"))?;
    let mut out = Array2::zeros((n, k));
    let kept = projected.ncols().min(k);
    out.slice_mut(ndarray::s![.., ..kept])
        .assign(&projected.slice(ndarray::s![.., ..kept]));
    out.mapv_inplace(|v| v * norm);
    Ok(out)
}
