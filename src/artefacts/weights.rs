//! weights.json's numbers: per-tensor moments at the pretrained, corrupted and healed stages,
//! the sums of squares of the change, and |w| histograms per group on bins shared by every
//! cell of the model (from the pretrained checkpoint alone).

use crate::model::config::Family;
use crate::model::place::{place, Group, ALL_GROUPS};
use crate::model::SequenceClassifier;
use crate::run_dir::analysis::{
    log_edges, AnalysisWeights, GroupHistograms, Moments, StageCounts, TensorSummary,
    ANALYSIS_SCHEMA_VERSION, HISTOGRAM_BINS,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use tch::{Device, Kind, Tensor};

/// The weights a run starts from, kept until its end: every parameter as loaded (the head as
/// initialised), the ones the damage changed as they were after it, and each group's bins.
pub struct StartWeights {
    family: Family,
    pretrained: Vec<(String, Tensor)>,
    corrupted: HashMap<String, Tensor>,
    bins: BTreeMap<Group, Bins>,
}

impl StartWeights {
    /// Copies the model as loaded. A group's bins come from the tensors the checkpoint held
    /// (`initialised` lists the ones drawn afresh, which differ from seed to seed), or from all
    /// of its tensors when it has no other (a head the checkpoint lacked).
    pub fn pretrained(model: &SequenceClassifier, initialised: &[String]) -> Self {
        let family = model.config.family;
        let pretrained = model.snapshot();
        let fresh: HashSet<&str> = initialised.iter().map(String::as_str).collect();
        let mut max_abs: BTreeMap<Group, (f64, f64)> = BTreeMap::new();
        for (name, t) in &pretrained {
            let m = t.abs().max().double_value(&[]);
            let entry = max_abs
                .entry(place(name, family).group)
                .or_insert((f64::NEG_INFINITY, f64::NEG_INFINITY));
            if fresh.contains(name.as_str()) {
                entry.1 = entry.1.max(m);
            } else {
                entry.0 = entry.0.max(m);
            }
        }
        let bins = max_abs
            .into_iter()
            .map(|(group, (loaded, fresh))| {
                let m = if loaded.is_finite() { loaded } else { fresh };
                (group, Bins::new(log_edges(m)))
            })
            .collect();
        StartWeights {
            family,
            pretrained,
            corrupted: HashMap::new(),
            bins,
        }
    }

    /// Keeps a copy of every parameter the damage changed (nothing when it changed none).
    pub fn note_damage(&mut self, model: &SequenceClassifier) {
        let vars = model.vs.variables();
        for (name, before) in &self.pretrained {
            if let Some(var) = vars.get(name) {
                let now = var.detach().to_device(Device::Cpu);
                if !now.equal(before) {
                    self.corrupted.insert(name.clone(), now.copy());
                }
            }
        }
    }

    /// The statistics of the three stages, the model now holding the healed weights.
    pub fn summarise(&self, model: &SequenceClassifier) -> anyhow::Result<AnalysisWeights> {
        let vars = model.vs.variables();
        let mut hist: BTreeMap<Group, [StageCounts; 3]> = BTreeMap::new();
        let mut tensors = Vec::with_capacity(self.pretrained.len());
        for (name, pre) in &self.pretrained {
            let place = place(name, self.family);
            let healed_var = vars
                .get(name)
                .ok_or_else(|| anyhow::anyhow!("the model lost its parameter {name}"))?;
            let p = values(pre)?;
            let c = self.corrupted.get(name).map(values).transpose()?;
            let h = values(&healed_var.detach().to_device(Device::Cpu))?;
            let bins = &self.bins[&place.group];
            let counts = hist.entry(place.group).or_insert_with(|| {
                std::array::from_fn(|_| StageCounts {
                    counts: vec![0; HISTOGRAM_BINS],
                    ..Default::default()
                })
            });
            // The stages' passes are independent: two threads take them (each pass as before,
            // so the numbers are the same to the last bit). A tensor the damage left alone has
            // its corrupted stage equal to the pretrained one: computed once.
            let stage = |v: &[f32]| (moments(v), bins.counted(v));
            let ((pre_stats, healed_stats), (corr_stats, sums)) = rayon::join(
                || rayon::join(|| stage(&p), || stage(&h)),
                || {
                    rayon::join(
                        || c.as_deref().map(stage),
                        || {
                            let c = c.as_deref();
                            (
                                sum_sq(&p, None),
                                c.map(|c| sum_sq(c, None)),
                                sum_sq(&h, Some(&p)),
                                c.map(|c| sum_sq(&h, Some(c))),
                            )
                        },
                    )
                },
            );
            let (p_sq, c_sq, h_minus_p, h_minus_c) = sums;
            let corr_stats = corr_stats.unwrap_or_else(|| pre_stats.clone());
            for (into, (_, got)) in counts
                .iter_mut()
                .zip([&pre_stats, &corr_stats, &healed_stats])
            {
                add_counts(into, got);
            }
            tensors.push(TensorSummary {
                tensor: name.clone(),
                layer: place.layer,
                module: place.module.clone(),
                part: place.part.to_string(),
                group: place.group,
                count: p.len(),
                pretrained: pre_stats.0,
                corrupted: corr_stats.0,
                healed: healed_stats.0,
                pretrained_sq: p_sq,
                corrupted_sq: c_sq.unwrap_or(p_sq),
                healed_minus_pretrained_sq: h_minus_p,
                healed_minus_corrupted_sq: h_minus_c.unwrap_or(h_minus_p),
            });
        }
        let histograms = ALL_GROUPS
            .iter()
            .filter_map(|g| {
                let [pretrained, corrupted, healed] = hist.remove(g)?;
                Some(GroupHistograms {
                    group: *g,
                    edges: self.bins[g].edges.clone(),
                    pretrained,
                    corrupted,
                    healed,
                })
            })
            .collect();
        Ok(AnalysisWeights {
            schema_version: ANALYSIS_SCHEMA_VERSION,
            family: self.family,
            histograms,
            tensors,
        })
    }
}

/// Adds one tensor's counts to its group's.
fn add_counts(into: &mut StageCounts, got: &StageCounts) {
    into.below += got.below;
    into.above += got.above;
    for (a, b) in into.counts.iter_mut().zip(&got.counts) {
        *a += b;
    }
}

fn values(t: &Tensor) -> anyhow::Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(
        t.to_kind(Kind::Float).contiguous().flatten(0, -1),
    )?)
}

