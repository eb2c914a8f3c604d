//! The input similarities P: exact nearest neighbours (`knn.rs`), per-point conditional probabilities at
//! the perplexity, and their symmetrisation into sparse rows.

use super::knn::nearest_neighbours;
use super::params::{check_finite, validate_params, TsneParams};
use anyhow::Result;
use ndarray::ArrayView2;
use rayon::prelude::*;

/// The symmetric joint probabilities P of the t-SNE input, sparse (compressed rows): row i holds
/// the points j with P_ij > 0, columns ascending. The entries sum to 1 (up to rounding).
#[derive(Clone, Debug)]
pub struct Affinities {
    pub(super) row_start: Vec<usize>,
    pub(super) cols: Vec<u32>,
    pub(super) vals: Vec<f64>,
}

impl Affinities {
    /// Number of points.
    pub fn n(&self) -> usize {
        self.row_start.len() - 1
    }

    /// Stored entries.
    pub fn nnz(&self) -> usize {
        self.vals.len()
    }

    /// Row i: (column, P_ij).
    pub fn row(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let r = self.row_start[i]..self.row_start[i + 1];
        self.cols[r.clone()]
            .iter()
            .zip(&self.vals[r])
            .map(|(&j, &v)| (j as usize, v))
    }
}

/// The number of neighbours t-SNE uses for a perplexity: scikit-learn's
/// `min(n - 1, int(3 * perplexity + 1))`.
pub fn neighbour_count(n: usize, perplexity: f64) -> usize {
    ((3.0 * perplexity + 1.0).floor() as usize).clamp(1, n.saturating_sub(1).max(1))
}

/// P for the rows of `x` (already PCA-reduced, if wanted) at a perplexity, as the heal engine
/// computes it.
pub fn affinities(x: ArrayView2<f64>, perplexity: f64) -> Result<Affinities> {
    let params = TsneParams {
        perplexity,
        ..TsneParams::default()
    };
    validate_params(x.nrows(), &params)?;
    check_finite(x, "t-SNE")?;
    Ok(affinities_unchecked(x, perplexity))
}

pub(super) fn affinities_unchecked(x: ArrayView2<f64>, perplexity: f64) -> Affinities {
    let (n, d) = x.dim();
    let data = x.as_standard_layout();
    let flat = data.as_slice().expect("standard layout");
    let k = neighbour_count(n, perplexity);
    let (idx, dist) = nearest_neighbours(flat, n, d, k);
    let mut cond = vec![0.0; n * k];
    cond.par_chunks_mut(k)
        .zip(dist.par_chunks(k))
        .for_each(|(out, d2)| conditional_row(d2, perplexity, out));
    symmetrise(n, k, &idx, &cond)
}

/// p_j|i over one point's neighbours (squared distances `d2`, ascending) for a perplexity:
/// binary search on the Gaussian precision until the entropy is ln(perplexity) within 1e-5.
fn conditional_row(d2: &[f64], perplexity: f64, out: &mut [f64]) {
    let target = perplexity.ln();
    // Shift by the smallest distance: P is unchanged and exp() never underflows everywhere.
    let dmin = d2.iter().copied().fold(f64::INFINITY, f64::min);
    let mean = d2.iter().map(|d| d - dmin).sum::<f64>() / d2.len() as f64;
    let mut beta = if mean > 0.0 { 1.0 / mean } else { 1.0 };
    let (mut lo, mut hi) = (0.0f64, f64::INFINITY);
    let mut sum = 0.0;
    for _ in 0..200 {
        sum = 0.0;
        let mut weighted = 0.0;
        for (o, &d) in out.iter_mut().zip(d2) {
            let s = d - dmin;
            // s == 0 is the nearest neighbour itself (weight 1 whatever beta is, even infinite).
            let p = if s > 0.0 { (-s * beta).exp() } else { 1.0 };
            *o = p;
            sum += p;
            weighted += s * p;
        }
        let entropy = sum.ln() + beta * weighted / sum;
        let diff = entropy - target;
        if diff.abs() <= 1e-5 {
            break;
        }
        if diff > 0.0 {
            lo = beta;
            beta = if hi.is_finite() {
                (beta + hi) / 2.0
            } else {
                (beta * 2.0).min(f64::MAX)
            };
        } else {
            hi = beta;
            beta = (beta + lo) / 2.0;
        }
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
}

/// P_ij = (p_j|i + p_i|j) / 2n in compressed rows.
fn symmetrise(n: usize, k: usize, idx: &[u32], cond: &[f64]) -> Affinities {
    let mut counts = vec![0usize; n + 1];
    for i in 0..n {
        counts[i + 1] += k;
        for &j in &idx[i * k..(i + 1) * k] {
            counts[j as usize + 1] += 1;
        }
    }
    for i in 0..n {
        counts[i + 1] += counts[i];
    }
    let mut fill = counts.clone();
    let mut entries = vec![(0u32, 0.0f64); counts[n]];
    for i in 0..n {
        for t in 0..k {
            let j = idx[i * k + t] as usize;
            let v = cond[i * k + t];
            entries[fill[i]] = (j as u32, v);
            fill[i] += 1;
            entries[fill[j]] = (i as u32, v);
            fill[j] += 1;
        }
    }
    let scale = 1.0 / (2.0 * n as f64);
    let mut row_start = Vec::with_capacity(n + 1);
    let mut cols = Vec::with_capacity(entries.len());
    let mut vals = Vec::with_capacity(entries.len());
    row_start.push(0);
    for i in 0..n {
        let row = &mut entries[counts[i]..counts[i + 1]];
        row.sort_by_key(|e| e.0);
        let mut t = 0;
        while t < row.len() {
            let (j, mut v) = row[t];
            // A pair is listed at most twice (once from each end); a + b == b + a exactly,
            // so P comes out exactly symmetric.
            if t + 1 < row.len() && row[t + 1].0 == j {
                v += row[t + 1].1;
                t += 1;
            }
            cols.push(j);
            vals.push(v * scale);
            t += 1;
        }
        row_start.push(cols.len());
    }
    Affinities {
        row_start,
        cols,
        vals,
    }
}
