//! Compute precision of the encoder's matrix products.
//!
//! `fp32` computes everything in float32. `bf16` is mixed precision as PyTorch's autocast
//! does it: parameters, optimiser state, LayerNorm, softmax statistics, residual sums and the
//! loss stay float32; the inputs and weights of the encoder's linear layers and attention are
//! cast to bfloat16 for the product (on CPUs with AMX units and on recent GPUs this is several
//! times faster; on x86-64 CPUs without AMX float32 kernels run the same arithmetic, see
//! [`Bf16Kernels`]), and the results come back as float32. Gradients flow through the casts,
//! so the float32 master weights receive float32 gradients.
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

/// How a bf16 product is computed on the CPU. Both give autocast's arithmetic: operands
/// rounded to bfloat16, products summed in float32, the result rounded to bfloat16, and in
/// the backward pass the gradients rounded where autocast's are. They differ only in the
/// order of the float32 sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bf16Kernels {
    /// libtorch's bfloat16 kernels (oneDNN): on AMX units several times faster than float32.
    Bf16,
    /// Float32 kernels (MKL) on the bfloat16-rounded operands, widened exactly (a product of
    /// two bfloat16 numbers is exact in float32). Without AMX, oneDNN's bfloat16 kernels run
    /// at about half MKL's float32 rate: on a 2-core Xeon with AVX512-BF16 and no AMX,
    /// 2048 x 2048 products at 161 against 307 GFLOP/s, and minilm-l6's training products at
    /// 150-160 GFLOP/s (ONEDNN_VERBOSE), 72% of a bf16 fine-tuning step.
    Fp32,
}

impl std::fmt::Display for Bf16Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Bf16Kernels::Bf16 => "bf16",
            Bf16Kernels::Fp32 => "fp32",
        })
    }
}

/// The environment variable that overrides the CPU's choice of [`Bf16Kernels`].
pub const BF16_KERNELS_ENV: &str = "HEAL_BF16_KERNELS";

/// The [`BF16_KERNELS_ENV`] override, if set; a value other than `bf16` or `fp32` is a
/// [`crate::error::UserError`].
pub fn bf16_kernels_override() -> anyhow::Result<Option<Bf16Kernels>> {
    match std::env::var(BF16_KERNELS_ENV).as_deref() {
        Err(_) | Ok("") => Ok(None),
        Ok("bf16") => Ok(Some(Bf16Kernels::Bf16)),
        Ok("fp32") => Ok(Some(Bf16Kernels::Fp32)),
        Ok(v) => Err(crate::error::user(format!(
            "{BF16_KERNELS_ENV}={v}: expected bf16 (libtorch's bfloat16 kernels) or fp32 \
             (float32 kernels on bfloat16-rounded operands), or unset it to let the CPU decide"
        ))),
    }
}

/// Whether libtorch's bfloat16 kernels are the faster choice on this CPU: on x86-64, whether
/// it has AMX units the OS lets programs use (CPUID leaf 7: AMX-BF16 and AMX-TILE; XCR0: the
/// tile state enabled). Elsewhere true, as before this choice existed (not measured there).
fn cpu_bf16_kernels_fast() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__cpuid, __cpuid_count};
        // SAFETY: CPUID exists on every x86_64 CPU; leaf 7 is read only when the CPU reports
        // it, and XGETBV only when CPUID says the OS has enabled it (OSXSAVE).
        unsafe {
            if __cpuid(0).eax < 7 {
                return false;
            }
            let edx = __cpuid_count(7, 0).edx;
            let amx = edx & (1 << 22) != 0 && edx & (1 << 24) != 0;
            let osxsave = __cpuid(1).ecx & (1 << 27) != 0;
            if !amx || !osxsave {
                return false;
            }
            let (lo, hi): (u32, u32);
            std::arch::asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack));
            let xcr0 = ((hi as u64) << 32) | lo as u64;
            // Bits 17 and 18: XTILECFG and XTILEDATA.
            xcr0 & (0b11 << 17) == (0b11 << 17)
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        true
    }
}

