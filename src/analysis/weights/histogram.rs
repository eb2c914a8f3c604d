//! Histograms of each group's values, several checkpoints on shared bin edges.

use super::{place, Group, Weights, ALL_GROUPS};
use serde::Serialize;

/// Histograms of every group, for several checkpoints on shared bin edges.
#[derive(Debug, Clone, Serialize)]
pub struct GroupHistogram {
    pub group: Group,
    pub edges: Vec<f64>,
    /// One row of counts per checkpoint, in the order given.
    pub counts: Vec<Vec<u64>>,
}

/// Bins every group's values between the smallest and largest value any checkpoint has there.
pub fn histograms(checkpoints: &[&Weights], bins: usize) -> Vec<GroupHistogram> {
    fn members(w: &Weights, group: Group) -> Vec<&Vec<f64>> {
        w.tensors
            .iter()
            .filter(|(name, _)| place(name, w.family).group == group)
            .map(|(_, (_, v))| v)
            .collect()
    }
    let mut out = Vec::new();
    for group in ALL_GROUPS {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for w in checkpoints {
            for v in members(w, group) {
                for &x in v.iter() {
                    if x.is_finite() {
                        lo = lo.min(x);
                        hi = hi.max(x);
                    }
                }
            }
        }
        if !lo.is_finite() {
            continue;
        }
        if hi - lo < 1e-12 {
            lo -= 0.5;
            hi += 0.5;
        }
        let edges = viz::linear_edges(lo, hi, bins);
        let counts = checkpoints
            .iter()
            .map(|w| {
                let all = members(w, group);
                viz::histogram(all.iter().flat_map(|v| v.iter().copied()), &edges)
            })
            .collect();
        out.push(GroupHistogram {
            group,
            edges,
            counts,
        });
    }
    out
}
