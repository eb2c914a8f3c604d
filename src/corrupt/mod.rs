//! Controlled damage: which layers (spec), which tensors inside them (select), and how
//! (method), with a report of every tensor touched.

pub mod checkpoint;
pub mod method;
pub mod select;
pub mod spec;

use crate::error::user;
use crate::model::config::EncoderConfig;
use crate::model::layout::Layout;
use method::{BitFlips, Kaiming, Method};
use rand::SeedableRng;
use select::{Include, Module};
use serde::{Deserialize, Serialize};
use spec::LayerSpec;
use std::collections::HashMap;
use tch::{Device, Kind, Tensor};

/// What to damage and how; serialised into run.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorruptionConfig {
    pub spec: LayerSpec,
    pub modules: Vec<Module>,
    pub include: Include,
    pub method: Method,
    pub kaiming: Kaiming,
    pub seed: u64,
}

impl CorruptionConfig {
    pub fn is_none(&self) -> bool {
        self.spec == LayerSpec::None && !self.include.embeddings && !self.include.pooler
    }
}

/// Norm, mean and (unbiased) standard deviation of a tensor's values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub norm: f64,
    pub mean: f64,
    pub std: f64,
}

impl Stats {
    fn of(values: &[f32]) -> Self {
        let n = values.len().max(1) as f64;
        let norm = values
            .iter()
            .map(|&v| (v as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        Stats {
            norm,
            mean,
            std: method::std_unbiased(values),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TensorReport {
    pub name: String,
    pub shape: Vec<usize>,
    pub before: Stats,
    pub after: Stats,
    /// Values whose bits changed.
    pub changed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bit_flips: Option<BitFlips>,
}

/// Everything a corruption did, for run.json and for the printed table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CorruptionReport {
    pub config: CorruptionConfig,
    /// 1-based encoder layers.
    pub layers: Vec<usize>,
    pub tensors: Vec<TensorReport>,
    pub values: u64,
    pub changed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bit_flips: Option<BitFlips>,
}

/// The selected layer numbers and tensor names (normalised, sorted) for one model.
pub fn selection(
    cfg: &CorruptionConfig,
    model: &EncoderConfig,
) -> anyhow::Result<(Vec<usize>, Vec<String>)> {
    let layout = Layout::of(model.family);
    let layers = cfg.spec.resolve(model.num_layers as usize)?;
    let mut names: Vec<String> = layers
        .iter()
        .flat_map(|&l| select::layer_tensors(layout, l, &cfg.modules))
        .collect();
    if cfg.include.embeddings {
        names.extend(select::embeddings_tensors(layout, model));
    }
    if cfg.include.pooler {
        names.extend(select::pooler_tensors(model.family)?);
    }
    names.sort();
    names.dedup();
    Ok((layers, names))
}

fn to_vec(t: &Tensor) -> (Vec<f32>, Vec<usize>) {
    let cpu = t
        .detach()
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous();
    let shape: Vec<usize> = cpu.size().iter().map(|&d| d as usize).collect();
    let values = Vec::<f32>::try_from(cpu.flatten(0, -1)).expect("float tensor");
    (values, shape)
}

/// Damages, in place, the selected tensors among `tensors` (names normalised to the
/// *ForSequenceClassification layout, as the model's var store and
/// [`read_tensors`](crate::model::checkpoint::read_tensors) give them).
pub fn corrupt(
    cfg: &CorruptionConfig,
    model: &EncoderConfig,
    tensors: &HashMap<String, Tensor>,
) -> anyhow::Result<CorruptionReport> {
    let (layers, names) = selection(cfg, model)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut originals = Vec::with_capacity(names.len());
    let mut values = Vec::with_capacity(names.len());
    for name in &names {
        let t = tensors.get(name).ok_or_else(|| {
            user(format!(
                "tensor {name} is not in the checkpoint, so it cannot be corrupted"
            ))
        })?;
        let (v, shape) = to_vec(t);
        originals.push((v.clone(), shape));
        values.push(v);
    }
    let flips: Vec<Option<BitFlips>> = match &cfg.method {
        Method::BitflipCount(k) => method::flip_exact(&mut values, *k, &mut rng)?
            .into_iter()
            .map(Some)
            .collect(),
        m => names
            .iter()
            .zip(values.iter_mut())
            .zip(&originals)
            .map(|((name, v), (_, shape))| {
                let f = method::apply(m, v, shape, select::role(name), cfg.kaiming, &mut rng);
                matches!(m, Method::BitflipRate(_)).then_some(f)
            })
            .collect(),
    };
    let mut reports = Vec::with_capacity(names.len());
    tch::no_grad(|| {
        for (i, name) in names.iter().enumerate() {
            let (before, shape) = &originals[i];
            let after = &values[i];
            let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            let mut target = tensors[name].shallow_clone();
            target.copy_(
                &Tensor::from_slice(after)
                    .view(dims.as_slice())
                    .to_device(target.device()),
            );
            let changed = before
                .iter()
                .zip(after)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count() as u64;
            reports.push(TensorReport {
                name: name.clone(),
                shape: shape.clone(),
                before: Stats::of(before),
                after: Stats::of(after),
                changed,
                bit_flips: flips[i],
            });
        }
    });
    let bit_flips = flips
        .iter()
        .flatten()
        .fold(None, |acc: Option<BitFlips>, f| {
            let mut total = acc.unwrap_or_default();
            total.add(f);
            Some(total)
        });
    Ok(CorruptionReport {
        config: cfg.clone(),
        layers,
        values: originals.iter().map(|(v, _)| v.len() as u64).sum(),
        changed: reports.iter().map(|r| r.changed).sum(),
        tensors: reports,
        bit_flips,
    })
}

/// A short table: one row per layer (or embeddings / pooler), not per tensor.
pub fn format_report(report: &CorruptionReport) -> String {
    let group = |name: &str| -> String {
        let parts: Vec<&str> = name.split('.').collect();
        match parts.iter().position(|p| *p == "layer") {
            Some(i) => parts
                .get(i + 1)
                .and_then(|n| n.parse::<usize>().ok())
                .map_or("layer ?".into(), |n| format!("layer {}", n + 1)),
            None if name.contains("embeddings") => "embeddings".into(),
            None => "pooler".into(),
        }
    };
    let mut rows: Vec<(String, usize, u64, u64, f64, f64)> = Vec::new();
    for t in &report.tensors {
        let g = group(&t.name);
        let n: u64 = t.shape.iter().product::<usize>() as u64;
        match rows.iter_mut().find(|r| r.0 == g) {
            Some(r) => {
                r.1 += 1;
                r.2 += n;
                r.3 += t.changed;
                r.4 += t.before.norm.powi(2);
                r.5 += t.after.norm.powi(2);
            }
            None => rows.push((
                g,
                1,
                n,
                t.changed,
                t.before.norm.powi(2),
                t.after.norm.powi(2),
            )),
        }
    }
    let c = &report.config;
    let mut out = format!(
        "corruption {} with {} (kaiming {:?}, seed {}): {} tensors, {} of {} values changed\n",
        c.spec,
        c.method,
        c.kaiming,
        c.seed,
        report.tensors.len(),
        report.changed,
        report.values
    );
    out.push_str(&format!(
        "{:<12} {:>7} {:>11} {:>11} {:>12} {:>12}\n",
        "part", "tensors", "values", "changed", "norm before", "norm after"
    ));
    for (g, n, v, ch, b, a) in rows {
        out.push_str(&format!(
            "{g:<12} {n:>7} {v:>11} {ch:>11} {:>12.3} {:>12.3}\n",
            b.sqrt(),
            a.sqrt()
        ));
    }
    if let Some(f) = report.bit_flips {
        out.push_str(&format!(
            "bit flips: {} sign, {} exponent, {} mantissa\n",
            f.sign, f.exponent, f.mantissa
        ));
    }
    out
}
