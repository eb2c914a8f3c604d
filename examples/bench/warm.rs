//! inference-passes: `heal embed`'s encoding run several times in one process, each pass timed,
//! so that examples/bench/inference.py can set heal's warm passes beside HF's warm ones (the
//! first pass pays for libtorch's kernel set-up, one per new matrix shape; the later ones
//! reuse it). The same library calls as `heal embed --layers <last> --pooling cls`.
//!
//!   inference-passes --data FILE.jsonl [--passes 3] [--precision fp32|bf16] [--threads 2]
//!                    [--batch-size 32] [--max-len 128]
//!
//! Prints one line per pass: `pass <i> <seconds>`.

use clap::Parser;
use heal::data::batching::Tokenized;
use heal::data::{self, EvalSource};
use heal::model::checkpoint::CheckpointFiles;
use heal::model::config::EncoderConfig;
use heal::model::head::Pooling;
use heal::model::precision::{self, Precision};
use heal::model::tokenizer::TextEncoder;
use heal::model::SequenceClassifier;
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

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    heal::threads::set("--threads", args.threads)?;
    precision::set(args.precision);
    let model_dir = heal::hub::model::resolve(&args.model, None)?;
    let name = args.data.to_string_lossy().into_owned();
    let task = data::load_task(
        &name,
        None,
        &EvalSource::from_options(Some(&args.data), None),
        42,
    )?;
    let files = CheckpointFiles::locate(&model_dir)?;
    let cfg = EncoderConfig::from_file(&files.config)?;
    let encoder = TextEncoder::from_dir(&model_dir, args.max_len.min(cfg.max_tokens()))?;
    let tokenized = Tokenized::new(&encoder, &task.eval, cfg.uses_token_types())?;
    let last = cfg.num_layers as usize;
    let labels = task.labels.len() as i64;
    let (model, _) =
        SequenceClassifier::from_checkpoint(&files, cfg, labels, Pooling::Cls, tch::Device::Cpu)?;
    for pass in 1..=args.passes {
        let started = Instant::now();
        let vectors = model.layer_vectors(&tokenized, args.batch_size, &[last], Pooling::Cls);
        let seconds = started.elapsed().as_secs_f64();
        // Read the result, so that nothing of the pass is left undone.
        std::hint::black_box(&vectors);
        println!("pass {pass} {seconds:.4}");
    }
    Ok(())
}
