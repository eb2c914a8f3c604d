//! Attention in a training pass with attention dropout runs heal's own composite (libtorch's
//! fused CPU attention takes no dropout): the scaled, masked scores come out of one `baddbmm`,
//! softmax in float32, dropout, the product with the values. With a dropout probability so small
//! that nothing is dropped (its threshold rounds to zero, its scale to 1), a layer's output and
//! every gradient must be those of the evaluation path, libtorch's own
//! `scaled_dot_product_attention`: within 1e-5 in float32, within bfloat16's rounding under
//! bf16; over a batch with padding of every length and with none, and at the [CLS] position
//! alone.

mod common;

use common::{fixtures, max_abs_diff};
use heal::model::config::EncoderConfig;
use heal::model::encoder::Layer;
use heal::model::layout::Layout;
use heal::model::precision::{self, Precision};
use tch::{nn, Device, Kind, Tensor};

/// The compute precision is process-wide: every test here holds this lock.
static PRECISION: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// tiny-bert's first layer with random weights, attention dropout `p` and no hidden dropout.
fn layer(vs: &nn::VarStore, p: f64) -> (Layer, EncoderConfig) {
    let mut cfg = EncoderConfig::from_file(&fixtures().join("tiny-bert").join("config.json"))
        .expect("tiny-bert config");
    cfg.attention_dropout = p;
    cfg.hidden_dropout = 0.0;
    (Layer::new(&vs.root(), Layout::of(cfg.family), &cfg), cfg)
}

/// The layer's output for `xs` and the gradients of a fixed random projection of it: with
/// respect to `xs` and to every parameter (sorted by name).
fn run(
    vs: &nn::VarStore,
    layer: &Layer,
    xs: &Tensor,
    mask: Option<&Tensor>,
    train: bool,
    first_only: bool,
    projection: &Tensor,
) -> (Tensor, Vec<(String, Tensor)>) {
    for mut v in vs.trainable_variables() {
        v.zero_grad();
    }
    let xs = xs.detach().set_requires_grad(true);
    let weights = layer.weights(precision::current() == Precision::Bf16);
    let out = layer.forward_with(&xs, mask, train, first_only, &weights);
    let proj = projection.narrow(1, 0, out.size()[1]);
    (&out * proj).sum(Kind::Float).backward();
    let mut grads = vec![("input".to_string(), xs.grad().copy())];
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    grads.extend(named.into_iter().map(|(n, v)| (n, v.grad().copy())));
    (out.detach(), grads)
}

fn check(precision: Precision, tol: f64) {
    precision::set(precision);
    tch::manual_seed(11);
    let vs = nn::VarStore::new(Device::Cpu);
    let (layer, cfg) = layer(&vs, 1e-12);
    let (b, s, h) = (6, 9, cfg.hidden_size);
    let xs = Tensor::randn([b, s, h], (Kind::Float, Device::Cpu));
    let projection = Tensor::randn([b, s, h], (Kind::Float, Device::Cpu));
    // Row r keeps its first 9 - r positions (row 0 none padded, the last 4 of 9).
    let lengths = Tensor::from_slice(&[9i64, 8, 7, 6, 5, 4]);
    let mask = Tensor::arange(s, (Kind::Int64, Device::Cpu))
        .unsqueeze(0)
        .lt_tensor(&lengths.unsqueeze(1))
        .unsqueeze(1)
        .unsqueeze(1);
    for mask in [Some(&mask), None] {
        for first_only in [false, true] {
            let case = format!(
                "{precision}, {} mask, first_only {first_only}",
                if mask.is_some() { "with" } else { "no" }
            );
            let (train_out, train_grads) =
                run(&vs, &layer, &xs, mask, true, first_only, &projection);
            let (eval_out, eval_grads) =
                run(&vs, &layer, &xs, mask, false, first_only, &projection);
            let scale = eval_out.abs().max().double_value(&[]).max(1.0);
            let d = max_abs_diff(&train_out, &eval_out);
            assert!(d < tol * scale, "{case}: outputs differ by {d:e}");
            for ((name, g), (_, e)) in train_grads.iter().zip(&eval_grads) {
                let scale = e.abs().max().double_value(&[]).max(1e-3);
                let d = max_abs_diff(g, e);
                assert!(
                    d < tol * scale.max(1.0),
                    "{case}: gradient of {name} differs by {d:e} (largest {scale:e})"
                );
            }
        }
    }
    precision::set(Precision::Fp32);
}

#[test]
fn training_attention_without_drops_is_libtorchs_attention_in_float32() {
    let _lock = PRECISION.lock().unwrap_or_else(|e| e.into_inner());
    check(Precision::Fp32, 1e-5);
}

#[test]
fn training_attention_without_drops_is_libtorchs_attention_under_bf16() {
    let _lock = PRECISION.lock().unwrap_or_else(|e| e.into_inner());
    // bfloat16 keeps 8 significant bits; the two paths round at different points.
    check(Precision::Bf16, 3e-2);
}

/// The same check can fail: with real dropout the composite's output is not the evaluation's.
#[test]
fn with_dropout_the_training_output_differs() {
    let _lock = PRECISION.lock().unwrap_or_else(|e| e.into_inner());
    precision::set(Precision::Fp32);
    tch::manual_seed(12);
    let vs = nn::VarStore::new(Device::Cpu);
    let (layer, cfg) = layer(&vs, 0.3);
    let xs = Tensor::randn([4, 7, cfg.hidden_size], (Kind::Float, Device::Cpu));
    let projection = Tensor::randn([4, 7, cfg.hidden_size], (Kind::Float, Device::Cpu));
    let (train_out, _) = run(&vs, &layer, &xs, None, true, false, &projection);
    let (eval_out, _) = run(&vs, &layer, &xs, None, false, false, &projection);
    assert!(max_abs_diff(&train_out, &eval_out) > 1e-3);
}
