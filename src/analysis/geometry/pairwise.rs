//! The pass over all pairwise Euclidean distances that silhouette, k-NN accuracy and separation
//! share, in fixed tiles of the upper triangle of the distance matrix, in parallel with rayon:
//! a tile's distances come from `||a||^2 + ||b||^2 - 2 a.b` (one matrix product per tile, on
//! column-centred data, clamped at 0) or, for at most [`DIRECT_MAX_DIM`] columns, directly. Each
//! tile's partial results are reduced per row in a fixed order, and rows in order, so results do
//! not depend on the number of threads.

use std::ops::Range;

use ndarray::{s, Array1, Array2, ArrayView2};
use rayon::prelude::*;

use super::{centred, row_sq_norms};

/// Rows per block of the pairwise-distance pass (tiles of the distance matrix are blocks x
/// blocks), unless that makes more than [`MAX_BLOCKS`] blocks; then the blocks grow instead.
/// The tiles' partial results take about `n^2 / block * (n_classes + 2 k) * 8` bytes.
const TILE: usize = 256;
const MAX_BLOCKS: usize = 24;

/// Up to this many columns, pairwise distances are computed as `sqrt(sum (a - b)^2)`; above it,
/// through a matrix product.
pub const DIRECT_MAX_DIM: usize = 16;

/// Per-row results of the pairwise pass.
pub(super) struct Pass {
    /// `n x n_classes`: row i, column c = sum of distances from i to the other members of c.
    pub(super) class_sums: Vec<f64>,
    /// Number of rows the k-NN vote classified correctly (when k was given).
    knn_correct: usize,
    n: usize,
}

impl Pass {
    pub(super) fn knn_accuracy(&self) -> f64 {
        self.knn_correct as f64 / self.n as f64
    }
}

/// One parallel pass over the pairwise distances: per-row class sums, and the leave-one-out
/// k-NN vote when `k` is given.
///
/// The rows are cut into blocks (of [`TILE`] rows, at most [`MAX_BLOCKS`] blocks); each tile
/// (I, J) with I <= J of the distance matrix is computed once and gives, for the rows of I and
/// (when I < J) of J, their class sums and their k nearest points within the other block. A row
/// then adds its partial sums and merges its candidates over J = 0, 1, ... in order. Nothing
/// depends on which thread did what.
pub(super) fn pairwise_pass(
    x: ArrayView2<f64>,
    labels: &[usize],
    n_classes: usize,
    k: Option<usize>,
) -> Pass {
    let n = x.nrows();
    let xc = centred(x);
    let norms = row_sq_norms(&xc);
    let direct = xc.ncols() <= DIRECT_MAX_DIM;
    let k = k.map_or(0, |k| k.min(n.saturating_sub(1)));
    let nc = n_classes;

    let tile = n.div_ceil(n.div_ceil(TILE).clamp(1, MAX_BLOCKS)).max(1);
    let nb = n.div_ceil(tile);
    let block = |b: usize| b * tile..((b + 1) * tile).min(n);
    let tiles: Vec<(usize, usize)> = (0..nb)
        .flat_map(|bi| (bi..nb).map(move |bj| (bi, bj)))
        .collect();
    let outs: Vec<TileOut> = tiles
        .par_iter()
        .map(|&(bi, bj)| {
            let d = distance_tile(&xc, &norms, block(bi), block(bj), direct, bi == bj);
            tile_stats(&d, labels, nc, k, block(bi), block(bj))
        })
        .collect();
    let mut index = vec![usize::MAX; nb * nb];
    for (t, &(bi, bj)) in tiles.iter().enumerate() {
        index[bi * nb + bj] = t;
    }

    let per_block: Vec<(Vec<f64>, usize)> = (0..nb)
        .into_par_iter()
        .map(|b| {
            let rows = block(b);
            let m = rows.len();
            let mut sums = vec![0.0; m * nc];
            let mut correct = 0usize;
            let mut candidates: Vec<(f64, usize)> = Vec::with_capacity(nb * k);
            let mut votes = vec![0usize; nc];
            for local in 0..m {
                let row_sums = &mut sums[local * nc..(local + 1) * nc];
                candidates.clear();
                for other in 0..nb {
                    // This row's position in the tile's output: first the rows of the tile's
                    // first block, then those of its second.
                    let (out, pos) = if b <= other {
                        (&outs[index[b * nb + other]], local)
                    } else {
                        (&outs[index[other * nb + b]], block(other).len() + local)
                    };
                    for (s, v) in row_sums.iter_mut().zip(&out.sums[pos * nc..(pos + 1) * nc]) {
                        *s += v;
                    }
                    if k > 0 {
                        candidates.extend(
                            out.near[pos * k..(pos + 1) * k]
                                .iter()
                                .filter(|c| c.1 != usize::MAX),
                        );
                    }
                }
                if k > 0 {
                    if k < candidates.len() {
                        candidates.select_nth_unstable_by(k - 1, nearer);
                    }
                    votes.fill(0);
                    for &(_, j) in &candidates[..k] {
                        votes[labels[j]] += 1;
                    }
                    // First maximum: a tied vote goes to the smallest class index.
                    let mut best = 0;
                    for (c, &v) in votes.iter().enumerate() {
                        if v > votes[best] {
                            best = c;
                        }
                    }
                    if best == labels[rows.start + local] {
                        correct += 1;
                    }
                }
            }
            (sums, correct)
        })
        .collect();

    let mut class_sums = Vec::with_capacity(n * nc);
    let mut knn_correct = 0;
    for (sums, correct) in per_block {
        class_sums.extend_from_slice(&sums);
        knn_correct += correct;
    }
    Pass {
        class_sums,
        knn_correct,
        n,
    }
}

