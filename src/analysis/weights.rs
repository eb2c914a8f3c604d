//! Weight statistics of a checkpoint and the change between checkpoints, per layer and module.
//!
//! Every tensor is filed under one layer (0 = embeddings, i = encoder layer i, none = the head)
//! and one module (q, k, v, o, ffn_in, ffn_out, ln_attn, ln_ffn, embeddings, pooler,
//! classifier), and, for the histograms, under one group: the weight matrices of each module
//! type, the linear layers' biases, LayerNorm gamma, LayerNorm beta, the embedding tables and the
//! head. Every parameter lands in exactly one group, so the histograms of a checkpoint count all
//! of its parameters.

use crate::corrupt::select::ALL_MODULES;
use crate::model::checkpoint::{read_tensors, CheckpointFiles};
use crate::model::config::{EncoderConfig, Family};
use crate::model::layout::Layout;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::{Kind, Tensor};

/// A value further than this many standard deviations from its tensor's mean is an outlier.
pub const OUTLIER_STD: f64 = 6.0;

/// Histogram groups, in the order of the figure's panels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Q,
    K,
    V,
    O,
    FfnIn,
    FfnOut,
    Bias,
    LnGamma,
    LnBeta,
    Embeddings,
    Head,
}

pub const ALL_GROUPS: [Group; 11] = [
    Group::Q,
    Group::K,
    Group::V,
    Group::O,
    Group::FfnIn,
    Group::FfnOut,
    Group::Bias,
    Group::LnGamma,
    Group::LnBeta,
    Group::Embeddings,
    Group::Head,
];

impl Group {
    pub fn key(self) -> &'static str {
        match self {
            Group::Q => "q",
            Group::K => "k",
            Group::V => "v",
            Group::O => "o",
            Group::FfnIn => "ffn_in",
            Group::FfnOut => "ffn_out",
            Group::Bias => "bias",
            Group::LnGamma => "ln_gamma",
            Group::LnBeta => "ln_beta",
            Group::Embeddings => "embeddings",
            Group::Head => "head",
        }
    }

    /// Panel title.
    pub fn title(self) -> &'static str {
        match self {
            Group::Q => "query weights",
            Group::K => "key weights",
            Group::V => "value weights",
            Group::O => "attention output weights",
            Group::FfnIn => "FFN in weights",
            Group::FfnOut => "FFN out weights",
            Group::Bias => "linear biases (q k v o ffn)",
            Group::LnGamma => "LayerNorm γ (incl. embeddings)",
            Group::LnBeta => "LayerNorm β (incl. embeddings)",
            Group::Embeddings => "embedding tables",
            Group::Head => "head (pooler, classifier)",
        }
    }
}

/// Where a tensor sits in the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Place {
    /// 0 = embeddings, i = encoder layer i (1-based), None = head or anything else.
    pub layer: Option<usize>,
    pub module: String,
    /// weight, bias, gamma or beta.
    pub part: &'static str,
    pub group: Group,
}

/// Files a normalised tensor name under layer, module and group.
pub fn place(name: &str, family: Family) -> Place {
    let layout = Layout::of(family);
    let part_of = |is_ln: bool| match (is_ln, name.ends_with(".bias")) {
        (true, true) => "beta",
        (true, false) => "gamma",
        (false, true) => "bias",
        (false, false) => "weight",
    };
    let layers_prefix = format!("{}.{}.", family.prefix(), layout.layers);
    if let Some(rest) = name.strip_prefix(&layers_prefix) {
        if let Some((index, local)) = rest.split_once('.') {
            if let Ok(i) = index.parse::<usize>() {
                for module in ALL_MODULES {
                    let stem = module.local_name(layout);
                    if local == format!("{stem}.weight") || local == format!("{stem}.bias") {
                        let ln = module.is_layer_norm();
                        let part = part_of(ln);
                        let group = match (ln, part) {
                            (true, "gamma") => Group::LnGamma,
                            (true, _) => Group::LnBeta,
                            (false, "bias") => Group::Bias,
                            _ => match module.name() {
                                "q" => Group::Q,
                                "k" => Group::K,
                                "v" => Group::V,
                                "o" => Group::O,
                                "ffn_in" => Group::FfnIn,
                                _ => Group::FfnOut,
                            },
                        };
                        return Place {
                            layer: Some(i + 1),
                            module: module.name().to_string(),
                            part,
                            group,
                        };
                    }
                }
                return Place {
                    layer: Some(i + 1),
                    module: local.rsplit_once('.').map_or(local, |p| p.0).to_string(),
                    part: part_of(false),
                    group: Group::Head,
                };
            }
        }
    }
    let embeddings_prefix = format!("{}.embeddings.", family.prefix());
    if name.starts_with(&embeddings_prefix) {
        let ln_prefix = format!("{}.{}.", family.prefix(), layout.embeddings_layer_norm);
        if name.starts_with(&ln_prefix) {
            let part = part_of(true);
            return Place {
                layer: Some(0),
                module: "ln_embeddings".into(),
                part,
                group: if part == "gamma" {
                    Group::LnGamma
                } else {
                    Group::LnBeta
                },
            };
        }
        let local = name[embeddings_prefix.len()..]
            .trim_end_matches(".weight")
            .trim_end_matches(".bias");
        return Place {
            layer: Some(0),
            module: local.to_string(),
            part: part_of(false),
            group: Group::Embeddings,
        };
    }
    let module = name
        .strip_prefix(&format!("{}.", family.prefix()))
        .unwrap_or(name);
    let module = module.split('.').next().unwrap_or(module);
    Place {
        layer: None,
        module: module.to_string(),
        part: part_of(false),
        group: Group::Head,
    }
}

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

