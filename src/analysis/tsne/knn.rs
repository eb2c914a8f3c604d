//! Exact k nearest neighbours by blocked matrix products.
//!
//! |a - b|^2 = |a|^2 + |b|^2 - 2 a.b: for one query row the ranking needs only
//! |b|^2 - 2 a.b, and a block of queries against a block of candidates is one matrix product.
//! The products run in f32 (twice the rate of f64, and the order of far-away points does not
//! matter); every query keeps [`margin`] more candidates than it needs, and the final k are
//! chosen on squared distances recomputed in f64 from the inputs, so the neighbours and their
//! distances are the exact ones unless f32 rounding moves a point across more than the margin
//! (relative gaps below about 1e-6 of the squared norms).
//!
//! Each block of queries runs start to finish on one thread, over the candidates in index
//! order: the result does not depend on the number of threads.

use ndarray::linalg::general_mat_mul;
use ndarray::Array2;
#[cfg(test)]
use ndarray::ArrayView2;
use rayon::prelude::*;

/// Queries per block (a block's scores are QUERIES x CANDIDATES f32 values, 4 MiB).
const QUERIES: usize = 256;
/// Candidates per product.
const CANDIDATES: usize = 4096;

/// Extra candidates kept per query before the exact f64 check.
fn margin(k: usize) -> usize {
    k / 4 + 8
}

/// Squared Euclidean distance in f64, four lanes then the rest: the one definition every
/// neighbour distance goes through.
fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let ca = a.chunks_exact(4);
    let cb = b.chunks_exact(4);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            let t = x[l] - y[l];
            acc[l] += t * t;
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        let t = x - y;
        s += t * t;
    }
    s
}

/// The k nearest neighbours of every row of `x` (n x d, row-major; not the row itself), by
/// squared Euclidean distance, nearest first, ties to the lower index. Returns n x k indices
/// and squared distances.
pub(super) fn nearest_neighbours(x: &[f64], n: usize, d: usize, k: usize) -> (Vec<u32>, Vec<f64>) {
    assert!(k < n, "k nearest neighbours need more than k points");
    let keep = (k + margin(k)).min(n - 1);
    let xf = Array2::from_shape_fn((n, d), |(i, c)| x[i * d + c] as f32);
    let norms: Vec<f32> = (0..n)
        .map(|i| x[i * d..(i + 1) * d].iter().map(|v| v * v).sum::<f64>() as f32)
        .collect();
    let mut idx = vec![0u32; n * k];
    let mut dist = vec![0.0f64; n * k];
    idx.par_chunks_mut(QUERIES * k)
        .zip(dist.par_chunks_mut(QUERIES * k))
        .enumerate()
        .for_each(|(block, (idx_out, dist_out))| {
            let q0 = block * QUERIES;
            let rows = idx_out.len() / k;
            let queries = xf.slice(ndarray::s![q0..q0 + rows, ..]);
            let mut lists = vec![Candidates::new(keep); rows];
            let mut scores = Array2::<f32>::zeros((rows, CANDIDATES.min(n)));
            for c0 in (0..n).step_by(CANDIDATES) {
                let cols = CANDIDATES.min(n - c0);
                let cand = xf.slice(ndarray::s![c0..c0 + cols, ..]);
                let mut s = scores.slice_mut(ndarray::s![.., ..cols]);
                general_mat_mul(-2.0, &queries, &cand.t(), 0.0, &mut s);
                for (r, list) in lists.iter_mut().enumerate() {
                    let row = s.row(r);
                    let row = row.as_slice().expect("rows of a standard-layout array");
                    let me = q0 + r;
                    for (t, (&v, &nb)) in row.iter().zip(&norms[c0..c0 + cols]).enumerate() {
                        let score = v + nb;
                        if score <= list.bound && c0 + t != me {
                            list.push(score, (c0 + t) as u32);
                        }
                    }
                }
            }
            for (r, list) in lists.into_iter().enumerate() {
                let me = q0 + r;
                let xi = &x[me * d..(me + 1) * d];
                let mut exact: Vec<(f64, u32)> = list
                    .items
                    .iter()
                    .map(|&(_, j)| {
                        let j = j as usize;
                        (squared_distance(xi, &x[j * d..(j + 1) * d]), j as u32)
                    })
                    .collect();
                exact.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                for (t, &(d2, j)) in exact.iter().take(k).enumerate() {
                    idx_out[r * k + t] = j;
                    dist_out[r * k + t] = d2;
                }
            }
        });
    (idx, dist)
}

