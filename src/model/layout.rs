//! Where each family keeps its tensors: the checkpoint's own names, in one table per family.
//!
//! The short module names (q, k, v, o, ffn_in, ffn_out, ln_attn, ln_ffn) are the ones the rest
//! of the tool speaks; this table is the only place that maps them to a family's names.

use super::config::Family;

/// Tensor-name table for one family, relative to the family prefix (`bert.`, `distilbert.`, ...).
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub family: Family,
    /// Folder of the encoder layers: `{layers}.{i}.` starts layer i (0-based in names).
    pub layers: &'static str,
    pub word_embeddings: &'static str,
    pub position_embeddings: &'static str,
    /// None for families without segment embeddings.
    pub token_type_embeddings: Option<&'static str>,
    pub embeddings_layer_norm: &'static str,
    pub q: &'static str,
    pub k: &'static str,
    pub v: &'static str,
    pub o: &'static str,
    pub ln_attn: &'static str,
    pub ffn_in: &'static str,
    pub ffn_out: &'static str,
    pub ln_ffn: &'static str,
    /// BERT applies dropout to the attention output projection; DistilBERT does not.
    pub dropout_after_attention_output: bool,
}

pub const BERT: Layout = Layout {
    family: Family::Bert,
    layers: "encoder.layer",
    word_embeddings: "embeddings.word_embeddings",
    position_embeddings: "embeddings.position_embeddings",
    token_type_embeddings: Some("embeddings.token_type_embeddings"),
    embeddings_layer_norm: "embeddings.LayerNorm",
    q: "attention.self.query",
    k: "attention.self.key",
    v: "attention.self.value",
    o: "attention.output.dense",
    ln_attn: "attention.output.LayerNorm",
    ffn_in: "intermediate.dense",
    ffn_out: "output.dense",
    ln_ffn: "output.LayerNorm",
    dropout_after_attention_output: true,
};

pub const ROBERTA: Layout = Layout {
    family: Family::Roberta,
    ..BERT
};

pub const DISTILBERT: Layout = Layout {
    family: Family::DistilBert,
    layers: "transformer.layer",
    word_embeddings: "embeddings.word_embeddings",
    position_embeddings: "embeddings.position_embeddings",
    token_type_embeddings: None,
    embeddings_layer_norm: "embeddings.LayerNorm",
    q: "attention.q_lin",
    k: "attention.k_lin",
    v: "attention.v_lin",
    o: "attention.out_lin",
    ln_attn: "sa_layer_norm",
    ffn_in: "ffn.lin1",
    ffn_out: "ffn.lin2",
    ln_ffn: "output_layer_norm",
    dropout_after_attention_output: false,
};

impl Layout {
    pub fn of(family: Family) -> &'static Layout {
        match family {
            Family::Bert => &BERT,
            Family::Roberta => &ROBERTA,
            Family::DistilBert => &DISTILBERT,
        }
    }

    /// Full name of encoder layer `index` (0-based), e.g. `bert.encoder.layer.3`.
    pub fn layer_path(&self, index: i64) -> String {
        format!("{}.{}.{}", self.family.prefix(), self.layers, index)
    }
}
