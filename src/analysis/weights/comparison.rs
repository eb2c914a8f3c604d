//! The change between two checkpoints: per tensor, and pooled by module and by layer.

use super::{place, Place, Weights};
use serde::Serialize;
use std::collections::BTreeMap;

/// The change from `a` to `b` of one tensor.
#[derive(Debug, Clone, Serialize)]
pub struct TensorChange {
    pub tensor: String,
    #[serde(flatten)]
    pub place: Place,
    /// ||b - a|| / ||a|| (Frobenius); NaN when a is all zeros.
    pub relative_change: f64,
    /// Cosine of the flattened tensors; NaN when either is all zeros.
    pub cosine: f64,
}

/// Sums needed for relative change and cosine, so that modules can be pooled over tensors.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChangeSums {
    pub diff2: f64,
    pub a2: f64,
    pub b2: f64,
    pub ab: f64,
}

impl ChangeSums {
    pub fn of(a: &[f64], b: &[f64]) -> Self {
        let mut s = ChangeSums::default();
        for (&x, &y) in a.iter().zip(b) {
            let d = y - x;
            s.diff2 += d * d;
            s.a2 += x * x;
            s.b2 += y * y;
            s.ab += x * y;
        }
        s
    }

    pub fn add(&mut self, other: ChangeSums) {
        self.diff2 += other.diff2;
        self.a2 += other.a2;
        self.b2 += other.b2;
        self.ab += other.ab;
    }

    pub fn relative_change(&self) -> f64 {
        if self.a2 > 0.0 {
            (self.diff2 / self.a2).sqrt()
        } else {
            f64::NAN
        }
    }

    pub fn cosine(&self) -> f64 {
        let d = (self.a2 * self.b2).sqrt();
        if d > 0.0 {
            self.ab / d
        } else {
            f64::NAN
        }
    }
}

/// The tensor-by-tensor comparison of two checkpoints.
pub struct Comparison {
    pub tensors: Vec<(TensorChange, ChangeSums)>,
    /// Tensors only one side has, or with different shapes (e.g. a head added by fine-tuning).
    pub unmatched: Vec<String>,
}

pub fn compare(a: &Weights, b: &Weights) -> Comparison {
    let mut tensors = Vec::new();
    let mut unmatched = Vec::new();
    for (name, (shape_a, va)) in &a.tensors {
        match b.tensors.get(name) {
            Some((shape_b, vb)) if shape_b == shape_a => {
                let sums = ChangeSums::of(va, vb);
                tensors.push((
                    TensorChange {
                        tensor: name.clone(),
                        place: place(name, a.family),
                        relative_change: sums.relative_change(),
                        cosine: sums.cosine(),
                    },
                    sums,
                ));
            }
            _ => unmatched.push(name.clone()),
        }
    }
    for name in b.tensors.keys() {
        if !a.tensors.contains_key(name) {
            unmatched.push(name.clone());
        }
    }
    Comparison { tensors, unmatched }
}

/// Pools a comparison over the tensors of each (layer, module): weight and bias together.
pub fn by_module(cmp: &Comparison) -> BTreeMap<(Option<usize>, String), ChangeSums> {
    let mut out: BTreeMap<(Option<usize>, String), ChangeSums> = BTreeMap::new();
    for (change, sums) in &cmp.tensors {
        out.entry((change.place.layer, change.place.module.clone()))
            .or_default()
            .add(*sums);
    }
    out
}

/// Pools a comparison over whole layers (every tensor of the layer): embeddings (0), encoder
/// layers in order, then the head (None).
pub fn by_layer(cmp: &Comparison) -> Vec<(Option<usize>, ChangeSums)> {
    let mut out: BTreeMap<Option<usize>, ChangeSums> = BTreeMap::new();
    for (change, sums) in &cmp.tensors {
        out.entry(change.place.layer).or_default().add(*sums);
    }
    let mut rows: Vec<(Option<usize>, ChangeSums)> = out.into_iter().collect();
    let heads = rows.iter().take_while(|(l, _)| l.is_none()).count();
    rows.rotate_left(heads);
    rows
}

/// Refuses to compare checkpoints of different architectures: another family, or an encoder
/// tensor of another shape (a different depth or width), or no encoder tensor in common.
/// Head tensors may differ (a pretrained model's head against a fine-tuned one's labels).
pub fn check_same_architecture(a: &Weights, b: &Weights) -> anyhow::Result<()> {
    let differ = |what: String| {
        Err(crate::error::user(format!(
            "{} and {} are different architectures ({what}): heal weights compares checkpoints of one model",
            a.label, b.label
        )))
    };
    if a.family != b.family {
        return differ(format!(
            "model_type {} against {}",
            a.family.prefix(),
            b.family.prefix()
        ));
    }
    let heads = crate::model::head::Head::tensor_prefixes(a.family);
    let encoder = |name: &str| {
        name.starts_with(&format!("{}.", a.family.prefix()))
            && !heads.iter().any(|p| name.starts_with(p))
    };
    let mut shared = 0;
    for (name, (shape_a, _)) in a.tensors.iter().filter(|(n, _)| encoder(n)) {
        match b.tensors.get(name) {
            Some((shape_b, _)) if shape_b != shape_a => {
                return differ(format!("{name} has shape {shape_a:?} against {shape_b:?}"))
            }
            Some(_) => shared += 1,
            None => {}
        }
    }
    let only = |x: &Weights, y: &Weights| {
        x.tensors
            .keys()
            .find(|n| encoder(n) && !y.tensors.contains_key(*n))
            .cloned()
    };
    if let Some(name) = only(a, b) {
        return differ(format!("{name} is only in {}", a.label));
    }
    if let Some(name) = only(b, a) {
        return differ(format!("{name} is only in {}", b.label));
    }
    if shared == 0 {
        return differ("no encoder tensor in common".into());
    }
    Ok(())
}
