//! The transformer encoder shared by BERT, RoBERTa and DistilBERT: embeddings, layers and
//! per-layer hidden states. Dropout is active only when `train` is true.

use super::config::{Activation, EncoderConfig, Family};
use super::dropout;
use super::layout::Layout;
use super::precision::{self, to_f32};
use std::sync::atomic::{AtomicBool, Ordering};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

/// Descends a var-store path along a dotted tensor-name prefix (`a.b.c`).
pub fn sub<'a>(path: &nn::Path<'a>, dotted: &str) -> nn::Path<'a> {
    let mut parts = dotted.split('.');
    let first = parts.next().unwrap_or_default();
    parts.fold(path.sub(first), |p, part| p.sub(part))
}

/// A linear layer initialised as HF does (normal(0, initializer_range), zero bias); the
/// checkpoint's values replace these on load.
pub fn linear(
    path: &nn::Path,
    dotted: &str,
    input: i64,
    output: i64,
    cfg: &EncoderConfig,
) -> nn::Linear {
    let init = nn::LinearConfig {
        ws_init: nn::Init::Randn {
            mean: 0.0,
            stdev: cfg.initializer_range,
        },
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    nn::linear(sub(path, dotted), input, output, init)
}

fn layer_norm(path: &nn::Path, dotted: &str, cfg: &EncoderConfig) -> nn::LayerNorm {
    let c = nn::LayerNormConfig {
        eps: cfg.layer_norm_eps,
        ..Default::default()
    };
    nn::layer_norm(sub(path, dotted), vec![cfg.hidden_size], c)
}

fn embedding(path: &nn::Path, dotted: &str, rows: i64, cfg: &EncoderConfig) -> nn::Embedding {
    let c = nn::EmbeddingConfig {
        ws_init: nn::Init::Randn {
            mean: 0.0,
            stdev: cfg.initializer_range,
        },
        ..Default::default()
    };
    nn::embedding(sub(path, dotted), rows, cfg.hidden_size, c)
}

fn activate(xs: &Tensor, act: Activation) -> Tensor {
    match act {
        Activation::Gelu => xs.gelu("none"),
        Activation::GeluTanh => xs.gelu("tanh"),
        Activation::Relu => xs.relu(),
    }
}

/// Word + position (+ token type) embeddings, LayerNorm, dropout.
#[derive(Debug)]
pub struct Embeddings {
    word: nn::Embedding,
    position: nn::Embedding,
    token_type: Option<nn::Embedding>,
    layer_norm: nn::LayerNorm,
    dropout: f64,
    /// RoBERTa numbers positions from pad_token_id + 1 and gives padding the pad position.
    roberta_padding_idx: Option<i64>,
    /// The word embeddings' gradient as a sparse tensor (the rows of the batch's tokens only);
    /// see [`crate::train::fused`].
    pub sparse_grad: AtomicBool,
}

impl Embeddings {
    pub fn new(root: &nn::Path, layout: &Layout, cfg: &EncoderConfig) -> Self {
        let token_type = match layout.token_type_embeddings {
            Some(name) if cfg.type_vocab_size > 0 => {
                Some(embedding(root, name, cfg.type_vocab_size, cfg))
            }
            _ => None,
        };
        Embeddings {
            word: embedding(root, layout.word_embeddings, cfg.vocab_size, cfg),
            position: embedding(
                root,
                layout.position_embeddings,
                cfg.max_position_embeddings,
                cfg,
            ),
            token_type,
            layer_norm: layer_norm(root, layout.embeddings_layer_norm, cfg),
            dropout: cfg.hidden_dropout,
            roberta_padding_idx: (cfg.family == Family::Roberta).then_some(cfg.pad_token_id),
            sparse_grad: AtomicBool::new(false),
        }
    }

    pub fn forward_t(&self, input_ids: &Tensor, token_type_ids: &Tensor, train: bool) -> Tensor {
        let seq_len = input_ids.size()[1];
        let positions = match self.roberta_padding_idx {
            Some(pad) => {
                let mask = input_ids.ne(pad).to_kind(Kind::Int64);
                mask.cumsum(1, Kind::Int64) * &mask + pad
            }
            None => Tensor::arange(seq_len, (Kind::Int64, input_ids.device())).unsqueeze(0),
        };
        let sparse = self.sparse_grad.load(Ordering::Relaxed);
        let words = Tensor::embedding(&self.word.ws, input_ids, -1, false, sparse);
        let xs = words + self.position.forward(&positions);
        // Out of place: `+=` would write into a tensor autograd has already recorded.
        let xs = match &self.token_type {
            Some(tt) => xs + tt.forward(token_type_ids),
            None => xs,
        };
        dropout::apply(&self.layer_norm.forward(&xs), self.dropout, train)
    }
}

/// One encoder layer: self-attention, residual + LayerNorm, feed-forward, residual + LayerNorm.
#[derive(Debug)]
pub struct Layer {
    q: nn::Linear,
    k: nn::Linear,
    v: nn::Linear,
    o: nn::Linear,
    ln_attn: nn::LayerNorm,
    ffn_in: nn::Linear,
    ffn_out: nn::Linear,
    ln_ffn: nn::LayerNorm,
    num_heads: i64,
    activation: Activation,
    hidden_dropout: f64,
    attention_dropout: f64,
    dropout_after_attention_output: bool,
}

impl Layer {
    pub fn new(path: &nn::Path, layout: &Layout, cfg: &EncoderConfig) -> Self {
        let h = cfg.hidden_size;
        Layer {
            q: linear(path, layout.q, h, h, cfg),
            k: linear(path, layout.k, h, h, cfg),
            v: linear(path, layout.v, h, h, cfg),
            o: linear(path, layout.o, h, h, cfg),
            ln_attn: layer_norm(path, layout.ln_attn, cfg),
            ffn_in: linear(path, layout.ffn_in, h, cfg.intermediate_size, cfg),
            ffn_out: linear(path, layout.ffn_out, cfg.intermediate_size, h, cfg),
            ln_ffn: layer_norm(path, layout.ln_ffn, cfg),
            num_heads: cfg.num_heads,
            activation: cfg.activation,
            hidden_dropout: cfg.hidden_dropout,
            attention_dropout: cfg.attention_dropout,
            dropout_after_attention_output: layout.dropout_after_attention_output,
        }
    }

    /// `mask` is a boolean [batch, 1, 1, seq] tensor, true where a key may be attended to.
    pub fn forward_t(&self, xs: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let (b, s, h) = xs.size3().expect("hidden states are [batch, seq, hidden]");
        let heads = |t: Tensor| {
            t.view([b, s, self.num_heads, h / self.num_heads])
                .transpose(1, 2)
        };
        // Under bf16 the products below run in bfloat16 (attention included); LayerNorm,
        // residual sums and dropout stay float32.
        // Under bf16, q, k and v as one product of the stacked weights (the weights are cast
        // anyway, and a wider bf16 product is faster: 111 -> 132 ex/s on minilm-l6 + SST-2);
        // under fp32 the stacking costs more than it saves, so three products.
        let (q, k, v) = if precision::current() == precision::Precision::Bf16 {
            let mut qkv = precision::fused_linear(&[&self.q, &self.k, &self.v], xs).into_iter();
            let mut next = || heads(qkv.next().expect("three projections"));
            (next(), next(), next())
        } else {
            (
                heads(precision::linear(&self.q, xs)),
                heads(precision::linear(&self.k, xs)),
                heads(precision::linear(&self.v, xs)),
            )
        };
        let context = if train && self.attention_dropout > 0.0 && xs.device() == Device::Cpu {
            // libtorch's fused CPU attention does not take dropout (it falls back to a
            // composite with `bernoulli_`): the same composite here, with the fast mask.
            let scale = 1.0 / ((h / self.num_heads) as f64).sqrt();
            let bias = Tensor::zeros(mask.size(), (Kind::Float, xs.device()))
                .masked_fill(&mask.logical_not(), f64::NEG_INFINITY);
            let scores = to_f32(q.matmul(&k.transpose(-2, -1))) * scale + bias;
            let probs = dropout::apply(
                &scores.softmax(-1, Kind::Float),
                self.attention_dropout,
                true,
            );
            probs.to_kind(v.kind()).matmul(&v)
        } else {
            let p = if train { self.attention_dropout } else { 0.0 };
            Tensor::scaled_dot_product_attention(&q, &k, &v, Some(mask), p, false, None, false)
        };
        let context = context.transpose(1, 2).reshape([b, s, h]);
        let mut attn = to_f32(precision::linear(&self.o, &context));
        if self.dropout_after_attention_output {
            attn = dropout::apply(&attn, self.hidden_dropout, train);
        }
        let attn = self.ln_attn.forward(&(attn + xs));
        let ffn = activate(&precision::linear(&self.ffn_in, &attn), self.activation);
        let ffn = dropout::apply(
            &to_f32(precision::linear(&self.ffn_out, &ffn)),
            self.hidden_dropout,
            train,
        );
        self.ln_ffn.forward(&(ffn + attn))
    }
}

/// Embeddings and the stack of layers of one checkpoint.
#[derive(Debug)]
pub struct Encoder {
    pub embeddings: Embeddings,
    pub layers: Vec<Layer>,
}

impl Encoder {
    pub fn new(root: &nn::Path, cfg: &EncoderConfig) -> Self {
        let layout = Layout::of(cfg.family);
        let base = root.sub(cfg.family.prefix());
        let embeddings = Embeddings::new(&base, layout, cfg);
        let layers = (0..cfg.num_layers)
            .map(|i| Layer::new(&sub(&base, &format!("{}.{i}", layout.layers)), layout, cfg))
            .collect();
        Encoder { embeddings, layers }
    }

    /// Runs the encoder. Returns the embeddings output followed by every layer's output when
    /// `all_layers` is true, otherwise only the last layer's output.
    pub fn forward_t(
        &self,
        input_ids: &Tensor,
        token_type_ids: &Tensor,
        attention_mask: &Tensor,
        train: bool,
        all_layers: bool,
    ) -> Vec<Tensor> {
        let mask = attention_mask.to_kind(Kind::Bool).unsqueeze(1).unsqueeze(1);
        let mut xs = self.embeddings.forward_t(input_ids, token_type_ids, train);
        let mut states = Vec::with_capacity(if all_layers { self.layers.len() + 1 } else { 1 });
        for layer in &self.layers {
            let next = layer.forward_t(&xs, &mask, train);
            if all_layers {
                states.push(xs);
            }
            xs = next;
        }
        states.push(xs);
        states
    }
}
