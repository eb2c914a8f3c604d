//! Which tensors inside the chosen layers: module names shared by every family (q, k, v, o,
//! ffn_in, ffn_out, ln_attn, ln_ffn), mapped to each family's own tensor names by
//! [`Layout`](crate::model::layout::Layout), plus the optional embeddings and pooler.

use crate::error::user;
use crate::model::config::{EncoderConfig, Family};
use crate::model::layout::Layout;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Module {
    Q,
    K,
    V,
    O,
    FfnIn,
    FfnOut,
    LnAttn,
    LnFfn,
}

pub const ALL_MODULES: [Module; 8] = [
    Module::Q,
    Module::K,
    Module::V,
    Module::O,
    Module::FfnIn,
    Module::FfnOut,
    Module::LnAttn,
    Module::LnFfn,
];

impl Module {
    pub fn name(self) -> &'static str {
        match self {
            Module::Q => "q",
            Module::K => "k",
            Module::V => "v",
            Module::O => "o",
            Module::FfnIn => "ffn_in",
            Module::FfnOut => "ffn_out",
            Module::LnAttn => "ln_attn",
            Module::LnFfn => "ln_ffn",
        }
    }

    /// The family's name for this module inside a layer (e.g. BERT's q = attention.self.query).
    pub fn local_name(self, layout: &Layout) -> &'static str {
        match self {
            Module::Q => layout.q,
            Module::K => layout.k,
            Module::V => layout.v,
            Module::O => layout.o,
            Module::FfnIn => layout.ffn_in,
            Module::FfnOut => layout.ffn_out,
            Module::LnAttn => layout.ln_attn,
            Module::LnFfn => layout.ln_ffn,
        }
    }

    pub fn is_layer_norm(self) -> bool {
        matches!(self, Module::LnAttn | Module::LnFfn)
    }
}

/// `all`, `attention` (q,k,v,o), `ffn` (ffn_in,ffn_out), `layernorm` (ln_attn,ln_ffn), or a
/// comma-separated list of module names.
pub fn parse_modules(text: &str) -> anyhow::Result<Vec<Module>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "all" => out.extend(ALL_MODULES),
            "attention" => out.extend([Module::Q, Module::K, Module::V, Module::O]),
            "ffn" => out.extend([Module::FfnIn, Module::FfnOut]),
            "layernorm" => out.extend([Module::LnAttn, Module::LnFfn]),
            name => match ALL_MODULES.iter().find(|m| m.name() == name) {
                Some(m) => out.push(*m),
                None => {
                    return Err(user(format!(
                        "--modules {text:?}: unknown module {name:?}; use all, attention, ffn, layernorm or a list of q,k,v,o,ffn_in,ffn_out,ln_attn,ln_ffn"
                    )))
                }
            },
        }
    }
    if out.is_empty() {
        return Err(user(format!("--modules {text:?}: names no module")));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Parts outside the encoder layers that `--include` can add.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Include {
    pub embeddings: bool,
    pub pooler: bool,
}

impl Include {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut inc = Include::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "embeddings" => inc.embeddings = true,
                "pooler" => inc.pooler = true,
                "none" => {}
                other => {
                    return Err(user(format!(
                    "--include {text:?}: unknown part {other:?}; use embeddings, pooler or both"
                )))
                }
            }
        }
        Ok(inc)
    }
}

/// Weight and bias names of `modules` in 1-based encoder layer `layer`.
pub fn layer_tensors(layout: &Layout, layer: usize, modules: &[Module]) -> Vec<String> {
    let base = layout.layer_path(layer as i64 - 1);
    modules
        .iter()
        .flat_map(|m| {
            let local = m.local_name(layout);
            [
                format!("{base}.{local}.weight"),
                format!("{base}.{local}.bias"),
            ]
        })
        .collect()
}

/// Every tensor of the embeddings block.
pub fn embeddings_tensors(layout: &Layout, cfg: &EncoderConfig) -> Vec<String> {
    let p = cfg.family.prefix();
    let mut names = vec![
        format!("{p}.{}.weight", layout.word_embeddings),
        format!("{p}.{}.weight", layout.position_embeddings),
    ];
    if let (Some(tt), true) = (layout.token_type_embeddings, cfg.type_vocab_size > 0) {
        names.push(format!("{p}.{tt}.weight"));
    }
    names.push(format!("{p}.{}.weight", layout.embeddings_layer_norm));
    names.push(format!("{p}.{}.bias", layout.embeddings_layer_norm));
    names
}

/// The pooler's tensors (BERT only: DistilBERT has none, RoBERTa's classifier.dense is its head).
pub fn pooler_tensors(family: Family) -> anyhow::Result<Vec<String>> {
    match family {
        Family::Bert => Ok(vec![
            "bert.pooler.dense.weight".into(),
            "bert.pooler.dense.bias".into(),
        ]),
        other => Err(user(format!(
            "--include pooler: a {} checkpoint has no pooler",
            other.prefix()
        ))),
    }
}

/// How re-initialisation treats a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    LayerNormWeight,
    Bias,
    Weight,
}

/// The role of a tensor by its (normalised) name.
pub fn role(name: &str) -> Role {
    if name.ends_with(".bias") {
        Role::Bias
    } else if is_layer_norm(name) {
        Role::LayerNormWeight
    } else {
        Role::Weight
    }
}

/// Whether a tensor belongs to a LayerNorm, in any family's naming.
pub fn is_layer_norm(name: &str) -> bool {
    name.contains("LayerNorm") || name.contains("layer_norm")
}