/// A checkpoint's float tensors, by normalised name, as f64 vectors with shapes.
pub struct Weights {
    pub label: String,
    pub family: Family,
    pub tensors: BTreeMap<String, (Vec<i64>, Vec<f64>)>,
}

impl Weights {
    /// Reads a checkpoint folder. Integer buffers (position ids) are left out.
    pub fn load(dir: &Path, label: &str) -> anyhow::Result<Self> {
        let files = CheckpointFiles::locate(dir)?;
        let config = EncoderConfig::from_file(&files.config)?;
        let raw: HashMap<String, Tensor> = read_tensors(&files, config.family)?;
        let mut tensors = BTreeMap::new();
        for (name, t) in raw {
            if !t.is_floating_point() {
                continue;
            }
            let shape = t.size();
            let values = Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1))?;
            tensors.insert(name, (shape, values));
        }
        Ok(Weights {
            label: label.to_string(),
            family: config.family,
            tensors,
        })
    }

    pub fn parameter_count(&self) -> usize {
        self.tensors.values().map(|(_, v)| v.len()).sum()
    }

    pub fn stats(&self) -> Vec<TensorStats> {
        self.tensors
            .iter()
            .map(|(name, (_, values))| {
                let (mean, mean_abs, std, min, max, kurtosis, outliers) = stats_of(values);
                TensorStats {
                    tensor: name.clone(),
                    place: place(name, self.family),
                    count: values.len(),
                    mean,
                    mean_abs,
                    std,
                    min,
                    max,
                    max_abs: min.abs().max(max.abs()),
                    kurtosis,
                    outliers,
                }
            })
            .collect()
    }
}

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

/// The change from `a` to `b` of one tensor.
#[derive(Debug, Clone, Serialize)]
pub struct TensorChange {
    pub tensor: String,
    #[serde(flatten)]
    pub place: Place,
    /// ||b - a|| / ||a|| (Frobenius); NaN when a is all zeros.
    pub relative_change: f64,
    /// Cosine of the flattened tensors; NaN when either is all zeros.
    pub cosine: f64,
}

/// Sums needed for relative change and cosine, so that modules can be pooled over tensors.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChangeSums {
    pub diff2: f64,
    pub a2: f64,
    pub b2: f64,
    pub ab: f64,
}

impl ChangeSums {
    pub fn of(a: &[f64], b: &[f64]) -> Self {
        let mut s = ChangeSums::default();
        for (&x, &y) in a.iter().zip(b) {
            let d = y - x;
            s.diff2 += d * d;
            s.a2 += x * x;
            s.b2 += y * y;
            s.ab += x * y;
        }
        s
    }

    pub fn add(&mut self, other: ChangeSums) {
        self.diff2 += other.diff2;
        self.a2 += other.a2;
        self.b2 += other.b2;
        self.ab += other.ab;
    }

    pub fn relative_change(&self) -> f64 {
        if self.a2 > 0.0 {
            (self.diff2 / self.a2).sqrt()
        } else {
            f64::NAN
        }
    }

    pub fn cosine(&self) -> f64 {
        let d = (self.a2 * self.b2).sqrt();
        if d > 0.0 {
            self.ab / d
        } else {
            f64::NAN
        }
    }
}

/// The tensor-by-tensor comparison of two checkpoints.
pub struct Comparison {
    pub tensors: Vec<(TensorChange, ChangeSums)>,
    /// Tensors only one side has, or with different shapes (e.g. a head added by fine-tuning).
    pub unmatched: Vec<String>,
}

pub fn compare(a: &Weights, b: &Weights) -> Comparison {
    let mut tensors = Vec::new();
    let mut unmatched = Vec::new();
    for (name, (shape_a, va)) in &a.tensors {
        match b.tensors.get(name) {
            Some((shape_b, vb)) if shape_b == shape_a => {
                let sums = ChangeSums::of(va, vb);
                tensors.push((
                    TensorChange {
                        tensor: name.clone(),
                        place: place(name, a.family),
                        relative_change: sums.relative_change(),
                        cosine: sums.cosine(),
                    },
                    sums,
                ));
            }
            _ => unmatched.push(name.clone()),
        }
    }
    for name in b.tensors.keys() {
        if !a.tensors.contains_key(name) {
            unmatched.push(name.clone());
        }
    }
    Comparison { tensors, unmatched }
}

/// Module key of the heatmap's columns, in order, for layer-level modules.
pub const HEATMAP_MODULES: [&str; 8] =
    ["q", "k", "v", "o", "ffn_in", "ffn_out", "ln_attn", "ln_ffn"];

/// Pools a comparison over the tensors of each (layer, module): weight and bias together.
pub fn by_module(cmp: &Comparison) -> BTreeMap<(Option<usize>, String), ChangeSums> {
    let mut out: BTreeMap<(Option<usize>, String), ChangeSums> = BTreeMap::new();
    for (change, sums) in &cmp.tensors {
        out.entry((change.place.layer, change.place.module.clone()))
            .or_default()
            .add(*sums);
    }
    out
}

/// Pools a comparison over whole layers (every tensor of the layer): embeddings (0), encoder
/// layers in order, then the head (None).
pub fn by_layer(cmp: &Comparison) -> Vec<(Option<usize>, ChangeSums)> {
    let mut out: BTreeMap<Option<usize>, ChangeSums> = BTreeMap::new();
    for (change, sums) in &cmp.tensors {
        out.entry(change.place.layer).or_default().add(*sums);
    }
    let mut rows: Vec<(Option<usize>, ChangeSums)> = out.into_iter().collect();
    let heads = rows.iter().take_while(|(l, _)| l.is_none()).count();
    rows.rotate_left(heads);
    rows
}
