//! Representation geometry of embedding matrices (rows = examples, columns = features), for
//! `heal drift` and the t-SNE panels: linear CKA and its debiased form, mean cosine of matching
//! rows, class centroids and their distances, Zhou & Srikumar's separation (mean between-class
//! over mean within-class distance), silhouette score and leave-one-out k-NN accuracy.
//!
//! Everything is f64. Labels are class indices `0..n_classes`.
//!
//! The O(n^2) metrics (silhouette, k-NN, separation) share one pass over the pairwise Euclidean
//! distances, in fixed tiles of the upper triangle of the distance matrix, in parallel with rayon:
//! a tile's distances come from `||a||^2 + ||b||^2 - 2 a.b` (one matrix product per tile, on
//! column-centred data, clamped at 0) or, for at most [`DIRECT_MAX_DIM`] columns, directly. Each
//! tile's partial results are reduced per row in a fixed order, and rows in order, so results do
//! not depend on the number of threads.

use std::ops::Range;

use ndarray::{s, Array1, Array2, ArrayView2, Zip};
use rayon::prelude::*;

use crate::error::user;

/// Rows per block of the pairwise-distance pass (tiles of the distance matrix are blocks x
/// blocks), unless that makes more than [`MAX_BLOCKS`] blocks; then the blocks grow instead.
/// The tiles' partial results take about `n^2 / block * (n_classes + 2 k) * 8` bytes.
const TILE: usize = 256;
const MAX_BLOCKS: usize = 24;

/// Up to this many columns, pairwise distances are computed as `sqrt(sum (a - b)^2)`; above it,
/// through a matrix product.
pub const DIRECT_MAX_DIM: usize = 16;

// ---------------------------------------------------------------------------------------------
// CKA
// ---------------------------------------------------------------------------------------------

/// Linear CKA (Kornblith et al. 2019): `||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)` on
/// column-centred X, Y (equal to the centred-Gram HSIC ratio). Multiplies n x n Gram matrices or
/// d x d feature products, whichever is cheaper for the shapes.
///
/// Panics if the row counts differ. NaN if a side has no variance (all rows equal) or n < 2.
pub fn linear_cka(x: ArrayView2<f64>, y: ArrayView2<f64>) -> f64 {
    if x.nrows() < 2 {
        assert_eq!(x.nrows(), y.nrows(), "linear_cka: row counts differ");
        return f64::NAN;
    }
    cka_sums(x, y).biased()
}

/// Debiased linear CKA: the unbiased HSIC estimator (Song et al. 2012) on linear Gram matrices,
/// `HSIC_1(K, L) / sqrt(HSIC_1(K, K) HSIC_1(L, L))`.
///
/// Panics if the row counts differ. NaN if n < 4, or if an estimate in the denominator is not
/// positive (possible for tiny n or a side without variance).
pub fn linear_cka_debiased(x: ArrayView2<f64>, y: ArrayView2<f64>) -> f64 {
    if x.nrows() < 4 {
        assert_eq!(
            x.nrows(),
            y.nrows(),
            "linear_cka_debiased: row counts differ"
        );
        return f64::NAN;
    }
    cka_sums(x, y).debiased()
}

/// The sums both CKA forms need, on column-centred X and Y with K = Xc Xc^T, L = Yc Yc^T.
struct CkaSums {
    n: usize,
    /// tr(KL) = ||Yc^T Xc||_F^2
    kl: f64,
    /// tr(KK) = ||Xc^T Xc||_F^2
    kk: f64,
    /// tr(LL)
    ll: f64,
    /// diag(K) . diag(L), diag(K) . diag(K), diag(L) . diag(L)
    dkl: f64,
    dkk: f64,
    dll: f64,
    /// tr(K), tr(L)
    tk: f64,
    tl: f64,
}

impl CkaSums {
    fn biased(&self) -> f64 {
        self.kl / (self.kk * self.ll).sqrt()
    }

    /// n (n - 3) HSIC_1 for centred features. With K 1 = 0 and K~ = K - diag(K), the estimator
    /// `tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1` becomes
    /// `tr(KL) - n/(n-2) diag(K).diag(L) + tr(K) tr(L) / ((n-1)(n-2))`.
    fn hsic1(&self, kl: f64, dkl: f64, tk: f64, tl: f64) -> f64 {
        let n = self.n as f64;
        kl - n / (n - 2.0) * dkl + tk * tl / ((n - 1.0) * (n - 2.0))
    }

