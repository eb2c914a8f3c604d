//! `heal demo`: the healing study on the embedded defaults (minilm-l6 on bbc-news, four
//! corruption settings, on the CPU), ending with the report page.

use clap::Args;
use heal::demo::{self, DemoRequest};
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  heal demo                                  # runs/demo/ (4 cells), its report in runs/demo/report/
  heal demo --report figures                 # what the README's first command runs
  heal demo --out runs/demo2 --threads 2     # rerunning the same command resumes a killed demo")]
pub struct DemoArgs {
    /// The study's sweep directory (plan.json, cells/); a rerun skips finished cells.
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
    /// The report folder (index.html, index.md, runs.csv, figures/). [default: OUT/report]
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// libtorch threads. [default: one per core]
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let report = args.report.unwrap_or_else(|| args.out.join("report"));
    let outcome = demo::run(&DemoRequest {
        out: args.out,
        report,
        threads: args.threads,
    })?;
    println!("{}", outcome.markdown);
    for p in outcome.written.iter().skip(1) {
        eprintln!("wrote {}", p.display());
    }
    println!(
        "the study of {} cells: {}",
        outcome.cells,
        outcome.written.first().unwrap_or(&outcome.report).display()
    );
    Ok(())
}
