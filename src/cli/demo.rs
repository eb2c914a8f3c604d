//! `heal demo`: minilm-l6 fine-tuned on bbc-news, 3 epochs, on the CPU.

use clap::Args;
use heal::run_dir::RunDir;
use heal::train::FinetuneOptions;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  heal demo                                  # writes runs/demo-<time>/ and its curves.png
  heal demo --out runs/demo --threads 2")]
pub struct DemoArgs {
    /// Run directory. [default: runs/demo-<time>]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// libtorch threads. [default: one per core]
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let options = FinetuneOptions {
        model: Some(heal::defaults::MINILM_L6.into()),
        data: Some(heal::defaults::BBC_NEWS.into()),
        epochs: Some(3),
        device: Some("cpu".into()),
        threads: args.threads,
        out: Some(args.out.unwrap_or_else(|| {
            PathBuf::from("runs").join(format!("demo-{}", heal::run_dir::timestamp()))
        })),
        ..Default::default()
    };
    let cfg = options.resolve()?;
    let outcome = heal::train::finetune(&cfg)?;
    super::summary::print(&cfg, &outcome);
    let png = RunDir::at(&outcome.run_dir).curves_png();
    match heal::analysis::curves::render(&outcome.run_dir, &png) {
        Ok(()) => println!("curves: {}", png.display()),
        Err(e) => log::warn!("could not draw the curves: {e:#}"),
    }
    Ok(())
}
