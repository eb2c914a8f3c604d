//! The transformer encoder shared by BERT, RoBERTa and DistilBERT: embeddings, layers and
//! per-layer hidden states. Dropout is active only when `train` is true.

use super::config::{Activation, EncoderConfig, Family};
use super::dropout;
use super::layout::Layout;
use super::precision::{self, to_f32, CastLinear, GradSource};
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

/// The feed-forward activation of a product's output. Where no graph records the pass
/// (evaluation, encoding) it runs in place: the product's output is not needed again, and a
/// second [tokens, intermediate] buffer is spared.
fn activate(mut xs: Tensor, act: Activation) -> Tensor {
    if xs.requires_grad() {
        return match act {
            Activation::Gelu => xs.gelu("none"),
            Activation::GeluTanh => xs.gelu("tanh"),
            Activation::Relu => xs.relu(),
        };
    }
    let _ = match act {
        Activation::Gelu => xs.gelu_("none"),
        Activation::GeluTanh => xs.gelu_("tanh"),
        Activation::Relu => xs.relu_(),
    };
    xs
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

    /// This layer's weights in the compute dtype, with q, k and v stacked into one product
    /// when `stack_qkv`. Under float32 the tensors are the parameters themselves (shallow
    /// copies; stacking copies q|k|v), under bf16 bfloat16 copies.
    pub fn weights(&self, stack_qkv: bool) -> LayerWeights {
        let kind = precision::compute_kind();
        let qkv = if stack_qkv {
            Qkv::Stacked(CastLinear::stacked(&[&self.q, &self.k, &self.v], kind))
        } else {
            Qkv::Separate(
                CastLinear::of(&self.q, kind),
                CastLinear::of(&self.k, kind),
                CastLinear::of(&self.v, kind),
            )
        };
        LayerWeights {
            qkv,
            o: CastLinear::of(&self.o, kind),
            ffn_in: CastLinear::of(&self.ffn_in, kind),
            ffn_out: CastLinear::of(&self.ffn_out, kind),
        }
    }

    /// The weights a pass without a [`EncoderWeights`] makes for each call (a training step,
    /// whose parameters change between calls). Under bf16, q, k and v as one product of the
    /// stacked weights (the weights are cast anyway, and a wider bf16 product is faster: 111
    /// -> 132 ex/s on minilm-l6 + SST-2); under fp32 the stacking would copy the weights at
    /// every call, which costs more than it saves, so three products.
    fn weights_per_call(&self) -> LayerWeights {
        self.weights(precision::current() == precision::Precision::Bf16)
    }

    /// `mask` is a boolean [batch, 1, 1, seq] tensor, true where a key may be attended to.
    pub fn forward_t(&self, xs: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        self.forward_with(xs, Some(mask), train, false, &self.weights_per_call())
    }

    /// [`forward_t`](Self::forward_t) with the given weights. With `first_only`, the output
    /// at position 0 only, [batch, 1, hidden]: keys and values from every position, but the
    /// query, attention output, LayerNorms and feed-forward of the first row alone (what a
    /// [CLS] pooling reads of the last layer; the same numbers as row 0 of the whole output,
    /// dropout masks included). `mask` None: every key may be attended to (no padding).
    pub fn forward_with(
        &self,
        xs: &Tensor,
        mask: Option<&Tensor>,
        train: bool,
        first_only: bool,
        w: &LayerWeights,
    ) -> Tensor {
        let (b, s, h) = xs.size3().expect("hidden states are [batch, seq, hidden]");
        let d = h / self.num_heads;
        let sq = if first_only { 1 } else { s };
        let xq = if first_only {
            xs.narrow(1, 0, 1)
        } else {
            xs.shallow_clone()
        };
        let heads = |t: Tensor| {
            let len = t.size()[1];
            t.view([b, len, self.num_heads, d]).transpose(1, 2)
        };
        // Under bf16 the products below run in bfloat16 (attention included); LayerNorm,
        // residual sums and dropout stay float32.
        let (q, k, v) = match &w.qkv {
            Qkv::Separate(q, k, v) => (heads(q.apply(&xq)), heads(k.apply(xs)), heads(v.apply(xs))),
            Qkv::Stacked(qkv) if !first_only => {
                let mut parts = qkv.apply(xs).split(h, -1).into_iter();
                let mut next = || heads(parts.next().expect("three projections"));
                (next(), next(), next())
            }
            Qkv::Stacked(qkv) => {
                let mut kv = qkv.rows(h, 2 * h).apply(xs).split(h, -1).into_iter();
                let mut next = || heads(kv.next().expect("two projections"));
                (heads(qkv.rows(0, h).apply(&xq)), next(), next())
            }
        };
        let context = if train && self.attention_dropout > 0.0 && xs.device() == Device::Cpu {
            // libtorch's fused CPU attention does not take dropout (it falls back to a
            // composite with `bernoulli_`): the same composite here, with the fast mask.
            // The scale and the padding go into the product as baddbmm's alpha and its added
            // input (-inf at padded keys, one row per sequence and head, broadcast over the
            // queries): the scores come out of the product scaled and masked in the compute
            // dtype, where scaling, masking and a cast to float32 were three more passes over
            // [batch, heads, seq, seq] forward and three more back. Softmax reads them as they
            // are and computes in float32.
            let nh = self.num_heads;
            let scale = 1.0 / (d as f64).sqrt();
            let bias = Tensor::zeros([b, 1, 1, s], (q.kind(), q.device()));
            let bias = match mask {
                Some(mask) => bias.masked_fill(&mask.logical_not(), f64::NEG_INFINITY),
                None => bias,
            };
            let bias = bias.expand([b, nh, 1, s], false).reshape([b * nh, 1, s]);
            let scores = bias
                .baddbmm(
                    &q.reshape([b * nh, sq, d]),
                    &k.reshape([b * nh, s, d]).transpose(1, 2),
                    1.0,
                    scale,
                )
                .view([b, nh, sq, s]);
            let probs = dropout::apply_leading(
                &scores.softmax(-1, Kind::Float),
                &[b, self.num_heads, s, s],
                2,
                self.attention_dropout,
                true,
            );
            probs.to_kind(v.kind()).matmul(&v)
        } else {
            let p = if train { self.attention_dropout } else { 0.0 };
            Tensor::scaled_dot_product_attention(&q, &k, &v, mask, p, false, None, false)
        };
        let context = context.transpose(1, 2).reshape([b, sq, h]);
        // A sublayer's product added to the residual stream `onto`, with dropout of the
        // product's output where it applies, on float32 (the fast masks' dtype). Without
        // dropout the product's output (bfloat16 under bf16) goes straight into the float32
        // residual sum, which promotes it: the same numbers as a cast first, one pass fewer;
        // under float32 the product accumulates into the residual (`apply_onto`).
        let full = [b, s, h];
        let sublayer = |linear: &CastLinear, xs: &Tensor, onto: &Tensor, dropout_here: bool| {
            if dropout_here && train && self.hidden_dropout > 0.0 {
                let out = to_f32(linear.apply(xs));
                onto + dropout::apply_leading(&out, &full, 1, self.hidden_dropout, train)
            } else {
                linear.apply_onto(xs, onto)
            }
        };
        let attn = sublayer(&w.o, &context, &xq, self.dropout_after_attention_output);
        let attn = self.ln_attn.forward(&attn);
        let ffn = activate(w.ffn_in.apply(&attn), self.activation);
        self.ln_ffn
            .forward(&sublayer(&w.ffn_out, &ffn, &attn, true))
    }
}

