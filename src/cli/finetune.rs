//! `heal finetune`: flags and/or a TOML file -> [`FinetuneConfig`] -> a run directory.

use clap::Args;
use heal::train::FinetuneOptions;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  heal finetune                                        # minilm-l6 on bbc-news, 3 epochs
  heal finetune --model path/to/bert-base-uncased --data my.csv --eval-split 0.1 --save-checkpoint
  heal finetune --data train.jsonl --eval-data test.jsonl --corrupt bottom:50% --epochs 10 --lr 2e-5
  heal finetune --config examples/sst2-8k.toml --seed 7      # a TOML file; flags override it
  heal finetune --resume runs/my-run                         # continue an interrupted run

The run directory (--out) gets run.json, metrics.jsonl, result.json (written last) and, on
request, checkpoint/, checkpoint-corrupted/ and embeddings/<stage>/.")]
pub struct FinetuneArgs {
    /// TOML file with any of the options below (keys are flag names), or a run's run.json to
    /// repeat it (give another --out); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue the interrupted run in RUN from its last finished epoch, with its run.json's
    /// options (only --threads and --keep-resume-state may be given too), as if it had never
    /// stopped.
    #[arg(long, value_name = "RUN", conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    #[command(flatten)]
    pub options: FinetuneOptions,
}

pub fn run(args: FinetuneArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.resume {
        let cfg = heal::train::resume_config(dir, args.options)?;
        let outcome = heal::train::resume(&cfg)?;
        super::summary::print(&cfg, &outcome);
        return Ok(());
    }
    let base = match &args.config {
        Some(path) => FinetuneOptions::from_file(path)?,
        None => FinetuneOptions::default(),
    };
    let cfg = args.options.over(base).resolve()?;
    let outcome = heal::train::finetune(&cfg)?;
    super::summary::print(&cfg, &outcome);
    Ok(())
}
