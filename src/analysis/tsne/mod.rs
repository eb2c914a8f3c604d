//! 2-D t-SNE maps for `heal tsne`: PCA to [`TsneParams::pca_dims`] dimensions with linfa, then
//! t-SNE to two dimensions with one of two engines.
//!
//! * [`Engine::Heal`] (the default) is heal's own Barnes-Hut t-SNE (van der Maaten, "Accelerating
//!   t-SNE using tree-based algorithms", JMLR 2014), with the optimiser settings of
//!   scikit-learn's `TSNE(method="barnes_hut")`:
//!   - exact nearest neighbours, k = min(n - 1, floor(3 * perplexity + 1)) (scikit-learn's
//!     count: 91 at perplexity 30), by squared Euclidean distances on the (PCA-reduced) input,
//!     screened in blocked f32 matrix products and checked in f64 (`knn.rs`);
//!   - per point, a binary search for the Gaussian precision whose conditional distribution over
//!     those k neighbours has the requested perplexity (entropy tolerance 1e-5 nats);
//!   - symmetric joint probabilities P_ij = (p_j|i + p_i|j) / 2n, kept sparse;
//!   - gradient 4 * sum_j (a * P_ij - q_ij) (1 + |y_i - y_j|^2)^-1 (y_i - y_j), where `a` is the
//!     early exaggeration during the first [`TsneParams::exaggeration_iterations`] iterations
//!     and 1 after; the repulsive half comes, by [`Method`], from a Barnes-Hut quadtree (a cell of side `w`
//!     stands for its points when `w / d < theta`), evaluated per leaf of up to 16 points: `d` is
//!     the smallest distance from the leaf's bounding box to the cell's centre of mass, so every
//!     summary used also passes scikit-learn's per-point test at the same theta (the walk is
//!     stricter, not looser); `theta = 0` switches to the exact O(n^2) repulsion; from
//!     [`FFT_FROM`] points the FFT method interpolates it on a grid in O(n) (`fft.rs`,
//!     FIt-SNE's method; openTSNE switches at 10,000, heal's Barnes-Hut stays faster longer);
//!   - gradient descent with momentum 0.5 during the exaggeration phase and 0.8 after, and
//!     per-coordinate gains (+0.2 when the gradient changes sign against the last step, *0.8
//!     otherwise, at least 0.01); the step and the gains start afresh when the phase changes, as
//!     in scikit-learn;
//!   - learning rate [`LearningRate::Auto`] = max(n / early_exaggeration / 4, 50), which is
//!     scikit-learn's `learning_rate="auto"` for the same gradient scale;
//!   - with the FFT method, openTSNE's optimiser instead, because its maps are large and need
//!     its larger second-phase step to unfold: momentum 0.8 in both phases, learning rate
//!     n / exaggeration / 4 per phase (openTSNE's n / exaggeration without the factor 4),
//!     gains +0.2 or *0.8 + 0.01 kept across the phases, and each point's step clipped to 5;
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

mod affinities;
mod fft;
pub mod figure;
mod kernel;
mod knn;
mod optimise;
mod params;
mod pca;
mod tree;

pub use affinities::{affinities, neighbour_count, Affinities};
pub use fft::repulsive_forces_fft;
pub use optimise::{kl_divergence, optimise_layout};
pub use params::{Engine, Init, LearningRate, Method, TsneParams, FFT_FROM};
pub use pca::pca;
pub use tree::repulsive_forces;

use crate::error::user;
use affinities::affinities_unchecked;
use anyhow::Result;
use linfa::traits::Transformer;
use ndarray::{Array2, ArrayView2};
use optimise::{initial_layout, optimise};
use params::{check_finite, validate_params};
use rand::rngs::SmallRng;
use rand::SeedableRng;

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
    let started = std::time::Instant::now();
    let data = if reduced_by_pca {
        pca(x, params.pca_dims)?
    } else {
        x.as_standard_layout().into_owned()
    };
    match params.engine {
        Engine::Heal => {
            let init = initial_layout(data.view(), reduced_by_pca, params)?;
            log::debug!("t-SNE: PCA {:.1} s", started.elapsed().as_secs_f64());
            let started = std::time::Instant::now();
            let p = affinities_unchecked(data.view(), params.perplexity);
            log::debug!(
                "t-SNE: neighbours and affinities {:.1} s",
                started.elapsed().as_secs_f64()
            );
            drop(data);
            let started = std::time::Instant::now();
            let y = optimise(&p, init, params, progress);
            log::debug!(
                "t-SNE: {} iterations ({}) {:.1} s",
                params.iterations,
                params.method.resolve(n, params.theta),
                started.elapsed().as_secs_f64()
            );
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
