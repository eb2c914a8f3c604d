//! Where a tensor sits in the model: its layer, module, part and histogram group, from its
//! normalised name.

use super::config::Family;
use super::layout::Layout;
use crate::corrupt::select::ALL_MODULES;
use serde::{Deserialize, Serialize};

/// Histogram groups, in the order of the figure's panels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
