//! heal's fused CPU optimiser step against libtorch's own AdamW/Adam and gradient clipping:
//! the same parameters after several steps of the same gradients.

use heal::train::fused::FusedAdam;
use heal::train::optim::{self, OptimizerKind};
use tch::{nn, Device, Kind, Tensor};

/// Parameters of several shapes (one larger than a work chunk) in a fresh var store.
fn store(seed: i64) -> nn::VarStore {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let _ = root.randn("big", &[300, 400], 0.0, 0.5);
    let _ = root.randn("w", &[7, 5], 0.0, 1.0);
    let _ = root.randn("b", &[5], 0.0, 0.1);
    let _ = root.randn("scalarish", &[1], 0.0, 1.0);
    vs
}

fn sorted(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Runs `steps` steps with the same seeded gradients (scaled by `grad_scale`, so that clipping
/// does or does not engage) through both implementations; returns the largest relative
/// difference of the parameters.
fn compare(kind: OptimizerKind, weight_decay: f64, max_norm: f64, grad_scale: f64) -> f64 {
    // libtorch's seed is process-wide: tests running in parallel must not interleave draws.
    static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let reference = store(1);
    let fused_vs = store(1);
    let lr = 1e-2;
    let mut torch_opt = optim::build(&reference, kind, lr, weight_decay).unwrap();
    let ref_vars = sorted(&reference);
    let fused_vars = sorted(&fused_vs);
    let fused_list: Vec<Tensor> = fused_vars.iter().map(|(_, t)| t.shallow_clone()).collect();
    let mut fused = FusedAdam::new(&fused_list, lr, weight_decay, kind == OptimizerKind::Adamw);
    fused.zero_grad();
    let ref_list: Vec<Tensor> = ref_vars.iter().map(|(_, t)| t.shallow_clone()).collect();
    for step in 0..6 {
        tch::manual_seed(100 + step);
        // The same loss on both: sum(c * p) with seeded c gives gradient c.
        let coeffs: Vec<Tensor> = ref_list
            .iter()
            .map(|p| Tensor::randn(p.size(), (Kind::Float, Device::Cpu)) * grad_scale)
            .collect();
        torch_opt.zero_grad();
        let loss: Tensor = ref_list
            .iter()
            .zip(&coeffs)
            .map(|(p, c)| (p * c).sum(Kind::Float))
            .fold(Tensor::zeros([], (Kind::Float, Device::Cpu)), |a, b| a + b);
        loss.backward();
        if max_norm > 0.0 {
            let _ = optim::clip_grad_norm(&ref_list, max_norm);
        }
        torch_opt.step();
        let loss: Tensor = fused_list
            .iter()
            .zip(&coeffs)
            .map(|(p, c)| (p * c).sum(Kind::Float))
            .fold(Tensor::zeros([], (Kind::Float, Device::Cpu)), |a, b| a + b);
        loss.backward();
        let norm = fused.step(max_norm);
        let expected: f64 = coeffs
            .iter()
            .map(|c| c.square().sum(Kind::Double).double_value(&[]))
            .sum::<f64>()
            .sqrt();
        assert!(
            (norm - expected).abs() <= 1e-6 * expected,
            "norm {norm} vs {expected}"
        );
        // The fused step leaves the gradients zeroed for the next backward pass.
        for p in &fused_list {
            assert_eq!(p.grad().abs().max().double_value(&[]), 0.0);
        }
    }
    ref_vars
        .iter()
        .zip(&fused_vars)
        .map(|((n, a), (m, b))| {
            assert_eq!(n, m);

            let diff = (a - b).abs().max().double_value(&[]);
            // Parameters that Adam drove to near zero are compared against 0.1 (float32
            // rounding of a 1e-2 step is ~1e-9 there; a wrong update would be ~1e-2).
            let scale = a.abs().max().double_value(&[]).max(0.1);

            diff / scale
        })
        .fold(0.0, f64::max)
}

#[test]
fn adamw_matches_libtorch_without_clipping() {
    let d = compare(OptimizerKind::Adamw, 0.01, 0.0, 1.0);
    assert!(d < 1e-5, "relative difference {d}");
}

#[test]
fn adamw_matches_libtorch_with_clipping() {
    // Gradient norm ~ sqrt(120,000) * 3 >> 1: clipping engages on every step.
    let d = compare(OptimizerKind::Adamw, 0.01, 1.0, 3.0);
    assert!(d < 1e-5, "relative difference {d}");
}

#[test]
fn adam_with_l2_matches_libtorch() {
    let d = compare(OptimizerKind::Adam, 0.05, 1.0, 1e-4);
    assert!(d < 1e-5, "relative difference {d}");
}

#[test]
fn only_contiguous_float_cpu_tensors_are_supported() {
    let a = Tensor::zeros([3, 4], (Kind::Float, Device::Cpu));
    assert!(FusedAdam::supports(&[a.shallow_clone()]));
    assert!(!FusedAdam::supports(&[a.tr()]));
    assert!(!FusedAdam::supports(&[a.to_kind(Kind::Double)]));
}
