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

use crate::error::user;
use crate::fsio;
use crate::model::config::Family;
use crate::model::head::Pooling;
use crate::model::place::Group;
use crate::train::config::EmbeddingStage;
use ndarray::Array2;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::{Kind, Tensor};

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

/// analysis/vectors.safetensors: the sample's pooled vectors at each stage kept.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisVectors {
    /// [n, hidden] per (stage, layer); stored as float16, so read back rounded to it.
    pub layers: BTreeMap<(EmbeddingStage, usize), Array2<f32>>,
    /// Each row's label: an index into run.json's label names.
    pub labels: Vec<i64>,
    /// Each row's index in the evaluation split, ascending.
    pub examples: Vec<usize>,
    pub sample_seed: u64,
    /// The size of the evaluation split the sample was drawn from.
    pub eval_examples: usize,
    pub pooling: Pooling,
}

fn tensor_name(stage: EmbeddingStage, layer: usize) -> String {
    format!("{}.layer.{layer}", stage.name())
}

fn parse_tensor_name(name: &str) -> Option<(EmbeddingStage, usize)> {
    let (stage, layer) = name.split_once(".layer.")?;
    let stage = [
        EmbeddingStage::Pretrained,
        EmbeddingStage::Corrupted,
        EmbeddingStage::Best,
    ]
    .into_iter()
    .find(|s| s.name() == stage)?;
    Some((stage, layer.parse().ok()?))
}

impl AnalysisVectors {
    /// The matrix of one stage and layer.
    pub fn get(&self, stage: EmbeddingStage, layer: usize) -> Option<&Array2<f32>> {
        self.layers.get(&(stage, layer))
    }

    /// The best epoch's layers, 0 (embeddings output) first.
    pub fn best_layers(&self) -> Vec<(usize, &Array2<f32>)> {
        self.layers
            .iter()
            .filter(|((s, _), _)| *s == EmbeddingStage::Best)
            .map(|((_, l), a)| (*l, a))
            .collect()
    }

    /// L: the deepest layer stored.
    pub fn final_layer(&self) -> Option<usize> {
        self.layers.keys().map(|(_, l)| *l).max()
    }