/// How bf16 products are computed on `device`: on a GPU, on an x86-64 CPU with AMX and on
/// other architectures, libtorch's bfloat16 kernels; on an x86-64 CPU without AMX, float32
/// kernels on bfloat16-rounded operands (see [`Bf16Kernels`]). [`BF16_KERNELS_ENV`] overrides
/// the CPU's choice (an invalid value counts as unset here; runs check it first with
/// [`bf16_kernels_override`]).
pub fn bf16_kernels(device: Device) -> Bf16Kernels {
    static CPU: std::sync::OnceLock<Bf16Kernels> = std::sync::OnceLock::new();
    if device != Device::Cpu {
        return Bf16Kernels::Bf16;
    }
    *CPU.get_or_init(|| match bf16_kernels_override() {
        Ok(Some(k)) => k,
        _ if cpu_bf16_kernels_fast() => Bf16Kernels::Bf16,
        _ => Bf16Kernels::Fp32,
    })
}

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
///
/// Under bf16 on a CPU whose products run on float32 kernels ([`Bf16Kernels::Fp32`]) only
/// attention's small products still go through oneDNN, and exact widths cost less than the
/// kernels they build: minilm-l6 on 2,000 SST-2 sentences, three alternating pairs on a 2-core
/// Xeon without AMX, 11.5-12.8 s of training in steps of 4 against 10.9-11.8 s exact.
pub fn pad_multiple(device: Device) -> usize {
    match (current(), device) {
        (Precision::Bf16, Device::Cpu) if bf16_kernels(device) == Bf16Kernels::Bf16 => 4,
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
    /// Under [`Bf16Kernels::Fp32`]: `ws` and `bs` widened back to float32 (exactly), what the
    /// product multiplies with; `ws` stays in the graph, so gradients still reach it.
    wide: Option<(Tensor, Option<Tensor>)>,
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
    /// row, in order), as `kind`: one wider product instead of several. Under bfloat16 the
    /// product runs on the kernels [`bf16_kernels`] picks for the weights' device.
    pub fn stacked(layers: &[&nn::Linear], kind: Kind) -> Self {
        let kernels = bf16_kernels(layers.first().map_or(Device::Cpu, |l| l.ws.device()));
        Self::stacked_on(layers, kind, kernels)
    }

    /// [`stacked`](Self::stacked) with the bf16 kernels given (used when `kind` is bfloat16).
    pub fn stacked_on(layers: &[&nn::Linear], kind: Kind, kernels: Bf16Kernels) -> Self {
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
        let wide = (kind == Kind::BFloat16 && kernels == Bf16Kernels::Fp32).then(|| {
            (
                ws.to_kind(Kind::Float),
                bs.as_ref().map(|b| b.to_kind(Kind::Float)),
            )
        });
        CastLinear {
            ws,
            bs,
            wide,
            sources,
        }
    }

    /// Output rows `start..start + len` of the weight (and bias): a view, no copy.
    pub fn rows(&self, start: i64, len: i64) -> CastLinear {
        CastLinear {
            ws: self.ws.narrow(0, start, len),
            bs: self.bs.as_ref().map(|b| b.narrow(0, start, len)),
            wide: self.wide.as_ref().map(|(w, b)| {
                (
                    w.narrow(0, start, len),
                    b.as_ref().map(|b| b.narrow(0, start, len)),
                )
            }),
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
        if let Some((ws, bs)) = &self.wide {
            // The operands as bfloat16 rounds them, in float32; the result rounded as a
            // bfloat16 product's is. Backward, the casts round the gradients where autocast's
            // bfloat16 products do: the input's and the weight's on their way out of the
            // product, the output's gradient on its way in.
            let xs = match xs.kind() {
                Kind::BFloat16 => xs.to_kind(Kind::Float),
                _ => xs.to_kind(Kind::BFloat16).to_kind(Kind::Float),
            };
            return xs.linear(ws, bs.as_ref()).to_kind(Kind::BFloat16);
        }
        if xs.kind() == self.ws.kind() {
            xs.linear(&self.ws, self.bs.as_ref())
        } else {
            xs.to_kind(self.ws.kind())
                .linear(&self.ws, self.bs.as_ref())
        }
    }

    /// `onto + xs @ W^T + b`. Under float32 one product accumulated into `onto + b`
    /// (`addmm_`): [`apply`](Self::apply) and an addition would copy the bias into the
    /// product's output first and then add `onto` in a pass of their own. The sum is the same
    /// up to float32 rounding (the terms are added in another order). Otherwise
    /// `onto + apply(xs)`.
    pub fn apply_onto(&self, xs: &Tensor, onto: &Tensor) -> Tensor {
        let float = |t: &Tensor| t.kind() == Kind::Float;
        // Under bf16 the weight is bfloat16 (also where `wide` multiplies): no float32 path.
        if !float(&self.ws) || !float(xs) || !float(onto) {
            return onto + self.apply(xs);
        }
        let (n, k) = (self.ws.size()[0], self.ws.size()[1]);
        let out = match &self.bs {
            Some(b) => onto + b,
            None => onto.copy(),
        };
        // A view of `out`: the product accumulates into its storage.
        let mut rows = out.view([-1, n]);
        let _ = rows.addmm_(&xs.reshape([-1, k]), &self.ws.tr());
        out
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

    /// Both kernels against the arithmetic they stand for, computed in float64: operands
    /// rounded to bfloat16, exact products, the sum rounded to bfloat16; backward, the output's
    /// gradient rounded to bfloat16 on its way in and the input's and weight's gradients
    /// rounded on their way out. Allowed: one bfloat16 rounding of the result plus float32's
    /// rounding of the sum (the kernels add in different orders).
    #[test]
    fn both_bf16_kernels_compute_bfloat16_arithmetic() {
        let round = |t: &Tensor| t.to_kind(Kind::BFloat16).to_kind(Kind::Double);
        let check = |what: &str, got: &Tensor, reference: &Tensor, magnitude: &Tensor| {
            let err = (got.to_kind(Kind::Double) - reference).abs();
            let bound = reference.abs() * 2f64.powi(-8) + magnitude * 1e-6 + 1e-30;
            let worst = (err / bound).max().double_value(&[]);
            assert!(worst <= 1.0, "{what}: error {worst} times the bound");
        };
        for kernels in [Bf16Kernels::Bf16, Bf16Kernels::Fp32] {
            tch::manual_seed(3);
            let vs = nn::VarStore::new(Device::Cpu);
            let layer = nn::linear(vs.root(), 96, 40, Default::default());
            let xs = Tensor::randn([7, 96], (Kind::Float, Device::Cpu)).set_requires_grad(true);
            let upstream = Tensor::randn([7, 40], (Kind::Float, Device::Cpu));
            let linear = CastLinear::stacked_on(&[&layer], Kind::BFloat16, kernels);
            let out = linear.apply(&xs);
            assert_eq!(out.kind(), Kind::BFloat16, "{kernels}");
            (to_f32(out.shallow_clone()) * &upstream)
                .sum(Kind::Float)
                .backward();

            let (x, w, b) = (
                round(&xs),
                round(&layer.ws),
                round(layer.bs.as_ref().unwrap()),
            );
            let g = round(&upstream);
            let reference = x.matmul(&w.tr()) + &b;
            let magnitude = x.abs().matmul(&w.abs().tr()) + b.abs();
            check(&format!("{kernels} output"), &out, &reference, &magnitude);
            let dx = g.matmul(&w);
            check(
                &format!("{kernels} input gradient"),
                &xs.grad(),
                &dx,
                &g.abs().matmul(&w.abs()),
            );
            let dw = g.tr().matmul(&x);
            check(
                &format!("{kernels} weight gradient"),
                &layer.ws.grad(),
                &dw,
                &g.abs().tr().matmul(&x.abs()),
            );
            // The gradients come out of bfloat16 tensors: their float32 values are bfloat16's.
            for grad in [xs.grad(), layer.ws.grad()] {
                assert_eq!(grad.to_kind(Kind::BFloat16).to_kind(Kind::Float), grad);
            }
        }
    }

    /// `apply_onto` is `onto + apply(xs)`: under float32 to float32 rounding (another order
    /// of the additions), for a strided `onto` (the [CLS] row of a layer's input) and without
    /// a bias too; under bfloat16 the very same tensor.
    #[test]
    fn apply_onto_adds_the_product_to_the_residual() {
        tch::manual_seed(4);
        let vs = nn::VarStore::new(Device::Cpu);
        let with_bias = nn::linear(vs.root().sub("a"), 24, 16, Default::default());
        let no_bias = nn::linear(
            vs.root().sub("b"),
            24,
            16,
            nn::LinearConfig {
                bias: false,
                ..Default::default()
            },
        );
        let xs = Tensor::randn([3, 1, 24], (Kind::Float, Device::Cpu));
        let onto = Tensor::randn([3, 5, 16], (Kind::Float, Device::Cpu)).narrow(1, 0, 1);
        for layer in [&with_bias, &no_bias] {
            let linear = CastLinear::of(layer, Kind::Float);
            let expected = &onto + linear.apply(&xs);
            let got = linear.apply_onto(&xs, &onto);
            assert_eq!(got.size(), expected.size());
            let d = (&got - &expected).abs().max().double_value(&[]);
            assert!(d < 1e-5, "{d}");
            let bf16 = CastLinear::of(layer, Kind::BFloat16);
            assert!(bf16
                .apply_onto(&xs, &onto)
                .equal(&(&onto + bf16.apply(&xs))));
        }
        // `onto` itself is left alone.
        let before = onto.copy();
        let _ = CastLinear::of(&with_bias, Kind::Float).apply_onto(&xs, &onto);
        assert!(onto.equal(&before));
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
