//! 2-D t-SNE maps for `heal tsne`: PCA to [`TsneParams::pca_dims`] dimensions with linfa, then
//! t-SNE to two dimensions with one of two engines.
//!
//! * [`Engine::Heal`] (the default) is heal's own Barnes-Hut t-SNE (van der Maaten, "Accelerating
//!   t-SNE using tree-based algorithms", JMLR 2014), with the optimiser settings of
//!   scikit-learn's `TSNE(method="barnes_hut")`:
//!   - exact nearest neighbours, k = min(n - 1, floor(3 * perplexity + 1)) (scikit-learn's
//!     count: 91 at perplexity 30), by brute-force squared
//!     Euclidean distances on the (PCA-reduced) input;
//!   - per point, a binary search for the Gaussian precision whose conditional distribution over
//!     those k neighbours has the requested perplexity (entropy tolerance 1e-5 nats);
//!   - symmetric joint probabilities P_ij = (p_j|i + p_i|j) / 2n, kept sparse;
//!   - gradient 4 * sum_j (a * P_ij - q_ij) (1 + |y_i - y_j|^2)^-1 (y_i - y_j), where `a` is the
//!     early exaggeration during the first [`TsneParams::exaggeration_iterations`] iterations
//!     and 1 after; the repulsive half comes from a Barnes-Hut quadtree (a cell of side `w`
//!     stands for its points when `w / d < theta`), evaluated per leaf of up to 16 points: `d` is
//!     the smallest distance from the leaf's bounding box to the cell's centre of mass, so every
//!     summary used also passes scikit-learn's per-point test at the same theta (the walk is
//!     stricter, not looser); `theta = 0` switches to the exact O(n^2) repulsion;
//!   - gradient descent with momentum 0.5 during the exaggeration phase and 0.8 after, and
//!     per-coordinate gains (+0.2 when the gradient changes sign against the last step, *0.8
//!     otherwise, at least 0.01); the step and the gains start afresh when the phase changes, as
//!     in scikit-learn;
//!   - learning rate [`LearningRate::Auto`] = max(n / early_exaggeration / 4, 50), which is
//!     scikit-learn's `learning_rate="auto"` for the same gradient scale;
//!   - initialisation [`Init::Pca`]: the first two principal components of the t-SNE input,
//!     scaled so that the first column has standard deviation 1e-4 (scikit-learn's
//!     `init="pca"`), or [`Init::Random`]: N(0, 1e-4^2) from the seed.
//!
//!   Every iteration runs all the way (no early stop on a small gradient). The result is
//!   bit-for-bit the same for the same input and parameters, whatever the number of rayon
//!   threads: each point's forces are computed on their own and all sums over points run in a
//!   fixed order.
//!
//! * [`Engine::Linfa`] runs linfa-tsne (which wraps the `bhtsne` crate). That code fixes the
//!   learning rate at 200 on a gradient without the factor 4 (about 800 in scikit-learn's
//!   units), the early exaggeration at 12 and the initialisation at N(0, 1e-6^2) from the
//!   seed, normalises the input to [-1, 1], and runs on one thread. [`LearningRate::Auto`]
//!   means its 200 there; any other learning rate, and an early exaggeration other than 12, is
//!   an error; [`TsneParams::init`] is ignored. Its maps are not always reproducible: bhtsne's
//!   vantage-point tree (its neighbour search) picks pivots with `rand::thread_rng`, and two
//!   runs with the same seed can differ (with theta = 0 it builds no tree).

use crate::error::user;
use anyhow::{Context, Result};
use linfa::traits::{Fit, Predict, Transformer};
use linfa::DatasetBase;
use linfa_reduction::Pca;
use ndarray::{Array2, ArrayView2};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

/// Which t-SNE implementation runs after the PCA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Engine {
    /// heal's own multi-threaded Barnes-Hut t-SNE.
    #[default]
    Heal,
    /// linfa-tsne (bhtsne): learning rate fixed at 200, one thread.
    Linfa,
}

impl Engine {
    pub fn parse(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "heal" => Ok(Engine::Heal),
            "linfa" => Ok(Engine::Linfa),
            _ => Err(user(format!(
                "t-SNE engine {text:?} is not known; use heal or linfa"
            ))),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Heal => "heal",
            Engine::Linfa => "linfa",
        })
    }
}