    /// Writes the file atomically, every matrix as float16.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut named: Vec<(String, Tensor)> = Vec::with_capacity(self.layers.len() + 2);
        for (&(stage, layer), a) in &self.layers {
            let (rows, cols) = a.dim();
            let values: Vec<f32> = a.iter().copied().collect();
            let t = Tensor::from_slice(&values)
                .view([rows as i64, cols as i64])
                .to_kind(Kind::Half);
            named.push((tensor_name(stage, layer), t));
        }
        named.push(("labels".into(), Tensor::from_slice(&self.labels)));
        let examples: Vec<i64> = self.examples.iter().map(|&i| i as i64).collect();
        named.push(("examples".into(), Tensor::from_slice(&examples)));
        let pooling = match self.pooling {
            Pooling::Cls => "cls",
            Pooling::Mean => "mean",
        };
        let metadata = HashMap::from([
            ("format".to_string(), VECTORS_FORMAT.to_string()),
            (
                "schema_version".to_string(),
                ANALYSIS_SCHEMA_VERSION.to_string(),
            ),
            ("sample_seed".to_string(), self.sample_seed.to_string()),
            ("eval_examples".to_string(), self.eval_examples.to_string()),
            ("pooling".to_string(), pooling.to_string()),
        ]);
        crate::model::checkpoint::write_named_safetensors_with(&named, path, metadata)
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| user(format!("{}: cannot read ({e})", path.display())))?;
        let bad = |what: String| user(format!("{}: {what}", path.display()));
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| bad(format!("not a safetensors file ({e:?})")))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("no header ({e:?})")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let field = |key: &str| {
            meta.get(key)
                .cloned()
                .ok_or_else(|| bad(format!("metadata lacks {key:?}: not a heal analysis file")))
        };
        if field("format")? != VECTORS_FORMAT {
            return Err(bad(format!("metadata format is not {VECTORS_FORMAT:?}")));
        }
        let number = |key: &str| -> anyhow::Result<u64> {
            field(key)?
                .parse()
                .map_err(|_| bad(format!("metadata {key:?} is not a number")))
        };
        let version = number("schema_version")?;
        if version > ANALYSIS_SCHEMA_VERSION as u64 {
            return Err(bad(format!(
                "schema_version {version} is newer than this heal reads ({ANALYSIS_SCHEMA_VERSION}): update heal"
            )));
        }
        let pooling = match field("pooling")?.as_str() {
            "cls" => Pooling::Cls,
            "mean" => Pooling::Mean,
            other => return Err(bad(format!("unknown pooling {other:?}"))),
        };
        let ints = |name: &str| -> anyhow::Result<Vec<i64>> {
            let view = st
                .tensor(name)
                .map_err(|_| bad(format!("no {name:?} tensor")))?;
            if view.dtype() != safetensors::Dtype::I64 {
                return Err(bad(format!("{name:?} is not int64")));
            }
            Ok(view
                .data()
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect())
        };
        let labels = ints("labels")?;
        let examples: Vec<usize> = ints("examples")?
            .into_iter()
            .map(|i| usize::try_from(i).map_err(|_| bad(format!("negative example index {i}"))))
            .collect::<anyhow::Result<_>>()?;
        if examples.len() != labels.len() {
            return Err(bad(format!(
                "{} examples but {} labels",
                examples.len(),
                labels.len()
            )));
        }
        let mut layers = BTreeMap::new();
        for (name, view) in st.tensors() {
            let Some(key) = parse_tensor_name(&name) else {
                continue;
            };
            let shape = view.shape().to_vec();
            if view.dtype() != safetensors::Dtype::F16 || shape.len() != 2 {
                return Err(bad(format!("{name}: expected a 2-D float16 tensor")));
            }
            if shape[0] != labels.len() {
                return Err(bad(format!(
                    "{name} has {} rows but there are {} labels",
                    shape[0],
                    labels.len()
                )));
            }
            let t = Tensor::from_data_size(
                view.data(),
                &[shape[0] as i64, shape[1] as i64],
                Kind::Half,
            );
            let values = Vec::<f32>::try_from(t.to_kind(Kind::Float).flatten(0, -1))?;
            let array = Array2::from_shape_vec((shape[0], shape[1]), values)
                .map_err(|e| bad(format!("{name}: {e}")))?;
            layers.insert(key, array);
        }
        Ok(AnalysisVectors {
            layers,
            labels,
            examples,
            sample_seed: number("sample_seed")?,
            eval_examples: number("eval_examples")? as usize,
            pooling,
        })
    }
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

    #[test]
    fn vectors_read_back_as_written_to_float16() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.safetensors");
        let a =
            Array2::from_shape_vec((2, 3), vec![0.1f32, -2.0, 3.5, 1e-3, 0.0, 65504.0]).unwrap();
        let v = AnalysisVectors {
            layers: BTreeMap::from([
                ((EmbeddingStage::Best, 0), a.clone()),
                ((EmbeddingStage::Corrupted, 1), a.clone()),
            ]),
            labels: vec![1, 0],
            examples: vec![3, 7],
            sample_seed: SAMPLE_SEED,
            eval_examples: 9,
            pooling: Pooling::Mean,
        };
        v.write(&path).unwrap();
        let back = AnalysisVectors::read(&path).unwrap();
        let got = back.get(EmbeddingStage::Best, 0).unwrap();
        for (x, y) in got.iter().zip(a.iter()) {
            assert!((x - y).abs() <= y.abs() / 1024.0, "{x} vs {y}");
        }
        assert_eq!((back.final_layer(), back.best_layers().len()), (Some(1), 1));
        assert_eq!(
            (back.labels, back.examples, back.eval_examples, back.pooling),
            (v.labels, v.examples, 9, Pooling::Mean)
        );
    }
}
