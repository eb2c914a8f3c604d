//! A fused Adam/AdamW step with global-norm gradient clipping for float32 parameters on the
//! CPU.
//!
//! libtorch's C++ AdamW runs about seven separate element-wise passes per parameter (and tch
//! does not expose PyTorch's `_fused_adamw_`), and clipping adds a norm and a scaling pass per
//! gradient: on a small encoder with a large embedding table these memory-bound passes take
//! longer than the forward and backward pass of a short-sentence batch. Here the whole step is
//! two passes over memory: one reads every gradient for the global norm, one reads gradient,
//! moments and parameter once and writes moments and parameter. Work is split into chunks
//! across the OpenMP team libtorch computes on ([`crate::team`]).
//!
//! [`FusedAdam::step_grads`] takes the gradients as the backward pass returned them (the
//! parameters' `.grad` fields stay unset, as with PyTorch's `zero_grad(set_to_none=True)`: no
//! zeroing pass and no accumulation pass). A gradient may be a sparse COO tensor (the word
//! embeddings' under [`crate::model::SequenceClassifier::set_sparse_embedding_grads`]): rows
//! outside it have a zero gradient, and without weight decay the rows that never had a
//! gradient are skipped, which is exact (their moments are zero, so Adam leaves them
//! unchanged) and spares most of a large embedding table on short-sentence data.
//! [`FusedAdam::step`] is the same step on the `.grad` fields, which it zeroes afterwards.
//!
//! Numerically it is PyTorch's `torch.optim.AdamW` / `Adam` (bias-corrected moments,
//! `eps` added after the square root; AdamW decays the parameter by `lr * wd` first, Adam adds
//! `wd * p` to the gradient) applied to gradients clipped as `clip_grad_norm_` does
//! (coefficient `max_norm / (norm + 1e-6)`, capped at 1). tests/fused_optim.rs checks it
//! against libtorch's own optimiser and clipping.

use tch::{Device, Kind, Tensor};

const CHUNK: usize = 1 << 15;

/// Optimiser state of one parameter.
struct Slot {
    var: Tensor,
    exp_avg: Vec<f32>,
    exp_avg_sq: Vec<f32>,
    /// Rows (of a 2-D parameter) that have had a non-zero gradient so far: `touched[r]`, and
    /// the same rows in ascending order. Filled only for sparse gradients.
    touched: Vec<bool>,
    touched_rows: Vec<usize>,
}

pub struct FusedAdam {
    slots: Vec<Slot>,
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// true: AdamW (decoupled decay); false: Adam (L2 added to the gradient).
    pub decoupled: bool,
    step: u64,
}

/// The optimiser's state, for `--resume`: the step count and, per parameter in the order of
/// [`FusedAdam::vars`], the two moments and the rows a sparse gradient has touched (int64).
pub struct AdamState {
    pub step: u64,
    pub slots: Vec<[Tensor; 3]>,
}

/// Raw views of one chunk of one parameter, sent to a worker thread.
struct Work {
    p: *mut f32,
    g: Grad,
    m: *mut f32,
    v: *mut f32,
    len: usize,
}

/// The gradient chunk of a [`Work`].
enum Grad {
    /// Zero (rows outside a sparse gradient).
    Zero,
    /// float32; `zero`: zeroed after use (`.grad` fields reused by the next backward pass).
    F32 { g: *mut f32, zero: bool },
    /// bfloat16 (its bits), read as the float32 numbers it stands for.
    Bf16(*const u16),
}

impl Work {
    /// The gradient chunk as a slice.
    fn grad(&self) -> GradSlice<'_> {
        // SAFETY: the gradient chunk is valid for `len` reads (see the Send impl below).
        match self.g {
            Grad::Zero => GradSlice::Zero,
            Grad::F32 { g, .. } => {
                GradSlice::F32(unsafe { std::slice::from_raw_parts(g, self.len) })
            }
            Grad::Bf16(g) => GradSlice::Bf16(unsafe { std::slice::from_raw_parts(g, self.len) }),
        }
    }
}