impl FromStr for Engine {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Engine::parse(s)
    }
}

crate::string_serde!(Engine);

/// The gradient-descent step size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum LearningRate {
    /// max(n / early_exaggeration / 4, 50), as scikit-learn's `learning_rate="auto"`; 200 for
    /// [`Engine::Linfa`].
    #[default]
    Auto,
    Fixed(f64),
}

impl LearningRate {
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("auto") {
            return Ok(LearningRate::Auto);
        }
        match t.parse::<f64>() {
            Ok(x) if x > 0.0 && x.is_finite() => Ok(LearningRate::Fixed(x)),
            _ => Err(user(format!(
                "t-SNE learning rate {text:?}: use auto or a number above 0"
            ))),
        }
    }

    /// The step size for `n` points.
    pub fn resolve(&self, n: usize, early_exaggeration: f64) -> f64 {
        match *self {
            LearningRate::Auto => (n as f64 / early_exaggeration / 4.0).max(50.0),
            LearningRate::Fixed(x) => x,
        }
    }
}

impl fmt::Display for LearningRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LearningRate::Auto => f.write_str("auto"),
            LearningRate::Fixed(x) => write!(f, "{x}"),
        }
    }
}

impl FromStr for LearningRate {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        LearningRate::parse(s)
    }
}

crate::string_serde!(LearningRate);

/// Where the 2-D points start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Init {
    /// The first two principal components, scaled to a standard deviation of 1e-4 in the first.
    #[default]
    Pca,
    /// N(0, 1e-4^2) from the seed.
    Random,
}

impl Init {
    pub fn parse(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "pca" => Ok(Init::Pca),
            "random" => Ok(Init::Random),
            _ => Err(user(format!(
                "t-SNE initialisation {text:?} is not known; use pca or random"
            ))),
        }
    }
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Init::Pca => "pca",
            Init::Random => "random",
        })
    }
}

impl FromStr for Init {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Init::parse(s)
    }
}

crate::string_serde!(Init);

/// Everything that decides a t-SNE map. The defaults are scikit-learn's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TsneParams {
    /// Effective number of neighbours; must be below (n - 1) / 3.
    pub perplexity: f64,
    /// Total gradient-descent iterations, the exaggeration phase included.
    pub iterations: usize,
    pub learning_rate: LearningRate,
    /// Used by [`Init::Random`] and by [`Engine::Linfa`]; the heal engine with [`Init::Pca`]
    /// draws no random numbers.
    pub seed: u64,
    /// Barnes-Hut accuracy: 0 is exact (O(n^2) per iteration), larger is faster and rougher.
    pub theta: f64,
    pub early_exaggeration: f64,
    pub exaggeration_iterations: usize,
    /// PCA to this many dimensions first; skipped when the input has this many columns or
    /// fewer, or when 0.
    pub pca_dims: usize,
    pub init: Init,
    pub engine: Engine,
}

impl Default for TsneParams {
    fn default() -> Self {
        TsneParams {
            perplexity: 30.0,
            iterations: 1000,
            learning_rate: LearningRate::Auto,
            seed: 0,
            theta: 0.5,
            early_exaggeration: 12.0,
            exaggeration_iterations: 250,
            pca_dims: 50,
            init: Init::Pca,
            engine: Engine::Heal,
        }
    }
}

/// The largest "round" perplexity that `n` points allow, for error messages.
fn suggested_perplexity(n: usize) -> String {
    let bound = (n as f64 - 1.0) / 3.0;
    if bound > 2.0 {
        format!("{}", bound.ceil() - 1.0)
    } else {
        format!("{:.2}", (bound * 0.9 * 100.0).floor() / 100.0)
    }
}

