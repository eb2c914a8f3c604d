//! Compute precision of the encoder's matrix products.
//!
//! `fp32` computes everything in float32. `bf16` is mixed precision as PyTorch's autocast
//! does it: parameters, optimiser state, LayerNorm, softmax statistics, residual sums and the
//! loss stay float32; the inputs and weights of the encoder's linear layers and attention are
//! cast to bfloat16 for the product (on CPUs with AMX or AVX512-BF16 units and on recent GPUs
//! this is several times faster), and the results come back as float32. Gradients flow through
//! the casts, so the float32 master weights receive float32 gradients.
//!
//! The setting is process-wide, like autocast's: the trainer sets it once before a run.

use std::sync::atomic::{AtomicU8, Ordering};
use tch::nn;
use tch::{Kind, Tensor};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// float32 everywhere.
    #[default]
    Fp32,
    /// bfloat16 matrix products, float32 everything else (autocast-style mixed precision).
    Bf16,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        })
    }
}

static CURRENT: AtomicU8 = AtomicU8::new(0);

/// Sets the process-wide compute precision.
pub fn set(precision: Precision) {
    CURRENT.store(precision as u8, Ordering::Relaxed);
}

/// The process-wide compute precision.
pub fn current() -> Precision {
    match CURRENT.load(Ordering::Relaxed) {
        1 => Precision::Bf16,
        _ => Precision::Fp32,
    }
}

/// The dtype matrix products run in.
pub fn compute_kind() -> Kind {
    match current() {
        Precision::Fp32 => Kind::Float,
        Precision::Bf16 => Kind::BFloat16,
    }
}

/// `xs @ W^T + b` in the compute precision; the result has the compute dtype (callers turn it
/// back to float32 with [`to_f32`] where a float32 op follows).
pub fn linear(layer: &nn::Linear, xs: &Tensor) -> Tensor {
    linear_as(compute_kind(), layer, xs)
}

fn linear_as(kind: Kind, layer: &nn::Linear, xs: &Tensor) -> Tensor {
    if kind == Kind::Float {
        return xs.linear(&layer.ws, layer.bs.as_ref());
    }
    let bias = layer.bs.as_ref().map(|b| b.to_kind(kind));
    xs.to_kind(kind)
        .linear(&layer.ws.to_kind(kind), bias.as_ref())
}

/// Several linear layers reading the same input as one matrix product (their weights and
/// biases stacked), split back into one output each: fewer, larger products (the q, k and v
/// projections, say). Same results as separate [`linear`] calls up to float rounding.
pub fn fused_linear(layers: &[&nn::Linear], xs: &Tensor) -> Vec<Tensor> {
    let kind = compute_kind();
    let weights: Vec<&Tensor> = layers.iter().map(|l| &l.ws).collect();
    let mut weight = Tensor::cat(&weights, 0);
    let mut bias = layers
        .iter()
        .map(|l| l.bs.as_ref())
        .collect::<Option<Vec<&Tensor>>>()
        .map(|b| Tensor::cat(&b, 0));
    let mut input = xs.shallow_clone();
    if kind != Kind::Float {
        weight = weight.to_kind(kind);
        bias = bias.map(|b| b.to_kind(kind));
        input = input.to_kind(kind);
    }
    let sizes: Vec<i64> = layers.iter().map(|l| l.ws.size()[0]).collect();
    input
        .linear(&weight, bias.as_ref())
        .split_with_sizes(sizes.as_slice(), -1)
}

/// A float32 view of an activation (no copy when it already is float32).
pub fn to_f32(xs: Tensor) -> Tensor {
    if xs.kind() == Kind::Float {
        xs
    } else {
        xs.to_kind(Kind::Float)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn bf16_linear_is_close_to_fp32_and_passes_float32_gradients() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let layer = nn::linear(vs.root(), 64, 32, Default::default());
        let xs = Tensor::randn([8, 64], (Kind::Float, Device::Cpu));
        let exact = linear_as(Kind::Float, &layer, &xs);
        let mixed = linear_as(Kind::BFloat16, &layer, &xs);
        assert_eq!(mixed.kind(), Kind::BFloat16);
        let err = (to_f32(mixed.shallow_clone()) - &exact)
            .abs()
            .max()
            .double_value(&[]);
        let scale = exact.abs().max().double_value(&[]);
        // bfloat16 keeps 8 significant bits: products of 64 terms agree to about 1%.
        assert!(err < 0.02 * scale, "err {err} vs scale {scale}");
        to_f32(mixed).sum(Kind::Float).backward();
        let grad = layer.ws.grad();
        assert_eq!(grad.kind(), Kind::Float);
        // d(sum)/dW = column sums of xs, the same for every output row.
        let expected = xs.sum_dim_intlist([0i64].as_slice(), false, Kind::Float);
        let diff = (grad.get(0) - &expected).abs().max().double_value(&[]);
        assert!(
            diff < 0.05 * expected.abs().max().double_value(&[]),
            "grad diff {diff}"
        );
    }

    #[test]
    fn fused_linear_equals_separate_products() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let a = nn::linear(vs.root().sub("a"), 16, 16, Default::default());
        let b = nn::linear(vs.root().sub("b"), 16, 8, Default::default());
        let xs = Tensor::randn([2, 5, 16], (Kind::Float, Device::Cpu));
        let fused = fused_linear(&[&a, &b], &xs);
        for (f, l) in fused.iter().zip([&a, &b]) {
            let separate = linear_as(Kind::Float, l, &xs);
            assert_eq!(f.size(), separate.size());
            let d = (f - separate).abs().max().double_value(&[]);
            assert!(d < 1e-5, "{d}");
        }
    }
}