/// A gradient chunk as the update and the norm read it. A bfloat16 chunk is widened as it is
/// read, inside the vector-compiled loops (a bfloat16 is the upper half of a float32, so the
/// widening is exact: the loops see the very numbers a float32 copy would hold), rather than
/// into a scratch buffer first: the same memory traffic, one copy fewer in cache.
#[derive(Clone, Copy)]
enum GradSlice<'a> {
    Zero,
    F32(&'a [f32]),
    Bf16(&'a [u16]),
}

#[inline(always)]
fn widen(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

// The pointers of distinct `Work` items never overlap (distinct tensors or disjoint chunks),
// and the tensors outlive the parallel section.
unsafe impl Send for Work {}
unsafe impl Sync for Work {}

/// The per-step constants of the update.
struct Consts {
    coef: f32,
    step_size: f32,
    bc2_sqrt: f32,
    b1: f32,
    b2: f32,
    eps: f32,
    decay: f32,
    l2: f32,
}

impl Consts {
    fn update(&self, w: &Work) {
        // SAFETY: distinct chunks never overlap (see `Work`), so each slice is exclusive.
        let (p, m, v) = unsafe {
            (
                std::slice::from_raw_parts_mut(w.p, w.len),
                std::slice::from_raw_parts_mut(w.m, w.len),
                std::slice::from_raw_parts_mut(w.v, w.len),
            )
        };
        self.update_widest(p, w.grad(), m, v);
        if let Grad::F32 { g, zero: true } = w.g {
            // SAFETY: as above; no other slice of the chunk is alive.
            unsafe { std::slice::from_raw_parts_mut(g, w.len) }.fill(0.0);
        }
    }

    /// [`update_slices`](Self::update_slices) compiled for the widest vector unit this CPU
    /// has. The update is element-wise IEEE arithmetic (Rust contracts nothing into fused
    /// multiply-adds; square root and division are correctly rounded), so every path gives the
    /// same bits: runs stay reproducible across machines.
    fn update_widest(&self, p: &mut [f32], g: GradSlice, m: &mut [f32], v: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has the feature the function is compiled for.
                return unsafe { self.update_avx512(p, g, m, v) };
            }
            if is_x86_feature_detected!("avx2") {
                // SAFETY: as above.
                return unsafe { self.update_avx2(p, g, m, v) };
            }
        }
        self.update_slices(p, g, m, v)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn update_avx512(&self, p: &mut [f32], g: GradSlice, m: &mut [f32], v: &mut [f32]) {
        self.update_slices(p, g, m, v)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn update_avx2(&self, p: &mut [f32], g: GradSlice, m: &mut [f32], v: &mut [f32]) {
        self.update_slices(p, g, m, v)
    }

    /// The update of one chunk. The cases are separate loops (no branch inside), so that
    /// each compiles to straight vector code: the scalar loop with its per-element branches
    /// took 31 ms per step on minilm-l6's parameters, a quarter of a bf16 training step.
    #[inline(always)]
    fn update_slices(&self, p: &mut [f32], g: GradSlice, m: &mut [f32], v: &mut [f32]) {
        let c = self.coef;
        match g {
            GradSlice::F32(g) => self.update_grads(p, g.iter().map(|&x| x * c), m, v),
            GradSlice::Bf16(g) => self.update_grads(p, g.iter().map(|&x| widen(x) * c), m, v),
            GradSlice::Zero => self.update_grads(p, std::iter::repeat(0.0), m, v),
        }
    }

    /// [`update_loop`](Self::update_loop) with or without the L2 term, picked once per chunk.
    #[inline(always)]
    fn update_grads(
        &self,
        p: &mut [f32],
        grads: impl Iterator<Item = f32>,
        m: &mut [f32],
        v: &mut [f32],
    ) {
        if self.l2 != 0.0 {
            self.update_loop::<true>(p, grads, m, v)
        } else {
            self.update_loop::<false>(p, grads, m, v)
        }
    }

    #[inline(always)]
    fn update_loop<const L2: bool>(
        &self,
        p: &mut [f32],
        grads: impl Iterator<Item = f32>,
        m: &mut [f32],
        v: &mut [f32],
    ) {
        for (((p, m), v), mut grad) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(grads) {
            let mut param = *p;
            if L2 {
                grad += self.l2 * param;
            }
            param *= self.decay;
            let mi = self.b1 * *m + (1.0 - self.b1) * grad;
            let vi = self.b2 * *v + (1.0 - self.b2) * grad * grad;
            *m = mi;
            *v = vi;
            *p = param - self.step_size * mi / (vi.sqrt() / self.bc2_sqrt + self.eps);
        }
    }
}

/// Σ x² of one gradient chunk, in float64. Sixteen running sums taken in a fixed order (then
/// added pairwise), not one: a single float64 sum is a chain of dependent additions that no
/// vector unit can shorten, and made the norm pass as slow as the update. The order does not
/// depend on the CPU, so every path gives the same bits.
fn sum_squares(g: GradSlice) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the feature the function is compiled for.
            return unsafe { sum_squares_avx512(g) };
        }
        if is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe { sum_squares_avx2(g) };
        }
    }
    sum_squares_of(g)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sum_squares_avx512(g: GradSlice) -> f64 {
    sum_squares_of(g)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sum_squares_avx2(g: GradSlice) -> f64 {
    sum_squares_of(g)
}

#[inline(always)]
fn sum_squares_of(g: GradSlice) -> f64 {
    match g {
        GradSlice::Zero => 0.0,
        GradSlice::F32(g) => sum_squares_lanes(g, |&x| x),
        GradSlice::Bf16(g) => sum_squares_lanes(g, |&x| widen(x)),
    }
}

#[inline(always)]
fn sum_squares_lanes<T>(g: &[T], value: impl Fn(&T) -> f32) -> f64 {
    const LANES: usize = 16;
    let mut acc = [0.0f64; LANES];
    let blocks = g.chunks_exact(LANES);
    let rest = blocks.remainder();
    for block in blocks {
        for (a, x) in acc.iter_mut().zip(block) {
            let x = value(x) as f64;
            *a += x * x;
        }
    }
    for (a, x) in acc.iter_mut().zip(rest) {
        let x = value(x) as f64;
        *a += x * x;
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] += acc[i + width];
        }
    }
    acc[0]
}