/// Mean, population std (two passes), mean |w| and max |w|, accumulated in f64.
fn moments(v: &[f32]) -> Moments {
    let n = v.len() as f64;
    let (mut sum, mut sum_abs, mut max_abs) = (0.0f64, 0.0f64, 0.0f64);
    for &x in v {
        let x = x as f64;
        sum += x;
        sum_abs += x.abs();
        max_abs = max_abs.max(x.abs());
    }
    let mean = sum / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    Moments {
        mean,
        std: var.sqrt(),
        mean_abs: sum_abs / n,
        max_abs: if v.iter().any(|x| x.is_nan()) {
            f64::NAN
        } else {
            max_abs
        },
    }
}

/// Σ (a - b)², or Σ a² without `b`, in f64.
fn sum_sq(a: &[f32], b: Option<&[f32]>) -> f64 {
    match b {
        Some(b) => a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
            .sum(),
        None => a.iter().map(|&x| (x as f64).powi(2)).sum(),
    }
}

/// A group's log-spaced edges and the fast way into them.
struct Bins {
    edges: Vec<f64>,
    /// log2 of the first edge and the width of a bin in log2 units: a first guess of a value's
    /// bin, which comparisons with the edges then make exact.
    log2_first: f64,
    log2_width: f64,
}

impl Bins {
    fn new(edges: Vec<f64>) -> Self {
        let log2_first = edges[0].log2();
        let log2_width = (edges[HISTOGRAM_BINS].log2() - log2_first) / HISTOGRAM_BINS as f64;
        Bins {
            edges,
            log2_first,
            log2_width,
        }
    }

    /// The counts of `values` alone ([`count`](Self::count) into empty counts).
    fn counted(&self, values: &[f32]) -> StageCounts {
        let mut out = StageCounts {
            counts: vec![0; HISTOGRAM_BINS],
            ..Default::default()
        };
        self.count(values, &mut out);
        out
    }

    /// Adds |v| of every value: bin i holds edges[i] <= |v| < edges[i+1], the last bin its upper
    /// edge too (numpy's searchsorted(edges, |v|, "right") - 1).
    fn count(&self, values: &[f32], into: &mut StageCounts) {
        let last = self.edges[HISTOGRAM_BINS];
        for &x in values {
            let v = (x as f64).abs();
            if v < self.edges[0] {
                into.below += 1;
            } else if v > last || v.is_nan() {
                into.above += 1;
            } else {
                let guess = ((approx_log2(v) - self.log2_first) / self.log2_width).floor();
                let mut i = (guess.max(0.0) as usize).min(HISTOGRAM_BINS - 1);
                while i > 0 && v < self.edges[i] {
                    i -= 1;
                }
                while i + 1 < HISTOGRAM_BINS && v >= self.edges[i + 1] {
                    i += 1;
                }
                into.counts[i] += 1;
            }
        }
    }
}

/// log2 of a positive normal f64 from its bits, within 0.09: the exponent plus the mantissa
/// read linearly (log2(1 + m) ~ m).
fn approx_log2(v: f64) -> f64 {
    let bits = v.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as f64 - 1023.0;
    let mantissa = (bits & ((1u64 << 52) - 1)) as f64 / (1u64 << 52) as f64;
    exponent + mantissa
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_a_search_of_the_edges() {
        let bins = Bins::new(log_edges(0.5));
        let mut values: Vec<f32> = (0..20_000)
            .map(|i| ((i as f32) * 0.37).sin() * 10f32.powf(-((i % 9) as f32)))
            .collect();
        values.extend(bins.edges.iter().map(|&e| e as f32));
        values.extend([0.0, f32::NAN, f32::INFINITY, 1.0, -1.0]);
        let mut got = StageCounts {
            counts: vec![0; HISTOGRAM_BINS],
            ..Default::default()
        };
        bins.count(&values, &mut got);
        let mut want = StageCounts {
            counts: vec![0; HISTOGRAM_BINS],
            ..Default::default()
        };
        for &x in &values {
            let v = (x as f64).abs();
            let i = bins.edges.partition_point(|&e| e <= v);
            match i {
                _ if v.is_nan() || v > bins.edges[HISTOGRAM_BINS] => want.above += 1,
                0 => want.below += 1,
                _ => want.counts[(i - 1).min(HISTOGRAM_BINS - 1)] += 1,
            }
        }
        assert_eq!(got, want);
        assert_eq!(got.total(), values.len() as u64);
    }
}
