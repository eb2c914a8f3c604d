//! Sequence-classification heads, each exactly as HF's *ForSequenceClassification of its family,
//! and the pooling that picks the vector they read.

use super::config::{EncoderConfig, Family};
use super::dropout;
use super::encoder::linear;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// Which vector of the last layer the head reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The first token ([CLS] / <s>), as HF does.
    #[default]
    Cls,
    /// The mean of the non-[CLS], non-padding tokens (the paper's "average token" variant).
    Mean,
}

impl Pooling {
    /// Picks the pooled [batch, hidden] vector from the last layer's [batch, seq, hidden] output.
    pub fn pool(self, last: &Tensor, attention_mask: &Tensor) -> Tensor {
        match self {
            Pooling::Cls => last.select(1, 0),
            Pooling::Mean => {
                let mask = attention_mask
                    .narrow(1, 1, attention_mask.size()[1] - 1)
                    .to_kind(last.kind());
                let tokens = last.narrow(1, 1, last.size()[1] - 1);
                let sum = (tokens * mask.unsqueeze(-1)).sum_dim_intlist(1, false, last.kind());
                let count = mask.sum_dim_intlist(1, true, last.kind()).clamp_min(1.0);
                sum / count
            }
        }
    }
}

/// The classifier on top of the pooled vector.
#[derive(Debug)]
pub enum Head {
    /// `bert.pooler.dense` + tanh, dropout, `classifier`.
    Bert {
        pooler: nn::Linear,
        classifier: nn::Linear,
        dropout: f64,
    },
    /// `pre_classifier` + ReLU, dropout, `classifier`.
    DistilBert {
        pre_classifier: nn::Linear,
        classifier: nn::Linear,
        dropout: f64,
    },
    /// dropout, `classifier.dense` + tanh, dropout, `classifier.out_proj`.
    Roberta {
        dense: nn::Linear,
        out_proj: nn::Linear,
        dropout: f64,
    },
}

impl Head {
    pub fn new(root: &nn::Path, cfg: &EncoderConfig, num_labels: i64) -> Self {
        let h = cfg.hidden_size;
        let dropout = cfg.classifier_dropout;
        match cfg.family {
            Family::Bert => Head::Bert {
                pooler: linear(root, "bert.pooler.dense", h, h, cfg),
                classifier: linear(root, "classifier", h, num_labels, cfg),
                dropout,
            },
            Family::DistilBert => Head::DistilBert {
                pre_classifier: linear(root, "pre_classifier", h, h, cfg),
                classifier: linear(root, "classifier", h, num_labels, cfg),
                dropout,
            },
            Family::Roberta => Head::Roberta {
                dense: linear(root, "classifier.dense", h, h, cfg),
                out_proj: linear(root, "classifier.out_proj", h, num_labels, cfg),
                dropout,
            },
        }
    }

    /// Tensor-name prefixes that belong to the head (always trained, re-created when the
    /// checkpoint has none or has one for another number of labels).
    pub fn tensor_prefixes(family: Family) -> &'static [&'static str] {
        match family {
            Family::Bert => &["bert.pooler.", "classifier."],
            Family::DistilBert => &["pre_classifier.", "classifier."],
            Family::Roberta => &["classifier."],
        }
    }

    pub fn forward_t(&self, pooled: &Tensor, train: bool) -> Tensor {
        match self {
            Head::Bert {
                pooler,
                classifier,
                dropout,
            } => {
                let x = dropout::apply(&pooler.forward(pooled).tanh(), *dropout, train);
                classifier.forward(&x)
            }
            Head::DistilBert {
                pre_classifier,
                classifier,
                dropout,
            } => {
                let x = dropout::apply(&pre_classifier.forward(pooled).relu(), *dropout, train);
                classifier.forward(&x)
            }
            Head::Roberta {
                dense,
                out_proj,
                dropout,
            } => {
                let x = dropout::apply(pooled, *dropout, train);
                let x = dropout::apply(&dense.forward(&x).tanh(), *dropout, train);
                out_proj.forward(&x)
            }
        }
    }
}

/// Softmax-free argmax over logits, as i64 class indices.
pub fn predictions(logits: &Tensor) -> Tensor {
    logits.argmax(-1, false).to_kind(Kind::Int64)
}