/// Checks the parameters against an input of `n` rows.
fn validate_params(n: usize, params: &TsneParams) -> Result<()> {
    if n < 4 {
        return Err(user(format!("t-SNE needs at least 4 points; got {n}")));
    }
    let p = params.perplexity;
    if !(p > 0.0 && p.is_finite()) {
        return Err(user(format!(
            "t-SNE perplexity {p} must be a number above 0 (30 is usual)"
        )));
    }
    let bound = (n as f64 - 1.0) / 3.0;
    if p >= bound {
        return Err(user(format!(
            "t-SNE perplexity {p} is too large for {n} points: it must be below (n - 1) / 3 = {bound:.2}; try perplexity {}",
            suggested_perplexity(n)
        )));
    }
    if !(params.theta >= 0.0 && params.theta.is_finite()) {
        return Err(user(format!(
            "t-SNE theta {} must be 0 (exact) or more (0.5 is usual)",
            params.theta
        )));
    }
    let ee = params.early_exaggeration;
    if !(ee > 0.0 && ee.is_finite()) {
        return Err(user(format!(
            "t-SNE early exaggeration {ee} must be a number above 0 (12 is usual)"
        )));
    }
    if let LearningRate::Fixed(x) = params.learning_rate {
        if !(x > 0.0 && x.is_finite()) {
            return Err(user(format!(
                "t-SNE learning rate {x} must be auto or a number above 0"
            )));
        }
    }
    if params.engine == Engine::Linfa {
        match params.learning_rate {
            LearningRate::Auto => {}
            LearningRate::Fixed(200.0) => {}
            LearningRate::Fixed(x) => {
                return Err(user(format!(
                    "t-SNE learning rate {x}: the linfa engine fixes it at 200; use learning rate auto or 200, or the heal engine"
                )))
            }
        }
        if ee != 12.0 {
            return Err(user(format!(
                "t-SNE early exaggeration {ee}: the linfa engine fixes it at 12; use 12 or the heal engine"
            )));
        }
    }
    Ok(())
}