/// How a layer's q, k and v projections are multiplied.
#[derive(Debug)]
enum Qkv {
    Separate(CastLinear, CastLinear, CastLinear),
    /// One product with the weights stacked q|k|v by output row.
    Stacked(CastLinear),
}

/// One layer's weights as a forward pass multiplies with them ([`Layer::weights`]).
#[derive(Debug)]
pub struct LayerWeights {
    qkv: Qkv,
    o: CastLinear,
    ffn_in: CastLinear,
    ffn_out: CastLinear,
}

/// Every layer's weights cast to the compute dtype (and q|k|v stacked) once, for a run of
/// passes that leave the parameters alone: an evaluation, `heal embed`, a probe's encoding.
/// A training pass casts at every call instead (the parameters change between steps, and the
/// casts carry the gradients back), which under bf16 costs a cast of every weight per product.
/// Made from the parameters as they are; a later change of theirs is not seen.
#[derive(Debug)]
pub struct EncoderWeights {
    layers: Vec<LayerWeights>,
}

impl EncoderWeights {
    /// The casts of the parameters (none under float32): the tensors a training step made
    /// with these weights can take its gradients at ([`GradSource`]).
    pub fn grad_sources(&self) -> Vec<&GradSource> {
        let mut out = Vec::new();
        for l in &self.layers {
            match &l.qkv {
                Qkv::Separate(q, k, v) => {
                    for c in [q, k, v] {
                        out.extend(c.grad_sources());
                    }
                }
                Qkv::Stacked(qkv) => out.extend(qkv.grad_sources()),
            }
            for c in [&l.o, &l.ffn_in, &l.ffn_out] {
                out.extend(c.grad_sources());
            }
        }
        out
    }
}

