//! RUN/analysis/: the compact artefacts a run keeps for the study report, so that no study
//! figure needs a checkpoint. Written by the trainer at the end of a run (before result.json)
//! when `analysis-examples` > 0; read by `heal report`. Both files, writer and reader together:
//!
//! - `vectors.safetensors`: per-layer pooled vectors (float16) of a seeded stratified sample of
//!   the evaluation split: `best.layer.{i}` for every layer i = 0..=L, `corrupted.layer.{L}`
//!   (runs that corrupted something), `pretrained.layer.{L}` (runs with corrupt = none), with
//!   `labels` and `examples` (I64, index into the evaluation split) and the format in
//!   `__metadata__`.
//! - `weights.json`: per-tensor statistics of the pretrained, corrupted and healed (best epoch)
//!   weights with the sums that relative change needs, and per-group histograms of |w| on
//!   log-spaced bins that depend on the pretrained checkpoint alone.

mod vectors;
mod weights;

pub use vectors::AnalysisVectors;
pub use weights::{
    AnalysisWeights, GroupHistograms, ModuleChange, Moments, StageCounts, TensorSummary,
    WeightStage, WEIGHT_STAGES,
};

/// `__metadata__` "format" of vectors.safetensors.
pub const VECTORS_FORMAT: &str = "heal-analysis-vectors";
/// Of both files; a reader refuses a later one.
pub const ANALYSIS_SCHEMA_VERSION: u32 = 1;
/// The sample's seed: a constant, not the cell's seed, so that every cell of a dataset holds
/// the same examples in the same order (CKA between cells needs that).
pub const SAMPLE_SEED: u64 = 0;
/// Histogram bins per group, over six decades (about 17 per decade).
pub const HISTOGRAM_BINS: usize = 100;
/// Decades below and above the decade of the group's largest pretrained |w|.
const DECADES_BELOW: f64 = 5.0;
const DECADES_ABOVE: f64 = 1.0;

/// The 101 ascending bin edges of a group whose largest pretrained |w| is `max_abs`:
/// 10^x for x linearly spaced over [floor(log10 m) - 5, floor(log10 m) + 1]. A group that is
/// all zeros (or not finite) takes m = 1.
pub fn log_edges(max_abs: f64) -> Vec<f64> {
    let decade = if max_abs > 0.0 && max_abs.is_finite() {
        max_abs.log10().floor()
    } else {
        0.0
    };
    let (lo, hi) = (decade - DECADES_BELOW, decade + DECADES_ABOVE);
    (0..=HISTOGRAM_BINS)
        .map(|i| 10f64.powf(lo + (hi - lo) * i as f64 / HISTOGRAM_BINS as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_span_six_decades_from_the_largest_weight() {
        let e = log_edges(0.37);
        assert_eq!(e.len(), HISTOGRAM_BINS + 1);
        assert!((e[0] - 1e-6).abs() < 1e-18 && (e[100] - 1.0).abs() < 1e-12);
        assert!(
            (e[50] - 1e-3).abs() < 1e-15,
            "the middle edge is three decades up"
        );
        assert_eq!(log_edges(0.0)[100], 10.0);
    }
}
