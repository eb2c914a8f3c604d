//! analysis/weights.json: per-tensor moments of the pretrained, corrupted and healed weights,
//! the sums of squares relative change needs, and per-group |w| histograms on shared bins.

use super::ANALYSIS_SCHEMA_VERSION;
use crate::error::user;
use crate::fsio;
use crate::model::config::Family;
use crate::model::place::Group;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The stages weights.json describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightStage {
    /// The checkpoint as loaded (the head as initialised).
    Pretrained,
    /// After the damage, before training (= pretrained when nothing was corrupted).
    Corrupted,
    /// At the best epoch.
    Healed,
}

pub const WEIGHT_STAGES: [WeightStage; 3] = [
    WeightStage::Pretrained,
    WeightStage::Corrupted,
    WeightStage::Healed,
];

/// serde_json writes a non-finite float as null; read it back as NaN.
fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// One stage's |w| counts on a group's edges: `counts[i]` holds edges[i] <= |w| < edges[i+1]
/// (the last bin includes its upper edge); |w| below the first edge (zeros included) counts in
/// `below`, above the last (or not finite) in `above`. Everything sums to the group's size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageCounts {
    pub below: u64,
    pub above: u64,
    pub counts: Vec<u64>,
}

impl StageCounts {
    pub fn total(&self) -> u64 {
        self.below + self.above + self.counts.iter().sum::<u64>()
    }
}

/// One group's histograms at the three stages, on shared edges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupHistograms {
    pub group: Group,
    /// [`HISTOGRAM_BINS`] + 1 ascending edges of |w| ([`log_edges`]).
    pub edges: Vec<f64>,
    pub pretrained: StageCounts,
    pub corrupted: StageCounts,
    pub healed: StageCounts,
}

impl GroupHistograms {
    pub fn counts(&self, stage: WeightStage) -> &StageCounts {
        match stage {
            WeightStage::Pretrained => &self.pretrained,
            WeightStage::Corrupted => &self.corrupted,
            WeightStage::Healed => &self.healed,
        }
    }
}

/// Moments of one tensor at one stage (f64 accumulation; population std).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    #[serde(deserialize_with = "nan_if_null")]
    pub mean: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub std: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub mean_abs: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub max_abs: f64,
}

/// One float tensor of the model: where it sits, its moments per stage, and the sums of
/// squares that relative change pools over tensors: sqrt(sum diff_sq / sum ref_sq).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorSummary {
    /// The *ForSequenceClassification name (`bert.encoder.layer.0.attention.self.query.weight`).
    pub tensor: String,
    /// 0 = embeddings, i = encoder layer i (1-based), None = the head.
    pub layer: Option<usize>,
    pub module: String,
    /// weight, bias, gamma or beta.
    pub part: String,
    pub group: Group,
    pub count: usize,
    pub pretrained: Moments,
    pub corrupted: Moments,
    pub healed: Moments,
    #[serde(deserialize_with = "nan_if_null")]
    pub pretrained_sq: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub corrupted_sq: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub healed_minus_pretrained_sq: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub healed_minus_corrupted_sq: f64,
}

impl TensorSummary {
    pub fn moments(&self, stage: WeightStage) -> &Moments {
        match stage {
            WeightStage::Pretrained => &self.pretrained,
            WeightStage::Corrupted => &self.corrupted,
            WeightStage::Healed => &self.healed,
        }
    }
}

/// The relative change of one (layer, module), pooled over its tensors (weight and bias).
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleChange {
    pub layer: Option<usize>,
    pub module: String,
    /// ||healed - pretrained|| / ||pretrained||; NaN when the module is all zeros.
    pub from_pretrained: f64,
    /// ||healed - corrupted|| / ||corrupted||.
    pub from_corrupted: f64,
}

/// analysis/weights.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisWeights {
    pub schema_version: u32,
    pub family: Family,
    /// One per group present, in [`crate::model::place::ALL_GROUPS`] order.
    pub histograms: Vec<GroupHistograms>,
    /// Every float parameter of the model, in name order.
    pub tensors: Vec<TensorSummary>,
}

impl AnalysisWeights {
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        fsio::write_json(path, self)
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| user(format!("{}: cannot read ({e})", path.display())))?;
        let value: Self = serde_json::from_str(&text).map_err(|e| {
            user(format!(
                "{}: not a heal analysis weights file ({e})",
                path.display()
            ))
        })?;
        if value.schema_version > ANALYSIS_SCHEMA_VERSION {
            return Err(user(format!(
                "{}: schema_version {} is newer than this heal reads ({ANALYSIS_SCHEMA_VERSION}): update heal",
                path.display(),
                value.schema_version
            )));
        }
        Ok(value)
    }

    pub fn histogram(&self, group: Group) -> Option<&GroupHistograms> {
        self.histograms.iter().find(|h| h.group == group)
    }

    /// Relative change per (layer, module): embeddings (0), the encoder layers in order, then
    /// the head (None); modules by name within a layer.
    pub fn module_changes(&self) -> Vec<ModuleChange> {
        let mut sums: BTreeMap<(usize, String), (Option<usize>, [f64; 4])> = BTreeMap::new();
        for t in &self.tensors {
            let key = (t.layer.unwrap_or(usize::MAX), t.module.clone());
            let s = &mut sums.entry(key).or_insert((t.layer, [0.0; 4])).1;
            s[0] += t.healed_minus_pretrained_sq;
            s[1] += t.pretrained_sq;
            s[2] += t.healed_minus_corrupted_sq;
            s[3] += t.corrupted_sq;
        }
        let ratio = |d: f64, r: f64| if r > 0.0 { (d / r).sqrt() } else { f64::NAN };
        sums.into_iter()
            .map(|((_, module), (layer, s))| ModuleChange {
                layer,
                module,
                from_pretrained: ratio(s[0], s[1]),
                from_corrupted: ratio(s[2], s[3]),
            })
            .collect()
    }
}