/// Order of neighbours: by distance, then by index.
fn nearer(a: &(f64, usize), b: &(f64, usize)) -> std::cmp::Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

/// What one tile of the distance matrix contributes to its rows.
struct TileOut {
    /// Per row (the first block's rows, then, off the diagonal, the second's): distance sums to
    /// the other block's members of each class.
    sums: Vec<f64>,
    /// Per row, `k` slots: its nearest points in the other block, ascending; unused slots are
    /// `(inf, usize::MAX)`.
    near: Vec<(f64, usize)>,
}

/// Inserts `(d, j)` into the ascending list `slots` if it is nearer than the last entry.
#[inline]
fn push_near(slots: &mut [(f64, usize)], d: f64, j: usize) {
    let k = slots.len();
    if k == 0 {
        return;
    }
    if nearer(&(d, j), &slots[k - 1]).is_ge() {
        return;
    }
    let mut p = k - 1;
    while p > 0 && nearer(&(d, j), &slots[p - 1]).is_lt() {
        slots[p] = slots[p - 1];
        p -= 1;
    }
    slots[p] = (d, j);
}

fn tile_stats(
    d: &Array2<f64>,
    labels: &[usize],
    nc: usize,
    k: usize,
    ri: Range<usize>,
    rj: Range<usize>,
) -> TileOut {
    let diagonal = ri.start == rj.start;
    let (mi, mj) = (ri.len(), rj.len());
    let rows = if diagonal { mi } else { mi + mj };
    let mut sums = vec![0.0; rows * nc];
    let mut near = vec![(f64::INFINITY, usize::MAX); rows * k];
    // Each list's current last distance: a point farther than it cannot enter the list.
    let last = |slots: &[(f64, usize)]| slots.last().map_or(f64::NEG_INFINITY, |l| l.0);
    for (a, drow) in d.rows().into_iter().enumerate() {
        let i = ri.start + a;
        let drow = drow.as_slice().expect("distance tile is contiguous");
        let row_sums = &mut sums[a * nc..(a + 1) * nc];
        let row_near = &mut near[a * k..(a + 1) * k];
        let mut bound = last(row_near);
        for (b, &v) in drow.iter().enumerate() {
            let j = rj.start + b;
            if j != i {
                row_sums[labels[j]] += v;
                if v <= bound {
                    push_near(row_near, v, j);
                    bound = last(row_near);
                }
            }
        }
    }
    if !diagonal {
        // The second block's rows are the tile's columns; read the tile row by row.
        let second = &mut sums[mi * nc..];
        let near_second = &mut near[mi * k..];
        let mut bounds: Vec<f64> = (0..mj)
            .map(|b| last(&near_second[b * k..(b + 1) * k]))
            .collect();
        for (a, drow) in d.rows().into_iter().enumerate() {
            let i = ri.start + a;
            let ci = labels[i];
            for (b, &v) in drow.iter().enumerate() {
                second[b * nc + ci] += v;
                if v <= bounds[b] {
                    let slots = &mut near_second[b * k..(b + 1) * k];
                    push_near(slots, v, i);
                    bounds[b] = last(slots);
                }
            }
        }
    }
    TileOut { sums, near }
}

/// Distances between rows `ri` and rows `rj` of `xc`, `ri.len() x rj.len()`, with exact zeros
/// on the diagonal when the two ranges are the same.
fn distance_tile(
    xc: &Array2<f64>,
    norms: &Array1<f64>,
    ri: Range<usize>,
    rj: Range<usize>,
    direct: bool,
    diagonal: bool,
) -> Array2<f64> {
    let mut out = if direct {
        let mut out = Array2::<f64>::zeros((ri.len(), rj.len()));
        for (a, mut orow) in out.rows_mut().into_iter().enumerate() {
            let p = xc.row(ri.start + a);
            for (o, q) in orow.iter_mut().zip(xc.slice(s![rj.clone(), ..]).rows()) {
                *o = p
                    .iter()
                    .zip(q.iter())
                    .map(|(u, v)| (u - v) * (u - v))
                    .sum::<f64>()
                    .sqrt();
            }
        }
        out
    } else {
        let mut g = xc
            .slice(s![ri.clone(), ..])
            .dot(&xc.slice(s![rj.clone(), ..]).t());
        for (a, mut grow) in g.rows_mut().into_iter().enumerate() {
            let ni = norms[ri.start + a];
            for (v, &nj) in grow.iter_mut().zip(norms.slice(s![rj.clone()]).iter()) {
                *v = (ni + nj - 2.0 * *v).max(0.0).sqrt();
            }
        }
        g
    };
    if diagonal {
        out.diag_mut().fill(0.0);
    }
    out
}
