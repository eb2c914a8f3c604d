//! `heal report`: the study (index.html), tables and charts from a sweep directory.

use clap::Args;
use heal::fsio::{Kind, Output};
use heal::sweep::report::{self, Protocol};
use heal::sweep::Plan;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "Example:
  heal report runs/sweep-cpu                    # index.html (the study), report.md, runs.csv, ...
  heal report runs/sweep-cpu --select validation")]
pub struct ReportArgs {
    /// The sweep directory (with plan.json and cells/), as written by `heal sweep`, by any
    /// number of machines.
    pub sweep: PathBuf,
    /// How epoch and learning rate are chosen: eval (the paper's: by the evaluation split's
    /// score) or validation (by a validation carve-out; cells need validation-split).
    #[arg(long, value_enum, default_value_t = Protocol::Eval)]
    pub select: Protocol,
    /// Output folder. [default: SWEEP/report]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace an existing report folder (as a whole, once the new one is complete).
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let out = args.out.unwrap_or_else(|| args.sweep.join("report"));
    let out = Output::check("--out", &out, Kind::Folder, args.overwrite)?;
    let plan = Plan::read(&args.sweep)?;
    let report = report::build(&plan, args.select)?;
    let written = report::write(&report, &out)?;
    println!("{}", report.markdown);
    for p in written {
        eprintln!("wrote {}", p.display());
    }
    if report.finished < report.cells {
        eprintln!(
            "{} of {} cells are not finished: their table cells say so",
            report.cells - report.finished,
            report.cells
        );
    }
    Ok(())
}