    fn debiased(&self) -> f64 {
        let xy = self.hsic1(self.kl, self.dkl, self.tk, self.tl);
        let xx = self.hsic1(self.kk, self.dkk, self.tk, self.tk);
        let yy = self.hsic1(self.ll, self.dll, self.tl, self.tl);
        let denom = xx * yy;
        if denom > 0.0 {
            xy / denom.sqrt()
        } else {
            f64::NAN
        }
    }
}

fn sum_squares(m: &Array2<f64>) -> f64 {
    m.iter().map(|v| v * v).sum()
}

fn cka_sums(x: ArrayView2<f64>, y: ArrayView2<f64>) -> CkaSums {
    assert_eq!(
        x.nrows(),
        y.nrows(),
        "CKA: row counts differ ({} and {})",
        x.nrows(),
        y.nrows()
    );
    let n = x.nrows();
    let (xc, yc) = rayon::join(|| centred(x), || centred(y));
    let (dx, dy) = (xc.ncols(), yc.ncols());
    let (rx, ry) = (row_sq_norms(&xc), row_sq_norms(&yc));

    // Multiply-adds: n^2 (dx + dy) for the Gram form, n (dx^2 + dy^2 + dx dy) for the feature one.
    let gram = n * (dx + dy) < dx * dx + dy * dy + dx * dy;
    let (kl, kk, ll) = if gram {
        let (k, l) = rayon::join(|| xc.dot(&xc.t()), || yc.dot(&yc.t()));
        let kl: f64 = Zip::from(&k).and(&l).fold(0.0, |acc, a, b| acc + a * b);
        (kl, sum_squares(&k), sum_squares(&l))
    } else {
        let (ytx, (xtx, yty)) = rayon::join(
            || yc.t().dot(&xc),
            || rayon::join(|| xc.t().dot(&xc), || yc.t().dot(&yc)),
        );
        (sum_squares(&ytx), sum_squares(&xtx), sum_squares(&yty))
    };
    CkaSums {
        n,
        kl,
        kk,
        ll,
        dkl: rx.dot(&ry),
        dkk: rx.dot(&rx),
        dll: ry.dot(&ry),
        tk: rx.sum(),
        tl: ry.sum(),
    }
}

// ---------------------------------------------------------------------------------------------
// Row cosine, centroids
// ---------------------------------------------------------------------------------------------

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

fn euclidean(a: ndarray::ArrayView1<f64>, b: ndarray::ArrayView1<f64>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(p, q)| (p - q) * (p - q))
        .sum::<f64>()
        .sqrt()
}

// ---------------------------------------------------------------------------------------------
// Pairwise-distance metrics
// ---------------------------------------------------------------------------------------------

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

/// Per-row results of the pairwise pass.
struct Pass {
    /// `n x n_classes`: row i, column c = sum of distances from i to the other members of c.
    class_sums: Vec<f64>,
    /// Number of rows the k-NN vote classified correctly (when k was given).
    knn_correct: usize,
    n: usize,
}

impl Pass {
    fn knn_accuracy(&self) -> f64 {
        self.knn_correct as f64 / self.n as f64
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

/// One parallel pass over the pairwise distances: per-row class sums, and the leave-one-out
/// k-NN vote when `k` is given.
///
/// The rows are cut into blocks (of [`TILE`] rows, at most [`MAX_BLOCKS`] blocks); each tile
/// (I, J) with I <= J of the distance matrix is computed once and gives, for the rows of I and
/// (when I < J) of J, their class sums and their k nearest points within the other block. A row
/// then adds its partial sums and merges its candidates over J = 0, 1, ... in order. Nothing
/// depends on which thread did what.
fn pairwise_pass(x: ArrayView2<f64>, labels: &[usize], n_classes: usize, k: Option<usize>) -> Pass {
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

// ---------------------------------------------------------------------------------------------
// One layer of `heal drift`
// ---------------------------------------------------------------------------------------------

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
