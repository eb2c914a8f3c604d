//! HF config.json, read field for field per family, and the few numbers the encoder needs.

use crate::error::user;
use serde::Deserialize;
use std::path::Path;

/// The model families this tool can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// BERT and BERT-shaped checkpoints (MiniLM included).
    Bert,
    DistilBert,
    Roberta,
}

impl Family {
    /// The prefix HF's *ForSequenceClassification puts before the encoder's tensors.
    pub fn prefix(self) -> &'static str {
        match self {
            Family::Bert => "bert",
            Family::DistilBert => "distilbert",
            Family::Roberta => "roberta",
        }
    }

    /// The architecture name HF transformers instantiates for classification.
    pub fn classifier_architecture(self) -> &'static str {
        match self {
            Family::Bert => "BertForSequenceClassification",
            Family::DistilBert => "DistilBertForSequenceClassification",
            Family::Roberta => "RobertaForSequenceClassification",
        }
    }
}

/// BERT's and RoBERTa's config.json (the fields this tool reads).
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub intermediate_size: i64,
    #[serde(default = "default_gelu")]
    pub hidden_act: String,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    #[serde(default)]
    pub classifier_dropout: Option<f64>,
    pub max_position_embeddings: i64,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: i64,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: Option<i64>,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

/// DistilBERT's config.json (the fields this tool reads).
#[derive(Debug, Clone, Deserialize)]
pub struct DistilBertConfig {
    pub vocab_size: i64,
    pub dim: i64,
    pub n_layers: i64,
    pub n_heads: i64,
    pub hidden_dim: i64,
    #[serde(default = "default_gelu")]
    pub activation: String,
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    #[serde(default = "default_dropout")]
    pub attention_dropout: f64,
    #[serde(default = "default_seq_classif_dropout")]
    pub seq_classif_dropout: f64,
    pub max_position_embeddings: i64,
    #[serde(default)]
    pub sinusoidal_pos_embds: bool,
    #[serde(default)]
    pub pad_token_id: Option<i64>,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
}

fn default_gelu() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_seq_classif_dropout() -> f64 {
    0.2
}
fn default_type_vocab() -> i64 {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_init_range() -> f64 {
    0.02
}

/// Family-independent view of a checkpoint's shape, plus the raw JSON (kept so that a saved
/// checkpoint carries every field the original had).
#[derive(Debug, Clone)]
pub struct EncoderConfig {
    pub family: Family,
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub num_layers: i64,
    pub num_heads: i64,
    pub intermediate_size: i64,
    pub activation: Activation,
    pub hidden_dropout: f64,
    pub attention_dropout: f64,
    /// Dropout in front of the classifier (BERT: classifier_dropout or hidden_dropout_prob;
    /// DistilBERT: seq_classif_dropout; RoBERTa as BERT).
    pub classifier_dropout: f64,
    pub max_position_embeddings: i64,
    pub type_vocab_size: i64,
    pub layer_norm_eps: f64,
    pub pad_token_id: i64,
    pub initializer_range: f64,
    pub raw: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU (erf), HF's "gelu".
    Gelu,
    /// tanh approximation, HF's "gelu_new" / "gelu_pytorch_tanh".
    GeluTanh,
    Relu,
}

impl Activation {
    fn parse(name: &str, file: &Path) -> anyhow::Result<Self> {
        match name {
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
            "relu" => Ok(Activation::Relu),
            other => Err(user(format!(
                "{}: activation {other:?} is not supported: use gelu, gelu_new or relu",
                file.display()
            ))),
        }
    }
}

impl EncoderConfig {
    /// Reads `config.json` from a checkpoint folder.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            user(format!(
                "{}: cannot read the model config ({e})",
                path.display()
            ))
        })?;
        let raw: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| user(format!("{}: not valid JSON ({e})", path.display())))?;
        Self::from_json(raw, path)
    }

    pub fn from_json(raw: serde_json::Value, path: &Path) -> anyhow::Result<Self> {
        let model_type = raw.get("model_type").and_then(|v| v.as_str()).unwrap_or("");
        let field_err = |e: serde_json::Error| {
            user(format!(
                "{}: {model_type} config is missing or has a bad field ({e})",
                path.display()
            ))
        };
        match model_type {
            "bert" | "roberta" => {
                let c: BertConfig = serde_json::from_value(raw.clone()).map_err(field_err)?;
                let family = if model_type == "bert" { Family::Bert } else { Family::Roberta };
                if let Some(kind) = c.position_embedding_type.as_deref() {
                    if kind != "absolute" {
                        return Err(user(format!(
                            "{}: position_embedding_type {kind:?} is not supported (only \"absolute\")",
                            path.display()
                        )));
                    }
                }
                let default_pad = if family == Family::Roberta { 1 } else { 0 };
                Ok(EncoderConfig {
                    family,
                    vocab_size: c.vocab_size,
                    hidden_size: c.hidden_size,
                    num_layers: c.num_hidden_layers,
                    num_heads: c.num_attention_heads,
                    intermediate_size: c.intermediate_size,
                    activation: Activation::parse(&c.hidden_act, path)?,
                    hidden_dropout: c.hidden_dropout_prob,
                    attention_dropout: c.attention_probs_dropout_prob,
                    classifier_dropout: c.classifier_dropout.unwrap_or(c.hidden_dropout_prob),
                    max_position_embeddings: c.max_position_embeddings,
                    type_vocab_size: c.type_vocab_size,
                    layer_norm_eps: c.layer_norm_eps,
                    pad_token_id: c.pad_token_id.unwrap_or(default_pad),
                    initializer_range: c.initializer_range,
                    raw,
                })
            }
            "distilbert" => {
                let c: DistilBertConfig = serde_json::from_value(raw.clone()).map_err(field_err)?;
                if c.sinusoidal_pos_embds {
                    return Err(user(format!(
                        "{}: sinusoidal_pos_embds=true is not supported",
                        path.display()
                    )));
                }
                Ok(EncoderConfig {
                    family: Family::DistilBert,
                    vocab_size: c.vocab_size,
                    hidden_size: c.dim,
                    num_layers: c.n_layers,
                    num_heads: c.n_heads,
                    intermediate_size: c.hidden_dim,
                    activation: Activation::parse(&c.activation, path)?,
                    hidden_dropout: c.dropout,
                    attention_dropout: c.attention_dropout,
                    classifier_dropout: c.seq_classif_dropout,
                    max_position_embeddings: c.max_position_embeddings,
                    type_vocab_size: 0,
                    layer_norm_eps: 1e-12,
                    pad_token_id: c.pad_token_id.unwrap_or(0),
                    initializer_range: c.initializer_range,
                    raw,
                })
            }
            "" => Err(user(format!(
                "{}: no \"model_type\" field: add one of \"bert\", \"distilbert\", \"roberta\"",
                path.display()
            ))),
            other => Err(user(format!(
                "{}: model_type {other:?} is not supported: heal loads bert, distilbert and roberta checkpoints",
                path.display()
            ))),
        }
    }

    /// The longest input the position embeddings allow (RoBERTa spends pad_token_id + 1 rows
    /// before the first position).
    pub fn max_tokens(&self) -> usize {
        let offset = if self.family == Family::Roberta {
            self.pad_token_id + 1
        } else {
            0
        };
        (self.max_position_embeddings - offset).max(0) as usize
    }

    /// Whether the family feeds token type ids to the encoder.
    pub fn uses_token_types(&self) -> bool {
        self.family != Family::DistilBert && self.type_vocab_size > 1
    }
}