fn check_finite(x: ArrayView2<f64>, what: &str) -> Result<()> {
    if let Some(((r, c), v)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(user(format!(
            "{what} input has a non-finite value ({v}) at row {r}, column {c}; remove or fix that row"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// PCA
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/// PCA to `params.pca_dims` (skipped when the input already has that many columns or fewer),
/// then t-SNE to 2-D. Returns an n x 2 array.
///
/// Validates: n >= 4 rows, 0 < perplexity < (n - 1) / 3, finite input, and the engine's limits
/// (see the module documentation). Errors in the input or parameters are user errors.
pub fn embed_2d(x: ArrayView2<f64>, params: &TsneParams) -> Result<Array2<f64>> {
    embed_2d_with_progress(x, params, &mut |_| {})
}

/// [`embed_2d`] that calls `progress(i)` after iteration i (1 to `iterations`) of the heal
/// engine, for a progress bar. The linfa engine reports only once, `progress(iterations)`, at
/// the end.
pub fn embed_2d_with_progress(
    x: ArrayView2<f64>,
    params: &TsneParams,
    progress: &mut dyn FnMut(usize),
) -> Result<Array2<f64>> {
    let (n, m) = x.dim();
    validate_params(n, params)?;
    if m == 0 {
        return Err(user("t-SNE input has no columns"));
    }
    check_finite(x, "t-SNE")?;
    let reduced_by_pca = params.pca_dims > 0 && m > params.pca_dims;
    let data = if reduced_by_pca {
        pca(x, params.pca_dims)?
    } else {
        x.as_standard_layout().into_owned()
    };
    match params.engine {
        Engine::Heal => {
            let init = initial_layout(data.view(), reduced_by_pca, params)?;
            let p = affinities_unchecked(data.view(), params.perplexity);
            drop(data);
            let y = optimise(&p, init, params, progress);
            if y.iter().flatten().any(|v| !v.is_finite()) {
                return Err(user(format!(
                    "t-SNE diverged (the map has non-finite coordinates) with learning rate {}; use a smaller learning rate or auto",
                    params.learning_rate
                )));
            }
            Ok(to_array(&y))
        }
        Engine::Linfa => {
            if data.ncols() < 2 {
                return Err(user(
                    "the linfa t-SNE engine needs at least 2 input columns; use the heal engine",
                ));
            }
            let prelim = params.exaggeration_iterations.min(params.iterations);
            let out = linfa_tsne::TSneParams::embedding_size_with_rng(
                2,
                SmallRng::seed_from_u64(params.seed),
            )
            .perplexity(params.perplexity)
            .approx_threshold(params.theta)
            .max_iter(params.iterations)
            .preliminary_iter(prelim)
            .transform(data)
            .map_err(|e| anyhow::anyhow!("linfa-tsne: {e}"))?;
            progress(params.iterations);
            Ok(out)
        }
    }
}

fn to_array(y: &[[f64; 2]]) -> Array2<f64> {
    Array2::from_shape_fn((y.len(), 2), |(i, c)| y[i][c])
}

fn from_array(y: ArrayView2<f64>) -> Vec<[f64; 2]> {
    assert_eq!(y.ncols(), 2, "expected an n x 2 layout");
    y.outer_iter().map(|r| [r[0], r[1]]).collect()
}

/// The starting layout for the heal engine.
fn initial_layout(
    data: ArrayView2<f64>,
    first_columns_are_pcs: bool,
    params: &TsneParams,
) -> Result<Vec<[f64; 2]>> {
    let n = data.nrows();
    if params.init == Init::Pca && data.ncols() >= 2 {
        let pcs = if first_columns_are_pcs {
            data.slice(ndarray::s![.., ..2]).to_owned()
        } else {
            pca(data, 2)?
        };
        let col0 = pcs.column(0);
        let mean = col0.sum() / n as f64;
        let var = col0.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        let std = var.sqrt();
        if std > 0.0 && std.is_finite() {
            let scale = 1e-4 / std;
            return Ok(pcs
                .outer_iter()
                .map(|r| [r[0] * scale, r[1] * scale])
                .collect());
        }
        // All points equal along every direction: nothing to start from; fall through.
    }
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    Ok((0..n)
        .map(|_| {
            let a: f64 = StandardNormal.sample(&mut rng);
            let b: f64 = StandardNormal.sample(&mut rng);
            [1e-4 * a, 1e-4 * b]
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Input similarities
// ---------------------------------------------------------------------------------------------

/// The symmetric joint probabilities P of the t-SNE input, sparse (compressed rows): row i holds
/// the points j with P_ij > 0, columns ascending. The entries sum to 1 (up to rounding).
#[derive(Clone, Debug)]
pub struct Affinities {
    row_start: Vec<usize>,
    cols: Vec<u32>,
    vals: Vec<f64>,
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

fn affinities_unchecked(x: ArrayView2<f64>, perplexity: f64) -> Affinities {
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

/// The k nearest neighbours of every row (not itself), by squared Euclidean distance, nearest
/// first; ties go to the lower index.
fn nearest_neighbours(x: &[f64], n: usize, d: usize, k: usize) -> (Vec<u32>, Vec<f64>) {
    let mut idx = vec![0u32; n * k];
    let mut dist = vec![0.0f64; n * k];
    let order = |a: &(f64, u32), b: &(f64, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    idx.par_chunks_mut(k)
        .zip(dist.par_chunks_mut(k))
        .enumerate()
        .for_each_init(
            || Vec::with_capacity(n),
            |buf: &mut Vec<(f64, u32)>, (i, (idx_row, dist_row))| {
                buf.clear();
                let xi = &x[i * d..(i + 1) * d];
                for j in 0..n {
                    if j != i {
                        buf.push((squared_distance(xi, &x[j * d..(j + 1) * d]), j as u32));
                    }
                }
                if k < buf.len() {
                    buf.select_nth_unstable_by(k - 1, order);
                }
                let nearest = &mut buf[..k];
                nearest.sort_unstable_by(order);
                for (t, &(d2, j)) in nearest.iter().enumerate() {
                    idx_row[t] = j;
                    dist_row[t] = d2;
                }
            },
        );
    (idx, dist)
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

// ---------------------------------------------------------------------------------------------
// Repulsive forces
// ---------------------------------------------------------------------------------------------

/// Points per leaf. Each leaf is also the group that shares one interaction list.
const LEAF_CAPACITY: usize = 16;
/// Cells stop splitting here (only coincident points get this deep).
const MAX_DEPTH: usize = 40;

#[derive(Clone, Copy, Debug)]
struct Node {
    /// Centre of mass of the points under the node.
    com: [f64; 2],
    mass: f64,
    /// Side of the (square) cell squared.
    width2: f64,
    /// Index of the first node after this subtree (nodes are in depth-first order, so node `a`
    /// is an ancestor of node `b` exactly when `a < b < nodes[a].skip`).
    skip: u32,
    /// Leaf: its points are at tree positions `start..start + len`; `len == 0` for inner nodes.
    start: u32,
    len: u32,
}

/// A quadtree in one flat vector, depth-first, so that a walk is a forward scan with jumps over
/// summarised subtrees. Rebuilt every iteration into the same buffers.
///
/// Repulsion is computed per leaf rather than per point: one walk per leaf collects the cells
/// that may stand for their points as seen from anywhere in the leaf's bounding box (side `w`,
/// smallest distance `d` from the box to the cell's centre of mass, `w < theta * d`, never an
/// ancestor of the leaf) and the points of the other leaves it has to visit; then every point of
/// the leaf sums over that list. The criterion holds for every point in the leaf, so each
/// summary also passes the per-point Barnes-Hut test with the same theta.
#[derive(Default)]
struct QuadTree {
    nodes: Vec<Node>,
    /// Node index of every leaf, in depth-first order (so their point ranges follow each other).
    leaves: Vec<u32>,
    /// Bounding box of each leaf's points: [x_lo, y_lo, x_hi, y_hi].
    leaf_boxes: Vec<[f64; 4]>,
    /// Point indices in tree order.
    order: Vec<u32>,
    /// Their coordinates, in the same order.
    xs: Vec<f64>,
    ys: Vec<f64>,
    scratch: Vec<u32>,
    /// Per tree position: (force, z), before scattering back to point order.
    sorted_out: Vec<([f64; 2], f64)>,
}

/// A leaf's interaction list, as structure of arrays.
#[derive(Default)]
struct InteractionList {
    xs: Vec<f64>,
    ys: Vec<f64>,
    ms: Vec<f64>,
}

impl InteractionList {
    fn clear(&mut self) {
        self.xs.clear();
        self.ys.clear();
        self.ms.clear();
    }

    fn push(&mut self, x: f64, y: f64, m: f64) {
        self.xs.push(x);
        self.ys.push(y);
        self.ms.push(m);
    }
}

/// sum_k m_k q_k^2 (p - c_k) and sum_k m_k q_k, q_k = 1 / (1 + |p - c_k|^2), in four fixed
/// lanes (vectorisable, and the same result on every run).
fn accumulate(p: [f64; 2], xs: &[f64], ys: &[f64], ms: &[f64]) -> ([f64; 2], f64) {
    let mut fx = [0.0f64; 4];
    let mut fy = [0.0f64; 4];
    let mut z = [0.0f64; 4];
    let cx = xs.chunks_exact(4);
    let cy = ys.chunks_exact(4);
    let cm = ms.chunks_exact(4);
    let (rx, ry, rm) = (cx.remainder(), cy.remainder(), cm.remainder());
    for ((x, y), m) in cx.zip(cy).zip(cm) {
        for l in 0..4 {
            let dx = p[0] - x[l];
            let dy = p[1] - y[l];
            let q = 1.0 / (1.0 + dx * dx + dy * dy);
            let mq = m[l] * q;
            z[l] += mq;
            fx[l] += mq * q * dx;
            fy[l] += mq * q * dy;
        }
    }
    for ((x, y), m) in rx.iter().zip(ry).zip(rm) {
        let dx = p[0] - x;
        let dy = p[1] - y;
        let q = 1.0 / (1.0 + dx * dx + dy * dy);
        let mq = m * q;
        z[0] += mq;
        fx[0] += mq * q * dx;
        fy[0] += mq * q * dy;
    }
    let sum = |a: [f64; 4]| (a[0] + a[1]) + (a[2] + a[3]);
    ([sum(fx), sum(fy)], sum(z))
}

impl QuadTree {
    fn build(&mut self, y: &[[f64; 2]]) {
        let n = y.len();
        self.nodes.clear();
        self.leaves.clear();
        self.leaf_boxes.clear();
        self.order.clear();
        self.order.extend(0..n as u32);
        self.scratch.resize(n, 0);
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for p in y {
            for c in 0..2 {
                lo[c] = lo[c].min(p[c]);
                hi[c] = hi[c].max(p[c]);
            }
        }
        let centre = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0];
        let extent = (hi[0] - lo[0]).max(hi[1] - lo[1]);
        // A hair larger than the bounding box so that every point is inside.
        let half = extent / 2.0 * (1.0 + 1e-9) + f64::MIN_POSITIVE;
        self.build_node(y, 0, n, centre, half, 0);
        self.xs.clear();
        self.ys.clear();
        for &i in &self.order {
            self.xs.push(y[i as usize][0]);
            self.ys.push(y[i as usize][1]);
        }
        for &l in &self.leaves {
            let nd = self.nodes[l as usize];
            let r = nd.start as usize..(nd.start + nd.len) as usize;
            let (mut b_lo, mut b_hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
            for (x, yy) in self.xs[r.clone()].iter().zip(&self.ys[r]) {
                b_lo = [b_lo[0].min(*x), b_lo[1].min(*yy)];
                b_hi = [b_hi[0].max(*x), b_hi[1].max(*yy)];
            }
            self.leaf_boxes.push([b_lo[0], b_lo[1], b_hi[0], b_hi[1]]);
        }
    }

    fn build_node(
        &mut self,
        y: &[[f64; 2]],
        lo: usize,
        hi: usize,
        centre: [f64; 2],
        half: f64,
        depth: usize,
    ) {
        let id = self.nodes.len();
        let (mut sx, mut sy) = (0.0, 0.0);
        for &i in &self.order[lo..hi] {
            sx += y[i as usize][0];
            sy += y[i as usize][1];
        }
        let mass = (hi - lo) as f64;
        self.nodes.push(Node {
            com: [sx / mass, sy / mass],
            mass,
            width2: 4.0 * half * half,
            skip: 0,
            start: lo as u32,
            len: 0,
        });
        if hi - lo <= LEAF_CAPACITY || depth >= MAX_DEPTH {
            self.nodes[id].len = (hi - lo) as u32;
            self.leaves.push(id as u32);
        } else {
            // Counting sort of the points into the four quadrants.
            let quadrant = |p: [f64; 2]| -> usize {
                (p[0] >= centre[0]) as usize | (((p[1] >= centre[1]) as usize) << 1)
            };
            let mut counts = [0usize; 4];
            for &i in &self.order[lo..hi] {
                counts[quadrant(y[i as usize])] += 1;
            }
            let mut starts = [lo; 4];
            for q in 1..4 {
                starts[q] = starts[q - 1] + counts[q - 1];
            }
            let mut fill = starts;
            for t in lo..hi {
                let i = self.order[t];
                let q = quadrant(y[i as usize]);
                self.scratch[fill[q]] = i;
                fill[q] += 1;
            }
            self.order[lo..hi].copy_from_slice(&self.scratch[lo..hi]);
            let h = half / 2.0;
            for q in 0..4 {
                if counts[q] == 0 {
                    continue;
                }
                let c = [
                    centre[0] + if q & 1 == 1 { h } else { -h },
                    centre[1] + if q & 2 == 2 { h } else { -h },
                ];
                self.build_node(y, starts[q], starts[q] + counts[q], c, h, depth + 1);
            }
        }
        self.nodes[id].skip = self.nodes.len() as u32;
    }

    /// The interaction list of leaf number `k` (other than its own points).
    fn interactions(&self, k: usize, theta2: f64, list: &mut InteractionList) {
        list.clear();
        let own = self.leaves[k] as usize;
        let b = self.leaf_boxes[k];
        let nodes = &self.nodes[..];
        let mut at = 0usize;
        while at < nodes.len() {
            let nd = &nodes[at];
            if at <= own && own < nd.skip as usize {
                // The leaf itself (its points are handled apart) or one of its ancestors.
                at = if at == own { nd.skip as usize } else { at + 1 };
                continue;
            }
            let ex = (b[0] - nd.com[0]).max(nd.com[0] - b[2]).max(0.0);
            let ey = (b[1] - nd.com[1]).max(nd.com[1] - b[3]).max(0.0);
            if nd.width2 < theta2 * (ex * ex + ey * ey) {
                list.push(nd.com[0], nd.com[1], nd.mass);
                at = nd.skip as usize;
            } else if nd.len > 0 {
                let r = nd.start as usize..(nd.start + nd.len) as usize;
                list.xs.extend_from_slice(&self.xs[r.clone()]);
                list.ys.extend_from_slice(&self.ys[r.clone()]);
                list.ms.extend(r.map(|_| 1.0));
                at = nd.skip as usize;
            } else {
                at += 1;
            }
        }
    }

    /// Unnormalised repulsion of every point, in point order: (sum_j q_ij^2 (y_i - y_j),
    /// sum_j q_ij) over j != i.
    fn repulse_all(&mut self, theta: f64, out: &mut [([f64; 2], f64)]) {
        let theta2 = theta * theta;
        let n = self.order.len();
        let mut sorted_out = std::mem::take(&mut self.sorted_out);
        sorted_out.clear();
        sorted_out.resize(n, ([0.0; 2], 0.0));
        {
            // One output slice per leaf (leaves cover the tree positions in order).
            let mut pieces = Vec::with_capacity(self.leaves.len());
            let mut rest = &mut sorted_out[..];
            for &l in &self.leaves {
                let (head, tail) = rest.split_at_mut(self.nodes[l as usize].len as usize);
                pieces.push(head);
                rest = tail;
            }
            let tree = &*self;
            pieces.into_par_iter().enumerate().for_each_init(
                InteractionList::default,
                |list, (k, piece)| {
                    tree.interactions(k, theta2, list);
                    let nd = tree.nodes[tree.leaves[k] as usize];
                    let s = nd.start as usize;
                    let e = s + nd.len as usize;
                    let (own_x, own_y) = (&tree.xs[s..e], &tree.ys[s..e]);
                    for (t, slot) in piece.iter_mut().enumerate() {
                        let p = [own_x[t], own_y[t]];
                        let (mut f, mut z) = accumulate(p, &list.xs, &list.ys, &list.ms);
                        for (u, (x, y)) in own_x.iter().zip(own_y).enumerate() {
                            if u != t {
                                let dx = p[0] - x;
                                let dy = p[1] - y;
                                let q = 1.0 / (1.0 + dx * dx + dy * dy);
                                z += q;
                                f[0] += q * q * dx;
                                f[1] += q * q * dy;
                            }
                        }
                        *slot = (f, z);
                    }
                },
            );
        }
        for (t, &i) in self.order.iter().enumerate() {
            out[i as usize] = sorted_out[t];
        }
        self.sorted_out = sorted_out;
    }
}

/// Exact repulsion of point i: (sum_j q_ij^2 (y_i - y_j), sum_j q_ij) over j != i.
fn repulse_exact(i: usize, y: &[[f64; 2]]) -> ([f64; 2], f64) {
    let yi = y[i];
    let (mut fx, mut fy, mut z) = (0.0, 0.0, 0.0);
    for (j, p) in y.iter().enumerate() {
        if j != i {
            let dx = yi[0] - p[0];
            let dy = yi[1] - p[1];
            let q = 1.0 / (1.0 + dx * dx + dy * dy);
            z += q;
            fx += q * q * dx;
            fy += q * q * dy;
        }
    }
    ([fx, fy], z)
}

/// The normalised repulsive forces of a layout `y` (n x 2): row i is
/// sum_j q_ij^2 (y_i - y_j) / Z with the unnormalised kernel q_ij = 1 / (1 + |y_i - y_j|^2)
/// and Z = sum_{i != j} q_ij. Barnes-Hut with `theta` > 0, exact with `theta` == 0. Returns the
/// forces and Z. For tests and diagnostics; the optimiser uses the same code.
pub fn repulsive_forces(y: ArrayView2<f64>, theta: f64) -> (Array2<f64>, f64) {
    let pts = from_array(y);
    let mut tree = QuadTree::default();
    let mut out = vec![([0.0; 2], 0.0); pts.len()];
    repulsion_into(&pts, theta, &mut tree, &mut out);
    let z: f64 = out.iter().map(|o| o.1).sum();
    let forces = Array2::from_shape_fn((pts.len(), 2), |(i, c)| out[i].0[c] / z);
    (forces, z)
}

fn repulsion_into(y: &[[f64; 2]], theta: f64, tree: &mut QuadTree, out: &mut [([f64; 2], f64)]) {
    if theta == 0.0 {
        out.par_iter_mut()
            .enumerate()
            .with_min_len(16)
            .for_each(|(i, o)| *o = repulse_exact(i, y));
    } else {
        tree.build(y);
        tree.repulse_all(theta, out);
    }
}

/// KL(P || Q) of a layout, with the exact Q (O(n^2)); `y` is n x 2.
pub fn kl_divergence(p: &Affinities, y: ArrayView2<f64>) -> f64 {
    let pts = from_array(y);
    assert_eq!(pts.len(), p.n(), "layout and affinities differ in size");
    let zs: Vec<f64> = (0..pts.len())
        .into_par_iter()
        .with_min_len(16)
        .map(|i| repulse_exact(i, &pts).1)
        .collect();
    let z: f64 = zs.iter().sum();
    let rows: Vec<f64> = (0..pts.len())
        .into_par_iter()
        .with_min_len(64)
        .map(|i| {
            let yi = pts[i];
            p.row(i)
                .filter(|&(_, v)| v > 0.0)
                .map(|(j, v)| {
                    let dx = yi[0] - pts[j][0];
                    let dy = yi[1] - pts[j][1];
                    let q = 1.0 / (1.0 + dx * dx + dy * dy) / z;
                    v * (v / q.max(f64::MIN_POSITIVE)).ln()
                })
                .sum::<f64>()
        })
        .collect();
    rows.iter().sum()
}

// ---------------------------------------------------------------------------------------------
// Optimiser
// ---------------------------------------------------------------------------------------------

/// Runs the heal engine's gradient descent from `y`.
fn optimise(
    p: &Affinities,
    mut y: Vec<[f64; 2]>,
    params: &TsneParams,
    progress: &mut dyn FnMut(usize),
) -> Vec<[f64; 2]> {
    let n = y.len();
    let lr = params.learning_rate.resolve(n, params.early_exaggeration);
    let mut tree = QuadTree::default();
    let mut attract = vec![[0.0f64; 2]; n];
    let mut repel = vec![([0.0f64; 2], 0.0f64); n];
    let mut update = vec![[0.0f64; 2]; n];
    let mut gains = vec![[1.0f64; 2]; n];
    for it in 0..params.iterations {
        let exploring = it < params.exaggeration_iterations;
        if it == params.exaggeration_iterations && it > 0 {
            // scikit-learn starts its second descent with a fresh step and gains.
            update.iter_mut().for_each(|u| *u = [0.0; 2]);
            gains.iter_mut().for_each(|g| *g = [1.0; 2]);
        }
        let (momentum, exaggeration) = if exploring {
            (0.5, params.early_exaggeration)
        } else {
            (0.8, 1.0)
        };
        // Attraction: sum_j P_ij q_ij (y_i - y_j), per point.
        {
            let yv = &y[..];
            attract
                .par_iter_mut()
                .enumerate()
                .with_min_len(64)
                .for_each(|(i, a)| {
                    let yi = yv[i];
                    let (mut ax, mut ay) = (0.0, 0.0);
                    let r = p.row_start[i]..p.row_start[i + 1];
                    for (&j, &v) in p.cols[r.clone()].iter().zip(&p.vals[r]) {
                        let yj = yv[j as usize];
                        let dx = yi[0] - yj[0];
                        let dy = yi[1] - yj[1];
                        let w = v / (1.0 + dx * dx + dy * dy);
                        ax += w * dx;
                        ay += w * dy;
                    }
                    *a = [ax, ay];
                });
        }
        repulsion_into(&y, params.theta, &mut tree, &mut repel);
        // Z in index order, whatever the threads did.
        let z: f64 = repel.iter().map(|r| r.1).sum();
        let inv_z = 1.0 / z;
        for i in 0..n {
            for c in 0..2 {
                let g = 4.0 * (exaggeration * attract[i][c] - repel[i].0[c] * inv_z);
                let u = update[i][c];
                let gain = if u * g < 0.0 {
                    gains[i][c] + 0.2
                } else {
                    gains[i][c] * 0.8
                };
                let gain = gain.max(0.01);
                gains[i][c] = gain;
                let u = momentum * u - lr * gain * g;
                update[i][c] = u;
                y[i][c] += u;
            }
        }
        progress(it + 1);
    }
    y
}

/// Runs the heal engine's optimiser on given affinities from a given n x 2 layout (for tests
/// and experiments: no PCA, no validation beyond sizes).
pub fn optimise_layout(p: &Affinities, init: ArrayView2<f64>, params: &TsneParams) -> Array2<f64> {
    let y = from_array(init);
    assert_eq!(y.len(), p.n(), "layout and affinities differ in size");
    to_array(&optimise(p, y, params, &mut |_| {}))
}
