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
use tch::{Device, Kind, Tensor};

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

/// The multiple a batch's padded width is rounded up to (the batch keeps its attention mask,
/// so the extra columns are padding like any other). Under bf16 on the CPU, libtorch's
/// products go through oneDNN, which builds a kernel for every new matrix shape (about 1 ms
/// each, cached by shape): with widths free to take any value up to max-len, a fine-tuning
/// run spent 0.9 of 7 s (2,000 SST-2 sentences) and 1.6 of 24 s (8,000) building kernels.
/// Widths in steps of 4 leave a quarter of the shapes: 8,000 sentences, one epoch, 2 cores
/// with AMX, alternating runs: training 21.0-22.5 -> 19.0-19.9 s, evaluation 0.87-0.92 ->
/// 0.46-0.48 s, peak memory 2.9 -> 2.4 GB (steps of 8: 20.1-20.7 s; of 16: 21.6-22.3 s, the
/// padding costing more than the kernels it saves). Under float32 MKL has no per-shape cost
/// and padding is only extra work (steps of 8: 29.2 -> 33.6 s), so widths stay exact; on a
/// GPU they stay exact too (not measured).
pub fn pad_multiple(device: Device) -> usize {
    match (current(), device) {
        (Precision::Bf16, Device::Cpu) => 4,
        _ => 1,
    }
}

/// The dtype matrix products run in.
pub fn compute_kind() -> Kind {
    match current() {
        Precision::Fp32 => Kind::Float,
        Precision::Bf16 => Kind::BFloat16,
    }
}

/// A linear layer's weight and bias in the dtype its products run in: a shallow copy of the
/// parameters under float32, a bfloat16 copy under bf16 (the cast is differentiable, so a
/// training pass that makes one per call still sends float32 gradients to the parameters).
#[derive(Debug)]
pub struct CastLinear {
    pub ws: Tensor,
    pub bs: Option<Tensor>,
    /// Where `ws` and `bs` are casts: the parameters each one's rows came from.
    sources: Vec<GradSource>,
}

/// A tensor cast (and stacked) from parameters, at which a backward pass can take the
/// gradient in their place: rows `start..start + len` of its gradient are the gradient of the
/// parameter with data pointer `param`, in the cast's dtype. The cast's own backward would
/// only convert them to float32, which is exact, so an optimiser that reads them as they are
/// (`FusedAdam::step_grads`) takes the same step and is spared that conversion.
#[derive(Debug)]
pub struct GradSource {
    pub tensor: Tensor,
    /// (parameter data pointer, first row, rows), in row order.
    pub parts: Vec<(usize, i64, i64)>,
}

impl CastLinear {
    /// `layer`'s weight and bias as `kind`.
    pub fn of(layer: &nn::Linear, kind: Kind) -> Self {
        Self::stacked(&[layer], kind)
    }

    /// Several layers that read the same input as one (weights and biases stacked by output
    /// row, in order), as `kind`: one wider product instead of several.
    pub fn stacked(layers: &[&nn::Linear], kind: Kind) -> Self {
        let cast = |t: Tensor| if t.kind() == kind { t } else { t.to_kind(kind) };
        let ws = match layers {
            [one] => one.ws.shallow_clone(),
            _ => Tensor::cat(&layers.iter().map(|l| &l.ws).collect::<Vec<_>>(), 0),
        };
        let bs = layers
            .iter()
            .map(|l| l.bs.as_ref())
            .collect::<Option<Vec<&Tensor>>>()
            .map(|b| match b.as_slice() {
                [one] => one.shallow_clone(),
                _ => Tensor::cat(&b, 0),
            });
        let (ws, bs) = (cast(ws), bs.map(cast));
        let mut sources = Vec::new();
        if kind != Kind::Float {
            let parts = |tensors: Vec<&Tensor>| {
                let mut start = 0;
                tensors
                    .into_iter()
                    .map(|t| {
                        let rows = t.size()[0];
                        start += rows;
                        (t.data_ptr() as usize, start - rows, rows)
                    })
                    .collect()
            };
            sources.push(GradSource {
                tensor: ws.shallow_clone(),
                parts: parts(layers.iter().map(|l| &l.ws).collect()),
            });
            if let Some(b) = &bs {
                sources.push(GradSource {
                    tensor: b.shallow_clone(),
                    parts: parts(layers.iter().filter_map(|l| l.bs.as_ref()).collect()),
                });
            }
        }
        CastLinear { ws, bs, sources }
    }

    /// Output rows `start..start + len` of the weight (and bias): a view, no copy.
    pub fn rows(&self, start: i64, len: i64) -> CastLinear {
        CastLinear {
            ws: self.ws.narrow(0, start, len),
            bs: self.bs.as_ref().map(|b| b.narrow(0, start, len)),
            sources: Vec::new(),
        }
    }

    /// The casts of parameters this layer multiplies with (none under float32, where `ws` and
    /// `bs` are the parameters themselves).
    pub fn grad_sources(&self) -> &[GradSource] {
        &self.sources
    }

    /// `xs @ W^T + b`, `xs` cast to the weight's dtype; the result has that dtype.
    pub fn apply(&self, xs: &Tensor) -> Tensor {
        if xs.kind() == self.ws.kind() {
            xs.linear(&self.ws, self.bs.as_ref())
        } else {
            xs.to_kind(self.ws.kind())
                .linear(&self.ws, self.bs.as_ref())
        }
    }
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
        let exact = CastLinear::of(&layer, Kind::Float).apply(&xs);
        let mixed = CastLinear::of(&layer, Kind::BFloat16).apply(&xs);
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
    fn stacked_products_equal_separate_ones_and_rows_pick_one() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let a = nn::linear(vs.root().sub("a"), 16, 16, Default::default());
        let b = nn::linear(vs.root().sub("b"), 16, 8, Default::default());
        let xs = Tensor::randn([2, 5, 16], (Kind::Float, Device::Cpu));
        let stacked = CastLinear::stacked(&[&a, &b], Kind::Float);
        let fused = stacked
            .apply(&xs)
            .split_with_sizes([16i64, 8].as_slice(), -1);
        let picked = [
            stacked.rows(0, 16).apply(&xs),
            stacked.rows(16, 8).apply(&xs),
        ];
        for ((f, p), l) in fused.iter().zip(&picked).zip([&a, &b]) {
            let separate = CastLinear::of(l, Kind::Float).apply(&xs);
            assert_eq!(f.size(), separate.size());
            let d = (f - &separate).abs().max().double_value(&[]);
            assert!(d < 1e-5, "{d}");
            let d = (p - &separate).abs().max().double_value(&[]);
            assert!(d < 1e-5, "{d}");
        }
    }
}
