//! Summary statistics of one tensor: moments, extremes, kurtosis and outliers.

use super::Place;
use serde::Serialize;

/// A value further than this many standard deviations from its tensor's mean is an outlier.
pub const OUTLIER_STD: f64 = 6.0;

/// Summary statistics of one tensor.
#[derive(Debug, Clone, Serialize)]
pub struct TensorStats {
    pub tensor: String,
    #[serde(flatten)]
    pub place: Place,
    pub count: usize,
    pub mean: f64,
    pub mean_abs: f64,
    /// Population standard deviation (divides by n).
    pub std: f64,
    pub min: f64,
    pub max: f64,
    pub max_abs: f64,
    /// Excess kurtosis (Fisher; 0 for a Gaussian), population moments: scipy.stats.kurtosis's
    /// default. NaN for a constant tensor.
    pub kurtosis: f64,
    /// Values with |w - mean| > 6 std. For 1-D tensors (LayerNorm, biases) each value is a
    /// hidden dimension, so this counts outlier dimensions.
    pub outliers: usize,
}

/// Statistics of a slice of values (f64 accumulation, two passes).
pub fn stats_of(values: &[f64]) -> (f64, f64, f64, f64, f64, f64, usize) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (
            f64::NAN,
            f64::NAN,
            f64::NAN,
            f64::NAN,
            f64::NAN,
            f64::NAN,
            0,
        );
    }
    let mean = values.iter().sum::<f64>() / n;
    let mean_abs = values.iter().map(|v| v.abs()).sum::<f64>() / n;
    let (mut m2, mut m4) = (0.0, 0.0);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in values {
        let d = v - mean;
        let d2 = d * d;
        m2 += d2;
        m4 += d2 * d2;
        lo = lo.min(v);
        hi = hi.max(v);
    }
    m2 /= n;
    m4 /= n;
    let std = m2.sqrt();
    let kurtosis = if m2 > 0.0 {
        m4 / (m2 * m2) - 3.0
    } else {
        f64::NAN
    };
    let limit = OUTLIER_STD * std;
    let outliers = if std > 0.0 {
        values.iter().filter(|v| (*v - mean).abs() > limit).count()
    } else {
        0
    };
    (mean, mean_abs, std, lo, hi, kurtosis, outliers)
}
