//! Optimiser, learning-rate schedule and gradient clipping.

use crate::model::precision::{to_f32, GradSource};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tch::{nn, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam with decoupled weight decay.
    #[default]
    Adamw,
    /// Plain Adam (the paper's optimiser); weight decay, if any, is L2 on the gradient.
    Adam,
}

/// Builds the optimiser over the var store's trainable variables.
pub fn build(
    vs: &nn::VarStore,
    kind: OptimizerKind,
    lr: f64,
    weight_decay: f64,
) -> anyhow::Result<nn::Optimizer> {
    use nn::OptimizerConfig;
    let opt = match kind {
        OptimizerKind::Adamw => nn::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            wd: weight_decay,
            eps: 1e-8,
            amsgrad: false,
        }
        .build(vs, lr)?,
        OptimizerKind::Adam => nn::Adam {
            beta1: 0.9,
            beta2: 0.999,
            wd: weight_decay,
            eps: 1e-8,
            amsgrad: false,
        }
        .build(vs, lr)?,
    };
    Ok(opt)
}

/// The optimiser the training loop drives: the fused CPU step (see [`super::fused`]) where it
/// applies, else libtorch's optimiser with [`clip_grad_norm`]. Gradients of several backward
/// passes add up until the next step (gradient accumulation).
pub enum Stepper {
    Torch {
        opt: nn::Optimizer,
        trainable: Vec<Tensor>,
        /// The `.grad` fields hold gradients not yet stepped on.
        pending: bool,
    },
    Fused {
        opt: super::fused::FusedAdam,
        /// The sum of the gradients not yet stepped on, in the order of `opt.vars()`.
        pending: Option<Vec<Option<Tensor>>>,
    },
}

impl Stepper {
    /// `fused`: use the fused step when every trainable tensor is a contiguous float32 CPU
    /// tensor (otherwise, and on GPUs, libtorch's optimiser).
    pub fn new(
        vs: &nn::VarStore,
        kind: OptimizerKind,
        lr: f64,
        weight_decay: f64,
        fused: bool,
    ) -> anyhow::Result<Self> {
        let trainable = vs.trainable_variables();
        if fused && super::fused::FusedAdam::supports(&trainable) {
            let decoupled = kind == OptimizerKind::Adamw;
            return Ok(Stepper::Fused {
                opt: super::fused::FusedAdam::new(&trainable, lr, weight_decay, decoupled),
                pending: None,
            });
        }
        Ok(Stepper::Torch {
            opt: build(vs, kind, lr, weight_decay)?,
            trainable,
            pending: false,
        })
    }

    pub fn is_fused(&self) -> bool {
        matches!(self, Stepper::Fused { .. })
    }

    /// The fused optimiser, whose state `--resume` can save (libtorch's cannot be read back).
    pub fn fused(&mut self) -> Option<&mut super::fused::FusedAdam> {
        match self {
            Stepper::Fused { opt, .. } => Some(opt),
            Stepper::Torch { .. } => None,
        }
    }

    pub fn set_lr(&mut self, lr: f64) {
        match self {
            Stepper::Torch { opt, .. } => opt.set_lr(lr),
            Stepper::Fused { opt, .. } => opt.lr = lr,
        }
    }

    /// The backward pass of `loss`, its gradients added to those of the passes since the last
    /// step. The fused step takes the gradients straight from the backward pass, so the
    /// `.grad` fields are never written (no zeroing pass; with one pass per step, no addition).
    /// It also takes a parameter's gradient at a cast of it the pass multiplied with, where
    /// `sources` names one (the parameter reaching the loss through that cast alone, as the
    /// encoder's linear weights do): the gradient in bfloat16 under bf16, which the step
    /// reads as it is. libtorch's optimiser ignores `sources`.
    pub fn accumulate(&mut self, loss: &Tensor, sources: &[&GradSource]) {
        match self {
            Stepper::Torch { opt, pending, .. } => {
                if !*pending {
                    opt.zero_grad();
                    *pending = true;
                }
                loss.backward();
            }
            Stepper::Fused { opt, pending } => {
                // Frozen tensors (requires_grad off) stay in the var store's trainable list;
                // they get no gradient.
                let vars = opt.vars();
                let sources: Vec<&GradSource> = sources
                    .iter()
                    .copied()
                    .filter(|s| s.tensor.requires_grad())
                    .collect();
                // Parameter (by data pointer) -> (source, first row, rows).
                let at_cast: HashMap<usize, (usize, i64, i64)> = sources
                    .iter()
                    .enumerate()
                    .flat_map(|(i, s)| s.parts.iter().map(move |&(p, at, n)| (p, (i, at, n))))
                    .collect();
                let direct: Vec<&Tensor> = vars
                    .iter()
                    .copied()
                    .filter(|v| {
                        v.requires_grad() && !at_cast.contains_key(&(v.data_ptr() as usize))
                    })
                    .collect();
                let inputs: Vec<&Tensor> = direct
                    .iter()
                    .copied()
                    .chain(sources.iter().map(|s| &s.tensor))
                    .collect();
                let computed = Tensor::run_backward(&[loss], &inputs, false, false);
                let (direct_grads, cast_grads) = computed.split_at(direct.len());
                let mut direct_grads = direct_grads.iter();
                let grads: Vec<Option<Tensor>> = tch::no_grad(|| {
                    vars.iter()
                        .map(|var| {
                            if !var.requires_grad() {
                                return None;
                            }
                            let g = match at_cast.get(&(var.data_ptr() as usize)) {
                                Some(&(i, at, n)) if cast_grads[i].defined() => {
                                    cast_grads[i].narrow(0, at, n)
                                }
                                Some(_) => return None,
                                None => direct_grads
                                    .next()
                                    .expect("one gradient per input")
                                    .shallow_clone(),
                            };
                            match (g.defined(), g.is_sparse()) {
                                (false, _) => None,
                                (true, true) => Some(g),
                                (true, false) => Some(g.contiguous()),
                            }
                        })
                        .collect()
                });
                *pending = Some(match pending.take() {
                    None => grads,
                    // Sparse gradients add as sparse tensors (the step coalesces them); the
                    // sum of bfloat16 gradients is taken in float32.
                    Some(sum) => tch::no_grad(|| {
                        sum.into_iter()
                            .zip(grads)
                            .map(|pair| match pair {
                                (Some(a), Some(b)) => Some(to_f32(a) + b),
                                (a, b) => a.or(b),
                            })
                            .collect()
                    }),
                });
            }
        }
    }