/// `n` zeros for a moment buffer, written now rather than left to the first step, and on
/// transparent huge pages where the kernel offers them (`madvise` mode).
///
/// Why: a buffer from `vec![0.0; n]` is untouched memory the kernel maps to its shared zero
/// page when the step first reads it, and the write that follows replaces that mapping: a
/// copy-on-write fault per 4 KiB page, each flushing the TLB of the core running the other
/// OpenMP thread. On minilm-l6 (180 MB of moments) the first step took 280-440 ms against
/// ~15 ms for the others. On 2 MiB pages the buffers also take fewer TLB misses in every
/// later step, which streams through all of them.
fn zeroed(n: usize) -> Vec<f32> {
    let mut v = Vec::<f32>::with_capacity(n);
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_ptr() as usize;
        let end = start + n * std::mem::size_of::<f32>();
        let (lo, hi) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
        if hi > lo {
            // SAFETY: [lo, hi) lies inside the buffer just allocated, which nothing else
            // uses; the advice changes how pages are backed, never their contents. A kernel
            // without THP refuses it, which is harmless.
            unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE) };
        }
    }
    v.resize(n, 0.0);
    v
}

/// A coalesced sparse gradient: its rows (ascending) and their values, [rows, width].
struct SparseGrad {
    rows: Vec<usize>,
    values: Tensor,
}

impl FusedAdam {
    /// Whether the fused step can run on these parameters: CPU, float32, contiguous.
    pub fn supports(vars: &[Tensor]) -> bool {
        vars.iter()
            .all(|v| v.device() == Device::Cpu && v.kind() == Kind::Float && v.is_contiguous())
    }

    pub fn new(vars: &[Tensor], lr: f64, weight_decay: f64, decoupled: bool) -> Self {
        let slots = vars
            .iter()
            .map(|v| {
                let n = v.numel();
                Slot {
                    var: v.shallow_clone(),
                    exp_avg: zeroed(n),
                    exp_avg_sq: zeroed(n),
                    touched: Vec::new(),
                    touched_rows: Vec::new(),
                }
            })
            .collect();
        FusedAdam {
            slots,
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            decoupled,
            step: 0,
        }
    }

    /// The parameters, in the order [`step_grads`](Self::step_grads) takes their gradients.
    pub fn vars(&self) -> Vec<&Tensor> {
        self.slots.iter().map(|s| &s.var).collect()
    }

