//! Which parameters heal: `--train full|head|layernorm|bias|attention|ffn|layers:SPEC|ln-outliers:N`.
//! The classification head always trains. Frozen tensors get no gradient and stay bit-identical.

use crate::corrupt::select::{self, Module};
use crate::corrupt::spec::LayerSpec;
use crate::error::user;
use crate::model::head::Head;
use crate::model::layout::Layout;
use crate::model::SequenceClassifier;
use serde::{Deserialize, Serialize};
use std::fmt;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum TrainMode {
    /// Every parameter (the paper).
    Full,
    /// Only the head: a probe on a frozen encoder (paper Table 4).
    Head,
    /// Every LayerNorm's weight and bias (embeddings' included).
    LayerNorm,
    /// Every bias, LayerNorm biases included (BitFit).
    Bias,
    /// q, k, v, o weights and biases of every layer.
    Attention,
    /// ffn_in and ffn_out weights and biases of every layer.
    Ffn,
    /// Every tensor of the chosen encoder layers.
    Layers(LayerSpec),
    /// Per LayerNorm, the N dimensions whose weight lies farthest from that LayerNorm's mean
    /// weight (weight and bias at those dimensions); nothing else of it.
    LnOutliers(usize),
}

impl TrainMode {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let t = text.trim();
        Ok(match t {
            "full" => TrainMode::Full,
            "head" => TrainMode::Head,
            "layernorm" => TrainMode::LayerNorm,
            "bias" => TrainMode::Bias,
            "attention" => TrainMode::Attention,
            "ffn" => TrainMode::Ffn,
            _ => {
                if let Some(spec) = t.strip_prefix("layers:") {
                    let spec = if spec.contains(':') || spec == "all" {
                        spec.to_string()
                    } else {
                        format!("layers:{spec}")
                    };
                    TrainMode::Layers(LayerSpec::parse(&spec)?)
                } else if let Some(n) = t.strip_prefix("ln-outliers:") {
                    let n: usize = n.parse().map_err(|_| {
                        user(format!("--train {t:?}: ln-outliers takes a whole number"))
                    })?;
                    if n == 0 {
                        return Err(user(format!(
                            "--train {t:?}: 0 dimensions trains no LayerNorm; use head"
                        )));
                    }
                    TrainMode::LnOutliers(n)
                } else {
                    return Err(user(format!(
                        "--train {t:?}: use full, head, layernorm, bias, attention, ffn, layers:SPEC (e.g. layers:1-3 or layers:top:2) or ln-outliers:N"
                    )));
                }
            }
        })
    }
}

impl fmt::Display for TrainMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainMode::Full => write!(f, "full"),
            TrainMode::Head => write!(f, "head"),
            TrainMode::LayerNorm => write!(f, "layernorm"),
            TrainMode::Bias => write!(f, "bias"),
            TrainMode::Attention => write!(f, "attention"),
            TrainMode::Ffn => write!(f, "ffn"),
            TrainMode::Layers(spec) => match spec {
                LayerSpec::Layers(_) => write!(
                    f,
                    "layers:{}",
                    spec.to_string().trim_start_matches("layers:")
                ),
                other => write!(f, "layers:{other}"),
            },
            TrainMode::LnOutliers(n) => write!(f, "ln-outliers:{n}"),
        }
    }
}

crate::string_serde!(TrainMode);

/// A tensor that trains only where `mask` is 1.
pub struct PartialTensor {
    pub name: String,
    var: Tensor,
    mask: Tensor,
    frozen_values: Tensor,
}

/// The outcome of choosing trainable parameters.
pub struct Trainable {
    /// Tensors that train whole.
    pub full: Vec<String>,
    /// Tensors that train in part.
    pub partial: Vec<PartialTensor>,
    pub count: i64,
    pub total: i64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TrainableFacts {
    pub mode: String,
    pub trainable: i64,
    pub total: i64,
    pub fraction: f64,
    pub tensors: usize,
    pub partial_tensors: usize,
}

impl Trainable {
    pub fn facts(&self, mode: &TrainMode) -> TrainableFacts {
        TrainableFacts {
            mode: mode.to_string(),
            trainable: self.count,
            total: self.total,
            fraction: self.count as f64 / self.total.max(1) as f64,
            tensors: self.full.len(),
            partial_tensors: self.partial.len(),
        }
    }

