//! `heal demo`: minilm-l6 fine-tuned on bbc-news, 3 epochs, on the CPU.

use super::finetune::FinetuneOptions;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Run directory. [default: runs/demo-<time>]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// libtorch threads. [default: one per core]
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let options = FinetuneOptions {
        model: Some(crate::defaults::MINILM_L6.into()),
        data: Some(crate::defaults::BBC_NEWS.into()),
        epochs: Some(3),
        device: Some("cpu".into()),
        threads: args.threads,
        out: Some(
            args.out
                .unwrap_or_else(|| PathBuf::from("runs").join(format!("demo-{stamp}"))),
        ),
        ..Default::default()
    };
    let cfg = options.resolve()?;
    let outcome = crate::train::finetune(&cfg)?;
    crate::summary::print(&cfg, &outcome);
    let png = outcome.run_dir.join("curves.png");
    match crate::analysis::curves::render(&outcome.run_dir, &png) {
        Ok(()) => println!("curves: {}", png.display()),
        Err(e) => log::warn!("could not draw the curves: {e:#}"),
    }
    Ok(())
}
