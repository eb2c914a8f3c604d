//! heal's fused CPU optimiser step against libtorch's own AdamW/Adam and gradient clipping:
//! the same parameters after several steps of the same gradients.

use heal::train::fused::FusedAdam;
use heal::train::optim::{self, OptimizerKind};
use tch::{nn, Device, Kind, Tensor};

/// libtorch's seed is process-wide: tests running in parallel must not interleave draws.
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

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

/// A word-embedding table trained through sparse gradients (`Tensor::embedding(.., sparse)`,
/// taken from the backward pass with `run_backward` and given to `step_grads`) against
/// libtorch's optimiser on the same loss with dense gradients. Ids come from the first 20 of
/// 50 rows, so 30 rows never get a gradient. Returns the largest relative difference and
/// whether the untouched rows stayed bit-identical.
fn compare_sparse(kind: OptimizerKind, weight_decay: f64, max_norm: f64) -> (f64, bool) {
    let _guard = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let make = || {
        tch::manual_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = vs.root().randn("emb", &[50, 8], 0.0, 1.0);
        let _ = vs.root().randn("w", &[8, 3], 0.0, 1.0);
        vs
    };
    let (reference, fused_vs) = (make(), make());
    let lr = 1e-2;
    let mut torch_opt = optim::build(&reference, kind, lr, weight_decay).unwrap();
    let ref_vars = sorted(&reference);
    let fused_vars = sorted(&fused_vs);
    let fused_list: Vec<Tensor> = fused_vars.iter().map(|(_, t)| t.shallow_clone()).collect();
    let ref_list: Vec<Tensor> = ref_vars.iter().map(|(_, t)| t.shallow_clone()).collect();
    let initial = fused_list[0].copy();
    let mut fused = FusedAdam::new(&fused_list, lr, weight_decay, kind == OptimizerKind::Adamw);
    let loss_of = |vars: &[Tensor], ids: &Tensor, c: &Tensor, sparse: bool| {
        let x = Tensor::embedding(&vars[0], ids, -1, false, sparse);
        (x.matmul(&vars[1]) * c).sum(Kind::Float)
    };
    for step in 0..6 {
        tch::manual_seed(200 + step);
        // Repeated ids within a batch: the sparse gradient has duplicate rows to coalesce.
        let ids = Tensor::randint(20, [4, 7], (Kind::Int64, Device::Cpu));
        let c = Tensor::randn([4, 7, 3], (Kind::Float, Device::Cpu)) * 5.0;
        torch_opt.zero_grad();
        loss_of(&ref_list, &ids, &c, false).backward();
        if max_norm > 0.0 {
            let _ = optim::clip_grad_norm(&ref_list, max_norm);
        }
        torch_opt.step();
        let loss = loss_of(&fused_list, &ids, &c, true);
        let grads = Tensor::run_backward(&[&loss], &fused_list, false, false);
        assert!(grads[0].is_sparse() && !grads[1].is_sparse());
        let grads: Vec<Option<Tensor>> = grads.into_iter().map(Some).collect();
        fused.step_grads(&grads, max_norm);
        // The backward pass wrote no `.grad` field.
        assert!(!fused_list[0].grad().defined());
    }
    let untouched = fused_list[0]
        .narrow(0, 20, 30)
        .equal(&initial.narrow(0, 20, 30));
    let diff = ref_list
        .iter()
        .zip(&fused_list)
        .map(|(a, b)| {
            let scale = a.abs().max().double_value(&[]).max(0.1);
            (a - b).abs().max().double_value(&[]) / scale
        })
        .fold(0.0, f64::max);
    (diff, untouched)
}

#[test]
fn sparse_embedding_gradients_match_libtorch_and_skip_untouched_rows() {
    let (d, untouched) = compare_sparse(OptimizerKind::Adamw, 0.0, 1.0);
    assert!(d < 1e-5, "relative difference {d}");
    assert!(
        untouched,
        "rows without a gradient must not move without weight decay"
    );
    let (d, _) = compare_sparse(OptimizerKind::Adam, 0.0, 0.0);
    assert!(d < 1e-5, "relative difference {d}");
}

#[test]
fn sparse_embedding_gradients_with_weight_decay_update_every_row() {
    // Weight decay moves rows without a gradient too: every row is updated, as libtorch does.
    let (d, untouched) = compare_sparse(OptimizerKind::Adamw, 0.1, 1.0);
    assert!(d < 1e-5, "relative difference {d}");
    assert!(!untouched);
    let (d, untouched) = compare_sparse(OptimizerKind::Adam, 0.1, 0.0);
    assert!(d < 1e-5, "relative difference {d}");
    assert!(!untouched);
}

/// Dense gradients given in bfloat16 take the step of their float32 copies, bit for bit
/// (parameters, and the gradient norm clipping reads), on a parameter larger than a work
/// chunk and with clipping engaged.
#[test]
fn bfloat16_gradients_take_the_step_of_their_float32_copies() {
    let _guard = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let a = store(3);
    let b = store(3);
    let vars =
        |vs: &nn::VarStore| -> Vec<Tensor> { sorted(vs).into_iter().map(|(_, t)| t).collect() };
    let (va, vb) = (vars(&a), vars(&b));
    let mut fa = FusedAdam::new(&va, 1e-2, 0.01, true);
    let mut fb = FusedAdam::new(&vb, 1e-2, 0.01, true);
    for step in 0..4 {
        tch::manual_seed(200 + step);
        let g16: Vec<Option<Tensor>> = va
            .iter()
            .map(|p| {
                Some(
                    (Tensor::randn(p.size(), (Kind::Float, Device::Cpu)) * 3.0)
                        .to_kind(Kind::BFloat16),
                )
            })
            .collect();
        let g32: Vec<Option<Tensor>> = g16
            .iter()
            .map(|g| g.as_ref().map(|g| g.to_kind(Kind::Float)))
            .collect();
        let na = fa.step_grads(&g16, 1.0);
        let nb = fb.step_grads(&g32, 1.0);
        assert_eq!(na.to_bits(), nb.to_bits(), "step {step}: norm");
        assert!(na > 1.0, "clipping engages");
        for (x, y) in va.iter().zip(&vb) {
            assert!(x.equal(y), "step {step}: parameters differ");
        }
    }
}
