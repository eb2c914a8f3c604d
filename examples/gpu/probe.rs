//! gpu-probe: what examples/gpu/check.sh measures through heal's own libtorch, beside `heal`.
//!
//!   gpu-probe info                                  libtorch, tch, CUDA as this binary sees them
//!   gpu-probe matmul --device cuda --n 8192         n x n x n matrix products, TFLOP/s
//!   gpu-probe parity --model DIR --reference FILE   every layer's hidden states and the logits
//!                                                   of heal (fp32, bf16) against a reference
//!
//! Each prints one JSON object. The reference is a safetensors file holding the inputs
//! (input_ids, attention_mask, token_type_ids) and, under one or more prefixes (`` for the
//! committed goldens of tests/fixtures, `fp32.` and `bf16.` for check.sh's own),
//! `hidden_states.<i>` and `logits`. Both precisions of heal are compared with every
//! reference present: max |a - b| over real tokens and ||a - b|| / ||b|| per tensor.

use clap::{Parser, Subcommand};
use heal::model::head::Pooling;
use heal::model::precision::{self, Precision};
use heal::model::{Batch, SequenceClassifier};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

#[derive(Parser)]
#[command(name = "gpu-probe")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Versions and devices as this binary's libtorch sees them.
    Info,
    /// Rate of n x n x n matrix products on random data (bf16 and fp32), the mean of --reps
    /// products after --warmup.
    Matmul {
        #[arg(long, default_value = "cuda")]
        device: String,
        #[arg(long, default_value_t = 8192)]
        n: i64,
        #[arg(long, default_value_t = 10)]
        reps: usize,
        #[arg(long, default_value_t = 3)]
        warmup: usize,
    },
    /// heal's hidden states and logits (fp32 and bf16) against a reference file.
    Parity {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        reference: PathBuf,
        #[arg(long, default_value = "cuda")]
        device: String,
    },
}

fn main() -> anyhow::Result<()> {
    let out = match Args::parse().command {
        Command::Info => info(),
        Command::Matmul {
            device,
            n,
            reps,
            warmup,
        } => matmul(heal::device::parse_device(&device)?, n, reps, warmup),
        Command::Parity {
            model,
            reference,
            device,
        } => parity(&model, &reference, heal::device::parse_device(&device)?)?,
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn info() -> Value {
    let versions = heal::versions::Versions::current();
    json!({
        "heal": versions.heal,
        "tch": versions.tch,
        "libtorch_built_against": versions.libtorch,
        "cuda_available": tch::Cuda::is_available(),
        "cudnn_available": tch::Cuda::cudnn_is_available(),
        "cuda_devices": tch::Cuda::device_count(),
        "threads": tch::get_num_threads(),
    })
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

fn matmul(device: Device, n: i64, reps: usize, warmup: usize) -> Value {
    tch::manual_seed(0);
    let mut rates = serde_json::Map::new();
    for (name, kind) in [("bf16", Kind::BFloat16), ("fp32", Kind::Float)] {
        // Random operands: zeros run faster than real data on some GPUs.
        let a = Tensor::randn([n, n], (kind, device));
        let b = Tensor::randn([n, n], (kind, device));
        for _ in 0..warmup {
            let _ = a.matmul(&b);
        }
        sync(device);
        let started = Instant::now();
        for _ in 0..reps {
            let _ = a.matmul(&b);
        }
        sync(device);
        let seconds = started.elapsed().as_secs_f64() / reps as f64;
        let tflops = 2.0 * (n as f64).powi(3) / seconds / 1e12;
        rates.insert(
            name.into(),
            json!({"tflops": tflops, "seconds_per_product": seconds}),
        );
    }
    json!({
        "device": heal::device::device_name(device),
        "n": n, "reps": reps, "warmup": warmup,
        "rates": rates,
    })
}

fn parity(
    model_dir: &std::path::Path,
    reference: &std::path::Path,
    device: Device,
) -> anyhow::Result<Value> {
    let g: HashMap<String, Tensor> = Tensor::read_safetensors(reference)?.into_iter().collect();
    let on = |name: &str| g[name].to_device(device);
    let batch = Batch {
        input_ids: on("input_ids"),
        token_type_ids: on("token_type_ids"),
        attention_mask: on("attention_mask"),
        labels: Tensor::zeros([g["input_ids"].size()[0]], (Kind::Int64, device)),
    };
    let prefixes: Vec<&str> = ["", "fp32.", "bf16."]
        .into_iter()
        .filter(|p| g.contains_key(&format!("{p}logits")))
        .collect();
    let num_labels = g[&format!("{}logits", prefixes[0])].size()[1];
    let (model, _) = SequenceClassifier::load(model_dir, num_labels, Pooling::Cls, device)?;
    let mask = batch
        .attention_mask
        .to_device(Device::Cpu)
        .to_kind(Kind::Double)
        .unsqueeze(-1);
    let mut rows = Vec::new();
    for heal_precision in [Precision::Fp32, Precision::Bf16] {
        precision::set(heal_precision);
        let (states, logits) = tch::no_grad(|| {
            (
                model.hidden_states(&batch, false),
                model.forward_t(&batch, false),
            )
        });
        for prefix in &prefixes {
            let mut layers = Vec::new();
            for (i, state) in states.iter().enumerate() {
                let reference = &g[&format!("{prefix}hidden_states.{i}")];
                layers.push(compare(state, reference, Some(&mask)));
            }
            let logits = compare(&logits, &g[&format!("{prefix}logits")], None);
            let worst = |key: &str| {
                layers
                    .iter()
                    .chain(std::iter::once(&logits))
                    .map(|c| c[key].as_f64().unwrap_or(f64::NAN))
                    .fold(0.0, |acc: f64, x| {
                        if acc.is_nan() || x.is_nan() {
                            f64::NAN
                        } else {
                            acc.max(x)
                        }
                    })
            };
            let (worst_abs, worst_rel) = (worst("max_abs"), worst("rel"));
            rows.push(json!({
                "heal": heal_precision.to_string(),
                "reference": if prefix.is_empty() { "golden".to_string() } else { prefix.trim_end_matches('.').to_string() },
                "hidden_states": layers,
                "logits": logits,
                "worst_max_abs": worst_abs,
                "worst_rel": worst_rel,
            }));
        }
    }
    precision::set(Precision::Fp32);
    Ok(json!({
        "model": model_dir.display().to_string(),
        "reference": reference.display().to_string(),
        "device": heal::device::device_name(device),
        "batch": g["input_ids"].size(),
        "layers": model.config.num_layers,
        "rows": rows,
    }))
}

/// Max |a - b| and ||a - b|| / ||b||, over the real tokens when `mask` ([batch, seq, 1]) is
/// given. NaN anywhere gives NaN (null in the JSON), which never passes a threshold.
fn compare(ours: &Tensor, reference: &Tensor, mask: Option<&Tensor>) -> Value {
    let a = ours.to_device(Device::Cpu).to_kind(Kind::Double);
    let b = reference.to_kind(Kind::Double);
    assert_eq!(a.size(), b.size(), "shapes differ");
    let (diff, b) = match mask {
        Some(m) => ((&a - &b) * m, &b * m),
        None => (&a - &b, b),
    };
    let max_abs = diff.abs().max().double_value(&[]);
    let rel = diff.norm().double_value(&[]) / b.norm().double_value(&[]).max(f64::MIN_POSITIVE);
    let nan = a.isnan().any().int64_value(&[]) != 0;
    json!({
        "max_abs": if nan { f64::NAN } else { max_abs },
        "rel": if nan { f64::NAN } else { rel },
    })
}