    /// `grad` with the frozen entries of `var` zeroed, when `var` is a partially trainable
    /// tensor (None otherwise).
    pub fn masked_gradient(&self, var: &Tensor, grad: &Tensor) -> Option<Tensor> {
        self.partial
            .iter()
            .find(|p| p.var.data_ptr() == var.data_ptr())
            .map(|p| grad * &p.mask)
    }

    /// Puts back the frozen entries of partial tensors (so that no optimiser term, weight decay
    /// included, moves them).
    pub fn restore_frozen_entries(&self) {
        tch::no_grad(|| {
            for p in &self.partial {
                let kept = p
                    .var
                    .where_self(&p.mask.to_kind(Kind::Bool), &p.frozen_values);
                p.var.shallow_clone().copy_(&kept);
            }
        });
    }
}

fn numel(t: &Tensor) -> i64 {
    t.numel() as i64
}

/// Chooses the trainable parameters for `mode` and freezes the rest (requires_grad = false).
pub fn apply(mode: &TrainMode, model: &SequenceClassifier) -> anyhow::Result<Trainable> {
    let vars = model.vs.variables();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    let layout = Layout::of(model.config.family);
    let head_prefixes = Head::tensor_prefixes(model.config.family);
    let is_head = |n: &str| head_prefixes.iter().any(|p| n.starts_with(p));
    // The part of a name after `<prefix>.<layers>.<i>.`, e.g. `attention.output.dense.weight`
    // (matching on that whole remainder keeps ffn_out's `output.dense` from matching `o`).
    let layers_root = format!("{}.{}.", model.config.family.prefix(), layout.layers);
    let in_layer = |n: &str| -> Option<String> {
        let rest = n.strip_prefix(&layers_root)?;
        rest.split_once('.').map(|(_, local)| local.to_string())
    };
    let in_modules = |n: &str, modules: &[Module]| {
        in_layer(n).is_some_and(|local| {
            modules
                .iter()
                .any(|m| local.starts_with(&format!("{}.", m.local_name(layout))))
        })
    };
    let layer_set: Option<Vec<String>> = match mode {
        TrainMode::Layers(spec) => {
            let layers = spec.resolve(model.config.num_layers as usize)?;
            Some(
                layers
                    .iter()
                    .map(|&l| format!("{}.", layout.layer_path(l as i64 - 1)))
                    .collect(),
            )
        }
        _ => None,
    };
    let whole = |n: &str| -> bool {
        if is_head(n) {
            return true;
        }
        match mode {
            TrainMode::Full => true,
            TrainMode::Head | TrainMode::LnOutliers(_) => false,
            TrainMode::LayerNorm => select::is_layer_norm(n),
            TrainMode::Bias => n.ends_with(".bias"),
            TrainMode::Attention => in_modules(n, &[Module::Q, Module::K, Module::V, Module::O]),
            TrainMode::Ffn => in_modules(n, &[Module::FfnIn, Module::FfnOut]),
            TrainMode::Layers(_) => layer_set
                .as_ref()
                .is_some_and(|s| s.iter().any(|p| n.starts_with(p))),
        }
    };
    let mut out = Trainable {
        full: vec![],
        partial: vec![],
        count: 0,
        total: 0,
    };
    for name in names {
        let var = &vars[name];
        out.total += numel(var);
        if whole(name) {
            out.full.push(name.clone());
            out.count += numel(var);
            continue;
        }
        let _ = var.shallow_clone().set_requires_grad(false);
    }
    if let TrainMode::LnOutliers(n) = mode {
        let mut ln_weights: Vec<&String> = vars
            .keys()
            .filter(|k| select::is_layer_norm(k) && k.ends_with(".weight") && !is_head(k))
            .collect();
        ln_weights.sort();
        for w_name in ln_weights {
            let w = &vars[w_name];
            let dim = w.size()[0];
            let k = (*n as i64).min(dim);
            let distance = (w.detach() - w.detach().mean(Kind::Float)).abs();
            let (_, idx) = distance.topk(k, 0, true, true);
            let mask = w.zeros_like().index_fill(0, &idx, 1.0);
            let b_name = format!("{}.bias", w_name.trim_end_matches(".weight"));
            for name in [w_name.clone(), b_name] {
                let var = vars
                    .get(&name)
                    .ok_or_else(|| anyhow::anyhow!("LayerNorm {name} has no tensor"))?;
                let _ = var.shallow_clone().set_requires_grad(true);
                out.count += k;
                out.partial.push(PartialTensor {
                    name,
                    var: var.shallow_clone(),
                    mask: mask.shallow_clone(),
                    frozen_values: var.detach().copy(),
                });
            }
        }
    }
    Ok(out)
}
