//! inference-passes: `heal embed`'s encoding run several times in one process, each pass timed,
//! so that examples/bench/inference.py can set heal's warm passes beside HF's warm ones (the
//! first pass pays for libtorch's kernel set-up, one per new matrix shape; the later ones
//! reuse it). `heal embed --pooling cls`'s own preparation and encoding ([`extract::prepare`]).
//!
//!   inference-passes --data FILE.jsonl [--layers 6] [--passes 3] [--precision fp32|bf16]
//!                    [--threads 2] [--batch-size 32] [--max-len 128]
//!
//! Prints one line per pass: `pass <i> <seconds>`.

use clap::Parser;
use heal::extract::{self, ExtractRequest, Split};
use heal::model::head::Pooling;
use heal::model::precision::Precision;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "inference-passes")]
struct Args {
    /// JSON lines with a text field: encoded as the evaluation split.
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value = "minilm-l6")]
    model: String,
    /// As `heal embed --layers`.
    #[arg(long, default_value = "6")]
    layers: String,
    #[arg(long, default_value_t = 3)]
    passes: usize,
    #[arg(long, value_enum, default_value_t = Precision::Fp32)]
    precision: Precision,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 128)]
    max_len: usize,
}

// The allocator `heal` runs on.
heal::use_jemalloc!();

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // heal embed's own preparation; nothing is written, so `out` is never looked at.
    let prepared = extract::prepare(&ExtractRequest {
        source: args.model,
        revision: None,
        data: Some(args.data.to_string_lossy().into_owned()),
        data_dir: None,
        split: Split::Eval,
        eval_data: Some(args.data),
        eval_split: None,
        seed: 42,
        layers: args.layers,
        pooling: Some(Pooling::Cls),
        max_len: Some(args.max_len),
        batch_size: args.batch_size,
        device: "cpu".to_string(),
        precision: Some(args.precision),
        threads: Some(args.threads),
        out: PathBuf::new(),
        overwrite: false,
    })?;
    for pass in 1..=args.passes {
        let started = Instant::now();
        let vectors = prepared.encode();
        let seconds = started.elapsed().as_secs_f64();
        // Read the result, so that nothing of the pass is left undone.
        std::hint::black_box(&vectors);
        println!("pass {pass} {seconds:.4}");
    }
    Ok(())
}