/// One query's best candidates so far: at most 2 * keep items, cut back to the best `keep`
/// when full; `bound` is the worst score that can still make the cut.
#[derive(Clone)]
struct Candidates {
    keep: usize,
    bound: f32,
    items: Vec<(f32, u32)>,
}

impl Candidates {
    fn new(keep: usize) -> Self {
        Candidates {
            keep,
            bound: f32::INFINITY,
            items: Vec::with_capacity(2 * keep),
        }
    }

    fn push(&mut self, score: f32, j: u32) {
        self.items.push((score, j));
        if self.items.len() == 2 * self.keep {
            self.shrink();
        }
    }

    fn shrink(&mut self) {
        let order = |a: &(f32, u32), b: &(f32, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
        self.items.select_nth_unstable_by(self.keep - 1, order);
        self.items.truncate(self.keep);
        self.bound = self
            .items
            .iter()
            .map(|v| v.0)
            .fold(f32::NEG_INFINITY, f32::max);
    }
}

/// `nearest_neighbours` on an ndarray, for tests.
#[cfg(test)]
fn on_array(x: ArrayView2<f64>, k: usize) -> (Vec<u32>, Vec<f64>) {
    let s = x.as_standard_layout();
    nearest_neighbours(s.as_slice().unwrap(), x.nrows(), x.ncols(), k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Brute force in f64: every distance, sorted.
    fn brute(x: ArrayView2<f64>, k: usize) -> (Vec<u32>, Vec<f64>) {
        let s = x.as_standard_layout();
        let f = s.as_slice().unwrap();
        let (n, d) = x.dim();
        let mut idx = Vec::new();
        let mut dist = Vec::new();
        for i in 0..n {
            let mut all: Vec<(f64, u32)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    (
                        squared_distance(&f[i * d..(i + 1) * d], &f[j * d..(j + 1) * d]),
                        j as u32,
                    )
                })
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for &(d2, j) in all.iter().take(k) {
                idx.push(j);
                dist.push(d2);
            }
        }
        (idx, dist)
    }

    #[test]
    fn blocked_products_find_the_exact_neighbours() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        // More rows than one block of queries and of candidates, clustered and with offsets
        // large against the spread (the case where |a|^2 + |b|^2 - 2ab cancels most).
        let (n, d, k) = (4500, 13, 31);
        let x = Array2::from_shape_fn((n, d), |(i, c)| {
            (i % 7) as f64 * 3.0 + if c == 0 { 100.0 } else { 0.0 } + rng.gen::<f64>()
        });
        let (ia, da) = on_array(x.view(), k);
        let (ib, db) = brute(x.view(), k);
        assert_eq!(ia, ib);
        assert_eq!(da, db);
    }

    #[test]
    fn duplicates_and_ties_go_to_the_lower_index() {
        // Every row twice: each row's nearest is its copy at distance 0, and equal distances
        // rank by index.
        let base = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [5.0, 5.0]];
        let x = Array2::from_shape_fn((10, 2), |(i, c)| base[i % 5][c]);
        let (ia, da) = on_array(x.view(), 3);
        let (ib, db) = brute(x.view(), 3);
        assert_eq!(ia, ib);
        assert_eq!(da, db);
        assert_eq!(&ia[..3], &[5, 1, 2]);
    }
}
