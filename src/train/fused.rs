//! A fused Adam/AdamW step with global-norm gradient clipping for float32 parameters on the
//! CPU.
//!
//! libtorch's C++ AdamW runs about seven separate element-wise passes per parameter (and tch
//! does not expose PyTorch's `_fused_adamw_`), and clipping adds a norm and a scaling pass per
//! gradient: on a small encoder with a large embedding table these memory-bound passes take
//! longer than the forward and backward pass of a short-sentence batch. Here the whole step is
//! two passes over memory: one reads every gradient for the global norm, one reads gradient,
//! moments and parameter once, writes moments and parameter, and zeroes the gradient for the
//! next backward pass (so no separate `zero_grad` pass is needed). Work is split into chunks
//! across rayon's threads.
//!
//! Numerically it is PyTorch's `torch.optim.AdamW` / `Adam` (bias-corrected moments,
//! `eps` added after the square root; AdamW decays the parameter by `lr * wd` first, Adam adds
//! `wd * p` to the gradient) applied to gradients clipped as `clip_grad_norm_` does
//! (coefficient `max_norm / (norm + 1e-6)`, capped at 1). tests/fused_optim.rs checks it
//! against libtorch's own optimiser and clipping.

use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

const CHUNK: usize = 1 << 15;

/// Optimiser state of one parameter.
struct Slot {
    var: Tensor,
    exp_avg: Vec<f32>,
    exp_avg_sq: Vec<f32>,
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

/// Raw views of one chunk of one parameter, sent to a worker thread.
struct Work {
    p: *mut f32,
    g: *mut f32,
    m: *mut f32,
    v: *mut f32,
    len: usize,
}

// The pointers of distinct `Work` items never overlap (distinct tensors or disjoint chunks),
// and the tensors outlive the parallel section.
unsafe impl Send for Work {}
unsafe impl Sync for Work {}

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
                    exp_avg: vec![0.0; n],
                    exp_avg_sq: vec![0.0; n],
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

    fn grads(&self) -> Vec<Option<Tensor>> {
        self.slots
            .iter()
            .map(|s| {
                let g = s.var.grad();
                (g.defined()).then_some(g)
            })
            .collect()
    }

    /// Sets every gradient to zero (only needed before the first backward pass: [`step`]
    /// leaves the gradients zeroed).
    pub fn zero_grad(&self) {
        for g in self.grads().into_iter().flatten() {
            let mut g = g;
            let _ = g.zero_();
        }
    }

    /// Clips the gradients to a global L2 norm of `max_norm` (0: no clipping), takes one
    /// optimiser step and zeroes the gradients. Returns the pre-clip gradient norm.
    pub fn step(&mut self, max_norm: f64) -> f64 {
        let grads = self.grads();
        let mut work = Vec::new();
        for (slot, g) in self.slots.iter_mut().zip(&grads) {
            let Some(g) = g else { continue };
            assert!(
                g.is_contiguous() && g.kind() == Kind::Float,
                "fused optimiser: gradient of a parameter is not contiguous float32"
            );
            let n = slot.exp_avg.len();
            let p = slot.var.data_ptr() as *mut f32;
            let gp = g.data_ptr() as *mut f32;
            let m = slot.exp_avg.as_mut_ptr();
            let v = slot.exp_avg_sq.as_mut_ptr();
            for start in (0..n).step_by(CHUNK) {
                let len = CHUNK.min(n - start);
                // SAFETY: start + len <= n, the length of every buffer.
                unsafe {
                    work.push(Work {
                        p: p.add(start),
                        g: gp.add(start),
                        m: m.add(start),
                        v: v.add(start),
                        len,
                    });
                }
            }
        }
        // Per-chunk sums collected in order and added sequentially: the same norm, bit for
        // bit, whatever the thread count or scheduling (runs stay reproducible).
        let partial: Vec<f64> = work
            .par_iter()
            .map(|w| {
                // SAFETY: the gradient chunk is valid for `len` reads (see `Work`).
                let g = unsafe { std::slice::from_raw_parts(w.g, w.len) };
                g.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>()
            })
            .collect();
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
        let step_size = (self.lr / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        let (b1, b2) = (self.beta1 as f32, self.beta2 as f32);
        let eps = self.eps as f32;
        let decay = if self.decoupled {
            (1.0 - self.lr * self.weight_decay) as f32
        } else {
            1.0
        };
        let l2 = if self.decoupled {
            0.0
        } else {
            self.weight_decay as f32
        };
        work.par_iter().for_each(|w| {
            // SAFETY: distinct chunks never overlap (see `Work`), so each slice is exclusive.
            let (p, g, m, v) = unsafe {
                (
                    std::slice::from_raw_parts_mut(w.p, w.len),
                    std::slice::from_raw_parts_mut(w.g, w.len),
                    std::slice::from_raw_parts_mut(w.m, w.len),
                    std::slice::from_raw_parts_mut(w.v, w.len),
                )
            };
            for i in 0..w.len {
                let mut grad = g[i] * coef;
                g[i] = 0.0;
                let mut param = p[i];
                if l2 != 0.0 {
                    grad += l2 * param;
                }
                param *= decay;
                let mi = b1 * m[i] + (1.0 - b1) * grad;
                let vi = b2 * v[i] + (1.0 - b2) * grad * grad;
                m[i] = mi;
                v[i] = vi;
                p[i] = param - step_size * mi / (vi.sqrt() / bc2_sqrt + eps);
            }
        });
        norm
    }
}
