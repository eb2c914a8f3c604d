//! The heal engine's optimiser: the starting layout, gradient descent on KL(P || Q), and the
//! KL divergence itself.

use super::affinities::Affinities;
use super::fft::FftRepulsion;
use super::kernel;
use super::params::{Init, LearningRate, Method, TsneParams};
use super::pca::pca;
use super::tree::{repulse_exact, repulsion_into, QuadTree};
use super::{from_array, to_array};
use anyhow::Result;
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

/// The starting layout for the heal engine.
pub(super) fn initial_layout(
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

/// How the repulsion is computed, with what it keeps between iterations. The exact method is
/// the tree at theta 0 (`repulsion_into` sums every pair then).
enum Repulsion {
    Tree(QuadTree, f64),
    Fft(Box<FftRepulsion>),
}

impl Repulsion {
    fn new(method: Method, theta: f64) -> Self {
        match method {
            Method::Fft => Repulsion::Fft(Box::default()),
            Method::Exact => Repulsion::Tree(QuadTree::default(), 0.0),
            Method::BarnesHut | Method::Auto => Repulsion::Tree(QuadTree::default(), theta),
        }
    }

    fn compute(&mut self, y: &[[f64; 2]], out: &mut [([f64; 2], f64)]) {
        match self {
            Repulsion::Tree(tree, theta) => repulsion_into(y, *theta, tree, out),
            Repulsion::Fft(grid) => grid.repulse(y, out),
        }
    }
}

/// The step rules of the two optimisers heal follows: scikit-learn's (with the exact and
/// Barnes-Hut gradients) and openTSNE's (with the FFT gradient, whose large maps need its
/// larger second-phase step to unfold in the same number of iterations).
#[derive(Clone, Copy)]
struct Rules {
    open_tsne: bool,
}

/// openTSNE's largest step per point and iteration (`max_step_norm`).
const MAX_STEP: f64 = 5.0;

impl Rules {
    fn momentum(self, exploring: bool) -> f64 {
        if exploring && !self.open_tsne {
            0.5
        } else {
            0.8
        }
    }

    fn learning_rate(self, params: &TsneParams, n: usize, exaggeration: f64) -> f64 {
        match params.learning_rate {
            LearningRate::Auto if self.open_tsne => n as f64 / exaggeration / 4.0,
            lr => lr.resolve(n, params.early_exaggeration),
        }
    }

    /// The new gain for a coordinate whose last step was `u` and whose gradient is `g`.
    fn gain(self, gain: f64, u: f64, g: f64) -> f64 {
        if self.open_tsne {
            // np.sign(update) != np.sign(gradient), where sign(0) = 0.
            let sign = |v: f64| (v > 0.0) as i8 - (v < 0.0) as i8;
            if sign(u) != sign(g) {
                gain + 0.2
            } else {
                gain * 0.8 + 0.01
            }
        } else {
            let gain = if u * g < 0.0 { gain + 0.2 } else { gain * 0.8 };
            gain.max(0.01)
        }
    }
}

/// Runs the heal engine's gradient descent from `y`.
pub(super) fn optimise(
    p: &Affinities,
    mut y: Vec<[f64; 2]>,
    params: &TsneParams,
    progress: &mut dyn FnMut(usize),
) -> Vec<[f64; 2]> {
    let n = y.len();
    let method = params.method.resolve(n, params.theta);
    let rules = Rules {
        open_tsne: method == Method::Fft,
    };
    let mut repulsion = Repulsion::new(method, params.theta);
    let mut attract = vec![[0.0f64; 2]; n];
    let mut repel = vec![([0.0f64; 2], 0.0f64); n];
    let mut update = vec![[0.0f64; 2]; n];
    let mut gains = vec![[1.0f64; 2]; n];
    for it in 0..params.iterations {
        let exploring = it < params.exaggeration_iterations;
        if it == params.exaggeration_iterations && it > 0 && !rules.open_tsne {
            // scikit-learn starts its second descent with a fresh step and gains; openTSNE
            // keeps both.
            update.iter_mut().for_each(|u| *u = [0.0; 2]);
            gains.iter_mut().for_each(|g| *g = [1.0; 2]);
        }
        let exaggeration = if exploring {
            params.early_exaggeration
        } else {
            1.0
        };
        let momentum = rules.momentum(exploring);
        let lr = rules.learning_rate(params, n, exaggeration);
        // Attraction: sum_j P_ij q_ij (y_i - y_j), per point.
        {
            let yv = &y[..];
            attract
                .par_iter_mut()
                .enumerate()
                .with_min_len(64)
                .for_each(|(i, a)| {
                    let r = p.row_start[i]..p.row_start[i + 1];
                    *a = kernel::attraction(yv[i], &p.cols[r.clone()], &p.vals[r], yv);
                });
        }
        repulsion.compute(&y, &mut repel);
        // Z in index order, whatever the threads did.
        let z: f64 = repel.iter().map(|r| r.1).sum();
        let inv_z = 1.0 / z;
        for i in 0..n {
            for c in 0..2 {
                let g = 4.0 * (exaggeration * attract[i][c] - repel[i].0[c] * inv_z);
                let u = update[i][c];
                let gain = rules.gain(gains[i][c], u, g);
                gains[i][c] = gain;
                update[i][c] = momentum * u - lr * gain * g;
            }
            if rules.open_tsne {
                let norm = update[i][0].hypot(update[i][1]);
                if norm > MAX_STEP {
                    let s = MAX_STEP / norm;
                    update[i] = [update[i][0] * s, update[i][1] * s];
                }
            }
            y[i][0] += update[i][0];
            y[i][1] += update[i][1];
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