/// What an encoder pass computes, and with which weights.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pass<'w> {
    /// Dropout on (training).
    pub train: bool,
    /// Which states the pass returns.
    pub keep: Keep<'w>,
    /// The last layer run at position 0 only (its state is [batch, 1, hidden]): all a [CLS]
    /// pooling reads.
    pub last_first_only: bool,
    /// Weights made once ([`Encoder::weights`]); None: each layer makes its own per call.
    pub weights: Option<&'w EncoderWeights>,
}

/// The states an encoder pass returns; state 0 is the embeddings output, state i the output
/// of layer i.
#[derive(Debug, Clone, Copy, Default)]
pub enum Keep<'a> {
    /// The last layer's.
    #[default]
    Last,
    /// Every state, 0 to the number of layers.
    All,
    /// These states, in this order (repeats allowed); the layers above the highest are not
    /// run at all.
    Chosen(&'a [usize]),
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

    /// Every layer's weights in the compute dtype for passes that do not change the
    /// parameters (see [`EncoderWeights`]). Under bf16, bfloat16 copies with q|k|v stacked
    /// (one wider product: 3.5 against 4.0 ms for [800, 384] x [384, 3 x 384] on 2 threads).
    /// Under float32, the parameters themselves and three products: there the stacked
    /// product is no faster (8.3 against 8.1 ms), so a copy would buy nothing.
    pub fn weights(&self) -> EncoderWeights {
        let stack = precision::current() == precision::Precision::Bf16;
        EncoderWeights {
            layers: self.layers.iter().map(|l| l.weights(stack)).collect(),
        }
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
        let pass = Pass {
            train,
            keep: if all_layers { Keep::All } else { Keep::Last },
            ..Default::default()
        };
        self.forward_pass(input_ids, token_type_ids, attention_mask, pass)
    }

    /// Runs the encoder as `pass` says, returning the states `pass.keep` asks for.
    pub fn forward_pass(
        &self,
        input_ids: &Tensor,
        token_type_ids: &Tensor,
        attention_mask: &Tensor,
        pass: Pass,
    ) -> Vec<Tensor> {
        let train = pass.train;
        // Attention sees a mask only when the batch has padding (a length-sorted batch of
        // equal lengths has none): the fused kernel is then spared reading it. The check reads
        // the mask on the host, so only where it lives there.
        let padded = attention_mask.device() != Device::Cpu
            || (attention_mask.numel() > 0 && attention_mask.min().int64_value(&[]) == 0);
        let mask = padded.then(|| attention_mask.to_kind(Kind::Bool).unsqueeze(1).unsqueeze(1));
        let n = self.layers.len();
        // How many layers run: up to the highest state asked for.
        let stop = match pass.keep {
            Keep::Chosen(states) => {
                let highest = states.iter().copied().max().unwrap_or(0);
                assert!(highest <= n, "state {highest} of a {n}-layer encoder");
                highest
            }
            Keep::Last | Keep::All => n,
        };
        let kept = |i: usize| match pass.keep {
            Keep::Last => i == n,
            Keep::All => true,
            Keep::Chosen(states) => states.contains(&i),
        };
        let mut xs = self.embeddings.forward_t(input_ids, token_type_ids, train);
        // Only the states asked for stay alive; the others are freed as the pass goes on.
        let mut states: Vec<Option<Tensor>> = (0..=stop).map(|_| None).collect();
        for (i, layer) in self.layers[..stop].iter().enumerate() {
            let first_only = pass.last_first_only && i + 1 == stop;
            let next = match pass.weights {
                Some(w) => layer.forward_with(&xs, mask.as_ref(), train, first_only, &w.layers[i]),
                None => {
                    let w = layer.weights_per_call();
                    layer.forward_with(&xs, mask.as_ref(), train, first_only, &w)
                }
            };
            if kept(i) {
                states[i] = Some(xs);
            }
            xs = next;
        }
        if kept(stop) {
            states[stop] = Some(xs);
        }
        match pass.keep {
            Keep::Chosen(chosen) => chosen
                .iter()
                .map(|&c| states[c].as_ref().expect("kept").shallow_clone())
                .collect(),
            Keep::Last | Keep::All => states.into_iter().flatten().collect(),
        }
    }
}
