//! `heal curves RUN_DIR`: per-epoch loss and score curves as a PNG.

use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  heal curves runs/demo                      # writes runs/demo/curves.png
  heal curves runs/sst2 --out sst2-curves.png")]
pub struct CurvesArgs {
    /// A run directory (with metrics.jsonl).
    pub run: PathBuf,
    /// Where to write the PNG. [default: RUN/curves.png]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace an existing PNG (and its .svg).
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(args: CurvesArgs) -> anyhow::Result<()> {
    let out = args
        .out
        .unwrap_or_else(|| heal::run_dir::RunDir::at(&args.run).curves_png());
    heal::analysis::curves::render(&args.run, &out, args.overwrite)?;
    println!("{}", out.display());
    Ok(())
}