    /// A copy of the state (see [`AdamState`]).
    pub fn state(&self) -> AdamState {
        let slots = self.slots.iter().map(|s| {
            let rows: Vec<i64> = s.touched_rows.iter().map(|&r| r as i64).collect();
            [
                Tensor::from_slice(&s.exp_avg),
                Tensor::from_slice(&s.exp_avg_sq),
                Tensor::from_slice(&rows),
            ]
        });
        AdamState {
            step: self.step,
            slots: slots.collect(),
        }
    }

    /// Takes over a [`state`](Self::state) saved for the same parameters.
    pub fn set_state(&mut self, state: &AdamState) -> anyhow::Result<()> {
        anyhow::ensure!(
            state.slots.len() == self.slots.len(),
            "optimiser state for {} parameters, the model trains {}",
            state.slots.len(),
            self.slots.len()
        );
        for (slot, [m, v, rows]) in self.slots.iter_mut().zip(&state.slots) {
            let m = Vec::<f32>::try_from(m.reshape([-1]))?;
            let v = Vec::<f32>::try_from(v.reshape([-1]))?;
            let n = slot.exp_avg.len();
            anyhow::ensure!(
                m.len() == n && v.len() == n,
                "optimiser state of the wrong size"
            );
            let rows: Vec<usize> = Vec::<i64>::try_from(rows.reshape([-1]))?
                .into_iter()
                .map(|r| r as usize)
                .collect();
            slot.touched = Vec::new();
            if !rows.is_empty() {
                slot.touched = vec![false; slot.var.size()[0] as usize];
                for &r in &rows {
                    slot.touched[r] = true;
                }
            }
            (slot.exp_avg, slot.exp_avg_sq, slot.touched_rows) = (m, v, rows);
        }
        self.step = state.step;
        Ok(())
    }

    fn grads(&self) -> Vec<Option<Tensor>> {
        self.slots
            .iter()
            .map(|s| {
                let g = s.var.grad();
                (g.defined()).then_some(g)
            })
            .collect()
    }

    /// Sets every `.grad` to zero (only needed before the first backward pass: [`step`]
    /// leaves the gradients zeroed).
    ///
    /// [`step`]: Self::step
    pub fn zero_grad(&self) {
        for g in self.grads().into_iter().flatten() {
            let mut g = g;
            let _ = g.zero_();
        }
    }

    /// Clips the `.grad` gradients to a global L2 norm of `max_norm` (0: no clipping), takes
    /// one optimiser step and zeroes the gradients. Returns the pre-clip gradient norm.
    pub fn step(&mut self, max_norm: f64) -> f64 {
        let grads = self.grads();
        self.step_inner(&grads, max_norm, true)
    }

    /// The same step on gradients given in the order of [`vars`](Self::vars) (`None`: no
    /// gradient, the parameter is left alone); dense gradients must be contiguous float32 or
    /// bfloat16 (read as the float32 numbers they stand for: the step is that of their float32
    /// copies, bit for bit), sparse ones coalescible COO tensors of a 2-D parameter. The
    /// gradients are only read.
    pub fn step_grads(&mut self, grads: &[Option<Tensor>], max_norm: f64) -> f64 {
        assert_eq!(
            grads.len(),
            self.slots.len(),
            "one gradient slot per parameter"
        );
        self.step_inner(grads, max_norm, false)
    }

