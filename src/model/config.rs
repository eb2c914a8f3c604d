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
        let raw: serde_json::Value = serde_json::from_str(crate::bom::strip(&text))
            .map_err(|e| user(format!("{}: not valid JSON ({e})", path.display())))?;
        let config = Self::from_json(raw, path)?;
        config.check_consistency(path)?;
        Ok(config)
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

/// The dtypes a checkpoint's config.json may declare: heal reads every floating-point
/// checkpoint into float32 weights; integer or 8-bit dtypes mean a quantised checkpoint.
const SUPPORTED_DTYPES: &[&str] = &["float32", "float16", "bfloat16", "float64"];

/// config.json's name of each shape field, per family (for error messages).
struct FieldNames {
    vocab: &'static str,
    hidden: &'static str,
    layers: &'static str,
    heads: &'static str,
    intermediate: &'static str,
}

impl FieldNames {
    fn of(family: Family) -> Self {
        match family {
            Family::DistilBert => FieldNames {
                vocab: "vocab_size",
                hidden: "dim",
                layers: "n_layers",
                heads: "n_heads",
                intermediate: "hidden_dim",
            },
            Family::Bert | Family::Roberta => FieldNames {
                vocab: "vocab_size",
                hidden: "hidden_size",
                layers: "num_hidden_layers",
                heads: "num_attention_heads",
                intermediate: "intermediate_size",
            },
        }
    }
}

impl EncoderConfig {
    /// Checks that the numbers describe an encoder heal can build, before any tensor exists:
    /// a config.json that parses but does not (heads that do not divide the hidden size, no
    /// layers, a quantised dtype) would otherwise fail inside libtorch, or train nothing.
    pub fn check_consistency(&self, path: &Path) -> anyhow::Result<()> {
        let names = FieldNames::of(self.family);
        let bad = |msg: String| Err(user(format!("{}: {msg}", path.display())));
        for (field, value) in [
            (names.vocab, self.vocab_size),
            (names.hidden, self.hidden_size),
            (names.heads, self.num_heads),
            (names.intermediate, self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if value < 1 {
                return bad(format!("{field} is {value}: it must be a positive number"));
            }
        }
        if self.num_layers < 1 {
            return bad(format!(
                "{} is {}: the encoder needs at least one layer",
                names.layers, self.num_layers
            ));
        }
        if self.hidden_size % self.num_heads != 0 {
            return bad(format!(
                "{} {} does not divide {} {}: each attention head takes an equal share of the hidden size",
                names.heads, self.num_heads, names.hidden, self.hidden_size
            ));
        }
        if self.family != Family::DistilBert && self.type_vocab_size < 1 {
            return bad(format!(
                "type_vocab_size is {}: it must be a positive number",
                self.type_vocab_size
            ));
        }
        if !(0..self.vocab_size).contains(&self.pad_token_id) {
            return bad(format!(
                "pad_token_id {} is outside the vocabulary (vocab_size {})",
                self.pad_token_id, self.vocab_size
            ));
        }
        if self.max_tokens() < 3 {
            return bad(format!(
                "max_position_embeddings {} leaves room for fewer than 3 tokens ([CLS] text [SEP])",
                self.max_position_embeddings
            ));
        }
        for (field, p) in [
            ("hidden dropout", self.hidden_dropout),
            ("attention dropout", self.attention_dropout),
            ("classifier dropout", self.classifier_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(format!("{field} probability {p} must be in [0, 1)"));
            }
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite()) {
            return bad(format!(
                "layer_norm_eps {} must be a positive number",
                self.layer_norm_eps
            ));
        }
        if !(self.initializer_range >= 0.0 && self.initializer_range.is_finite()) {
            return bad(format!(
                "initializer_range {} must be a number of 0 or more",
                self.initializer_range
            ));
        }
        for field in ["torch_dtype", "dtype"] {
            match self.raw.get(field) {
                None | Some(serde_json::Value::Null) => {}
                Some(serde_json::Value::String(d)) if SUPPORTED_DTYPES.contains(&d.as_str()) => {}
                Some(other) => {
                    return bad(format!(
                        "{field} {other} is not supported: heal loads {} checkpoints",
                        SUPPORTED_DTYPES.join(", ")
                    ))
                }
            }
        }
        Ok(())
    }
}
