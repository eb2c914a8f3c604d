//! What decides a t-SNE map: the engine, the learning rate, the starting layout, the rest of
//! [`TsneParams`], and their checks against an input.

use crate::error::user;
use anyhow::Result;
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

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

/// How the heal engine computes the repulsive half of the gradient, and the optimiser that
/// goes with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Method {
    /// [`Method::Exact`] when theta is 0, [`Method::Fft`] from [`FFT_FROM`] points, else
    /// [`Method::BarnesHut`].
    #[default]
    Auto,
    /// Every pair, O(n^2) per iteration; scikit-learn's optimiser.
    Exact,
    /// The quadtree at theta; scikit-learn's optimiser.
    BarnesHut,
    /// Interpolation on a grid and FFT convolution, O(n) per iteration; openTSNE's optimiser.
    Fft,
}

/// [`Method::Auto`] picks the FFT method from this many points.
///
/// openTSNE switches at 10,000, and so did heal while its Barnes-Hut sums ran in SSE2 halves.
/// With the sums in AVX2 lanes (`kernel.rs`) heal's Barnes-Hut is the faster of the two on
/// every map measured, at the same 10-NN accuracy (2 cores, 1,000 iterations; BENCHMARKS.md):
/// 20,000 SST-2 vectors 9.6 s of iterations against 46.7 s, 67,349 48 s against 91 s for the
/// whole process, 134,698 (the same vectors twice, the copy jittered) 78 s of iterations
/// against 107 s. The FFT's cost grows more slowly (its grid follows the map's area, capped at
/// `MAX_BOXES`); extrapolating the two, they meet near 220,000 points.
pub const FFT_FROM: usize = 200_000;

impl Method {
    pub fn parse(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Method::Auto),
            "exact" => Ok(Method::Exact),
            "bh" | "barnes-hut" => Ok(Method::BarnesHut),
            "fft" => Ok(Method::Fft),
            _ => Err(user(format!(
                "t-SNE method {text:?} is not known; use auto, exact, bh or fft"
            ))),
        }
    }

    /// The method that runs for `n` points at `theta`: never [`Method::Auto`].
    pub fn resolve(self, n: usize, theta: f64) -> Method {
        match self {
            Method::Auto if theta == 0.0 => Method::Exact,
            Method::Auto if n >= FFT_FROM => Method::Fft,
            Method::Auto => Method::BarnesHut,
            other => other,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Auto => "auto",
            Method::Exact => "exact",
            Method::BarnesHut => "bh",
            Method::Fft => "fft",
        })
    }
}

impl FromStr for Method {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Method::parse(s)
    }
}

crate::string_serde!(Method);

/// The gradient-descent step size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum LearningRate {
    /// max(n / early_exaggeration / 4, 50), as scikit-learn's `learning_rate="auto"`, with
    /// [`Method::Exact`] and [`Method::BarnesHut`]; n / exaggeration / 4 in each phase (early
    /// exaggeration, then 1), as openTSNE's "auto" in heal's gradient scale, with
    /// [`Method::Fft`]; 200 for [`Engine::Linfa`].
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
    /// The heal engine's gradient; the linfa engine is always Barnes-Hut (exact at theta 0).
    #[serde(default)]
    pub method: Method,
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
            method: Method::Auto,
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

impl TsneParams {
    /// Checks what does not depend on the input (`heal tsne` calls it before reading any):
    /// at least one iteration, and a PCA to 2 or more dimensions.
    pub fn check(&self) -> Result<()> {
        if self.iterations == 0 {
            return Err(user(
                "--iterations 0: give 1 or more iterations (1000 is usual)",
            ));
        }
        // 0 is the library's "no PCA" (tests map raw inputs); 1 would flatten every map.
        if self.pca_dims == 1 {
            return Err(user(format!(
                "--pca-dims {}: give 2 or more dimensions (50 is usual; vectors already that narrow skip the PCA)",
                self.pca_dims
            )));
        }
        Ok(())
    }
}

/// Checks the parameters against an input of `n` rows.
pub(super) fn validate_params(n: usize, params: &TsneParams) -> Result<()> {
    params.check()?;
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
        if params.method != Method::Auto {
            return Err(user(format!(
                "t-SNE method {}: the linfa engine is always Barnes-Hut (exact at theta 0); use method auto or the heal engine",
                params.method
            )));
        }
    }
    Ok(())
}

/// Rejects a NaN or infinite value in `what`'s input, naming where it is.
pub(super) fn check_finite(x: ArrayView2<f64>, what: &str) -> Result<()> {
    if let Some(((r, c), v)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(user(format!(
            "{what} input has a non-finite value ({v}) at row {r}, column {c}; remove or fix that row"
        )));
    }
    Ok(())
}