    fn step_inner(&mut self, grads: &[Option<Tensor>], max_norm: f64, zero: bool) -> f64 {
        let all_rows = self.weight_decay != 0.0;
        // Sparse gradients, coalesced; kept alive until the update has run.
        let sparse: Vec<Option<SparseGrad>> = grads
            .iter()
            .map(|g| match g {
                Some(g) if g.is_sparse() => {
                    let g = g.coalesce();
                    let rows: Vec<i64> = Vec::try_from(g.indices().reshape([-1]))
                        .expect("sparse gradient indices are int64");
                    Some(SparseGrad {
                        rows: rows.into_iter().map(|r| r as usize).collect(),
                        values: g.values().contiguous(),
                    })
                }
                _ => None,
            })
            .collect();
        let mut work = Vec::new();
        for ((slot, g), sg) in self.slots.iter_mut().zip(grads).zip(&sparse) {
            let Some(g) = g else { continue };
            let p = slot.var.data_ptr() as *mut f32;
            let m = slot.exp_avg.as_mut_ptr();
            let v = slot.exp_avg_sq.as_mut_ptr();
            if let Some(sg) = sg {
                let size = slot.var.size();
                assert!(
                    size.len() == 2,
                    "fused optimiser: a sparse gradient of a 2-D parameter"
                );
                let (nrows, width) = (size[0] as usize, size[1] as usize);
                if slot.touched.is_empty() {
                    slot.touched = vec![false; nrows];
                }
                for &r in &sg.rows {
                    if !slot.touched[r] {
                        slot.touched[r] = true;
                        slot.touched_rows.push(r);
                    }
                }
                slot.touched_rows.sort_unstable();
                let gp = sg.values.data_ptr() as *mut f32;
                let mut next = sg.rows.iter().enumerate().peekable();
                let rows: Box<dyn Iterator<Item = usize>> = if all_rows {
                    Box::new(0..nrows)
                } else {
                    Box::new(slot.touched_rows.iter().copied())
                };
                for r in rows {
                    let g = match next.peek() {
                        Some(&(j, &row)) if row == r => {
                            next.next();
                            // SAFETY: j < nnz rows of the [nnz, width] values.
                            let g = unsafe { gp.add(j * width) };
                            Grad::F32 { g, zero: false }
                        }
                        _ => Grad::Zero,
                    };
                    // SAFETY: r < nrows, so the row lies inside every buffer.
                    unsafe {
                        work.push(Work {
                            p: p.add(r * width),
                            g,
                            m: m.add(r * width),
                            v: v.add(r * width),
                            len: width,
                        });
                    }
                }
                continue;
            }
            let bf16 = g.kind() == Kind::BFloat16;
            assert!(
                g.is_contiguous() && (g.kind() == Kind::Float || bf16) && !(bf16 && zero),
                "fused optimiser: gradient of a parameter is not contiguous float32 or bfloat16"
            );
            let n = slot.exp_avg.len();
            assert_eq!(g.numel(), n, "fused optimiser: gradient of another size");
            let gp = g.data_ptr();
            for start in (0..n).step_by(CHUNK) {
                let len = CHUNK.min(n - start);
                // SAFETY: start + len <= n, the length of every buffer.
                unsafe {
                    let g = if bf16 {
                        Grad::Bf16((gp as *const u16).add(start))
                    } else {
                        Grad::F32 {
                            g: (gp as *mut f32).add(start),
                            zero,
                        }
                    };
                    work.push(Work {
                        p: p.add(start),
                        g,
                        m: m.add(start),
                        v: v.add(start),
                        len,
                    });
                }
            }
        }
        // Per-chunk sums collected in order and added sequentially: the same norm, bit for
        // bit, whatever the thread count or scheduling (runs stay reproducible).
        let partial: Vec<f64> = crate::team::map(work.len(), |i| sum_squares(work[i].grad()));
        let norm = partial.iter().sum::<f64>().sqrt();
        let coef = if max_norm > 0.0 {
            (max_norm / (norm + 1e-6)).min(1.0) as f32
        } else {
            1.0
        };
        self.step += 1;
        let t = self.step as i32;
        let bc1 = 1.0 - self.beta1.powi(t);
        let bc2 = 1.0 - self.beta2.powi(t);
        let consts = Consts {
            coef,
            step_size: (self.lr / bc1) as f32,
            bc2_sqrt: bc2.sqrt() as f32,
            b1: self.beta1 as f32,
            b2: self.beta2 as f32,
            eps: self.eps as f32,
            decay: if self.decoupled {
                (1.0 - self.lr * self.weight_decay) as f32
            } else {
                1.0
            },
            l2: if self.decoupled {
                0.0
            } else {
                self.weight_decay as f32
            },
        };
        crate::team::for_each(work.len(), |i| consts.update(&work[i]));
        drop(sparse);
        norm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic test data with a spread of magnitudes and signs, and a length that is
    /// not a multiple of any vector width.
    fn data(n: usize, salt: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let x = ((i as u32).wrapping_mul(2_654_435_761) ^ salt) as f32 / u32::MAX as f32;
                (x - 0.5) * 10f32.powi((i % 7) as i32 - 3)
            })
            .collect()
    }

    /// `x` rounded to bfloat16 (its bits) and the float32 it stands for.
    fn bf16(x: &[f32]) -> (Vec<u16>, Vec<f32>) {
        let bits: Vec<u16> = x.iter().map(|v| (v.to_bits() >> 16) as u16).collect();
        let wide = bits
            .iter()
            .map(|&b| f32::from_bits((b as u32) << 16))
            .collect();
        (bits, wide)
    }

    #[test]
    fn every_sum_of_squares_path_gives_the_same_bits_and_the_sum() {
        for n in [0, 1, 15, 16, 17, 1000, 32_771] {
            let g = data(n, 7);
            let (g16, g16_wide) = bf16(&g);
            for (slice, values) in [(GradSlice::F32(&g), &g), (GradSlice::Bf16(&g16), &g16_wide)] {
                let generic = sum_squares_of(slice);
                assert_eq!(sum_squares(slice).to_bits(), generic.to_bits(), "n {n}");
                // A bfloat16 chunk sums exactly as its float32 copy does.
                let copy = sum_squares_of(GradSlice::F32(values));
                assert_eq!(copy.to_bits(), generic.to_bits(), "n {n}");
                #[cfg(target_arch = "x86_64")]
                {
                    if is_x86_feature_detected!("avx2") {
                        let avx2 = unsafe { sum_squares_avx2(slice) };
                        assert_eq!(avx2.to_bits(), generic.to_bits(), "n {n}");
                    }
                }
                // The plain sequential sum, which the lanes reorder.
                let reference: f64 = values.iter().map(|&x| x as f64 * x as f64).sum();
                assert!(
                    (generic - reference).abs() <= 1e-12 * reference.max(1e-300),
                    "n {n}: {generic} vs {reference}"
                );
            }
        }
    }

    fn consts(l2: f32, decay: f32) -> Consts {
        Consts {
            coef: 0.75,
            step_size: 1e-3,
            bc2_sqrt: 0.0447,
            b1: 0.9,
            b2: 0.999,
            eps: 1e-8,
            decay,
            l2,
        }
    }

    /// The update as a plain scalar loop, element by element.
    fn scalar(c: &Consts, p: &mut [f32], g: Option<&[f32]>, m: &mut [f32], v: &mut [f32]) {
        for i in 0..p.len() {
            let mut grad = g.map_or(0.0, |g| g[i] * c.coef);
            let mut param = p[i];
            if c.l2 != 0.0 {
                grad += c.l2 * param;
            }
            param *= c.decay;
            m[i] = c.b1 * m[i] + (1.0 - c.b1) * grad;
            v[i] = c.b2 * v[i] + (1.0 - c.b2) * grad * grad;
            p[i] = param - c.step_size * m[i] / (v[i].sqrt() / c.bc2_sqrt + c.eps);
        }
    }

    #[test]
    fn the_vector_update_is_the_scalar_update_bit_for_bit() {
        let n = 1037;
        let g = data(n, 1);
        let (g16, g16_wide) = bf16(&g);
        for (l2, decay) in [(0.0, 1.0), (0.0, 0.9999), (0.01, 1.0)] {
            // (what the update reads, the float32 numbers the scalar loop gets)
            let cases = [
                (GradSlice::F32(&g), Some(g.as_slice())),
                (GradSlice::Bf16(&g16), Some(g16_wide.as_slice())),
                (GradSlice::Zero, None),
            ];
            for (grad, reference) in cases {
                let c = consts(l2, decay);
                let (mut p0, mut m0) = (data(n, 2), data(n, 3));
                let mut v0: Vec<f32> = data(n, 4).iter().map(|x| x.abs()).collect();
                let (mut p1, mut m1, mut v1) = (p0.clone(), m0.clone(), v0.clone());
                scalar(&c, &mut p0, reference, &mut m0, &mut v0);
                c.update_widest(&mut p1, grad, &mut m1, &mut v1);
                let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&p0), bits(&p1), "l2 {l2} decay {decay}");
                assert_eq!(bits(&m0), bits(&m1));
                assert_eq!(bits(&v0), bits(&v1));
            }
        }
    }
}