    /// The optimiser step on the gradients accumulated since the last one: `mask` applied to
    /// each dense gradient (with its parameter), then clipping to a global norm of `max_norm`
    /// (0: off).
    pub fn step(&mut self, mask: impl Fn(&Tensor, &Tensor) -> Option<Tensor>, max_norm: f64) {
        match self {
            Stepper::Torch {
                opt,
                trainable,
                pending,
            } => {
                tch::no_grad(|| {
                    for var in trainable.iter() {
                        let mut g = var.grad();
                        if g.defined() {
                            if let Some(m) = mask(var, &g) {
                                g.copy_(&m);
                            }
                        }
                    }
                });
                if max_norm > 0.0 {
                    let _ = clip_grad_norm(trainable, max_norm);
                }
                opt.step();
                *pending = false;
            }
            Stepper::Fused { opt, pending } => {
                let Some(sum) = pending.take() else { return };
                let grads: Vec<Option<Tensor>> = tch::no_grad(|| {
                    sum.into_iter()
                        .zip(opt.vars())
                        .map(|(g, var)| {
                            g.map(|g| match g.is_sparse() {
                                true => g,
                                false => mask(var, &g).unwrap_or(g),
                            })
                        })
                        .collect()
                });
                opt.step_grads(&grads, max_norm);
            }
        }
    }
}

/// Linear warm-up over the first `warmup_steps` optimiser steps, then linear decay to zero at
/// `total_steps`. `step` counts from 0; the first step already gets a non-zero rate.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize)]
pub struct LinearSchedule {
    pub peak_lr: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
}

impl LinearSchedule {
    pub fn new(peak_lr: f64, warmup_fraction: f64, total_steps: usize) -> Self {
        let warmup_steps = (warmup_fraction * total_steps as f64).ceil() as usize;
        LinearSchedule {
            peak_lr,
            warmup_steps: warmup_steps.min(total_steps),
            total_steps,
        }
    }

    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            self.peak_lr * (step + 1) as f64 / self.warmup_steps as f64
        } else {
            let remaining = self.total_steps.saturating_sub(step) as f64;
            let span = (self.total_steps - self.warmup_steps).max(1) as f64;
            self.peak_lr * remaining / span
        }
    }
}

/// Scales gradients so that their global L2 norm is at most `max_norm`, without reading the
/// norm back to the host (no per-step synchronisation on a GPU). Returns the pre-clip norm as
/// a device scalar.
pub fn clip_grad_norm(trainable: &[Tensor], max_norm: f64) -> Tensor {
    tch::no_grad(|| {
        let grads: Vec<Tensor> = trainable
            .iter()
            .map(|v| v.grad())
            .filter(|g| g.defined())
            .collect();
        let norms: Vec<Tensor> = grads.iter().map(|g| g.norm()).collect();
        let total = Tensor::stack(&norms, 0).norm();
        let coef = (max_norm / (&total + 1e-6)).clamp_max(1.0);
        for mut g in grads {
            let _ = g.g_mul_(&coef);
        }
        total
    })
}

#[cfg(test)]
mod tests {
    use super::LinearSchedule;

    #[test]
    fn warmup_then_linear_decay() {
        let s = LinearSchedule::new(1.0, 0.1, 100);
        assert_eq!(s.warmup_steps, 10);
        assert!((s.lr(0) - 0.1).abs() < 1e-12);
        assert!((s.lr(9) - 1.0).abs() < 1e-12);
        assert!((s.lr(10) - 1.0).abs() < 1e-12);
        assert!((s.lr(55) - 0.5).abs() < 1e-12);
        assert!(s.lr(99) > 0.0 && s.lr(99) < 0.02);
    }
}
