//! `heal weights`: weight statistics of one checkpoint, or the change between two (or three).

use clap::Args;
use heal::analysis::weights::{write_report, ReportRequest};
use heal::corrupt::spec::LayerSpec;
use heal::error::user;
use heal::hub::model::resolve as resolve_model;
use heal::run_dir::RunDir;
use heal::train::config::CheckpointStage;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  heal weights minilm-l6 --out weights-minilm
  heal weights runs/figures/all                 # pretrained vs corrupted start vs healed
  heal weights CKPT_A CKPT_B --out weights-ab --names before,after")]
pub struct WeightsArgs {
    /// A checkpoint (`minilm-l6` or an HF folder), or a run directory saved with
    /// --save-checkpoint: then the run's pretrained model, its corrupted start
    /// (checkpoint-corrupted/, when the run was corrupted) and its best checkpoint are compared.
    pub a: String,
    /// A second checkpoint: the change from A to B is measured.
    pub b: Option<String>,
    /// The corrupted start of B (e.g. RUN/checkpoint-corrupted): B's distance to it is measured
    /// too.
    #[arg(long)]
    pub start: Option<String>,
    /// Legend names, comma-separated, in the order A,B[,start]. [default: folder names; for a
    /// run: pretrained,healed,corrupted]
    #[arg(long)]
    pub names: Option<String>,
    /// Histogram bins per module type (1 to 10000).
    #[arg(long, default_value_t = 120)]
    pub bins: usize,
    /// Hub revision (branch, tag or commit) of a model given by hub id. [default: main]
    #[arg(long)]
    pub revision: Option<String>,
    /// Output folder: stats.csv, histograms.png + .csv, and with two checkpoints changes.csv,
    /// modules.csv, layers.csv, change_heatmap.png (and start_heatmap.png with a start),
    /// summary.json. [default: RUN/weights for a run directory]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace an existing output folder (as a whole, once the new one is complete).
    #[arg(long)]
    pub overwrite: bool,
}

struct Inputs {
    a: PathBuf,
    b: Option<PathBuf>,
    start: Option<PathBuf>,
    names: Vec<String>,
    out: PathBuf,
}

fn folder_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn resolve(args: &WeightsArgs) -> anyhow::Result<Inputs> {
    if !(1..=heal::analysis::weights::MAX_BINS).contains(&args.bins) {
        return Err(user(format!(
            "--bins {}: give a bin count from 1 to {}",
            args.bins,
            heal::analysis::weights::MAX_BINS
        )));
    }
    let a_path = Path::new(&args.a);
    if let Some(run_json) = heal::run_dir::read_run_json(a_path)? {
        if args.b.is_some() {
            return Err(user(format!(
                "{}: a run directory compares its own checkpoints; give either one run directory or two checkpoints",
                a_path.display()
            )));
        }
        let run = RunDir::at(a_path);
        let best = run.checkpoint(CheckpointStage::Best);
        if !best.is_dir() {
            return Err(user(format!(
                "{}: the run has no checkpoint/; train it with --save-checkpoint corrupted,best",
                a_path.display()
            )));
        }
        let pretrained =
            heal::hub::model::resolve(&run_json.config.model, run_json.config.revision.as_deref())?;
        let corrupted = run.checkpoint(CheckpointStage::Corrupted);
        let was_corrupted = run_json.config.corrupt != LayerSpec::None;
        let start = match &args.start {
            Some(s) => Some(resolve_model(s, args.revision.as_deref())?),
            None => (was_corrupted && corrupted.is_dir()).then_some(corrupted),
        };
        return Ok(Inputs {
            a: pretrained,
            b: Some(best),
            start,
            names: vec!["pretrained".into(), "healed".into(), "corrupted".into()],
            out: args.out.clone().unwrap_or_else(|| run.weights()),
        });
    }
    let a = resolve_model(&args.a, args.revision.as_deref())?;
    let b = args
        .b
        .as_deref()
        .map(|m| resolve_model(m, args.revision.as_deref()))
        .transpose()?;
    let start = args
        .start
        .as_deref()
        .map(|m| resolve_model(m, args.revision.as_deref()))
        .transpose()?;
    if start.is_some() && b.is_none() {
        return Err(user("--start needs a second checkpoint B to measure"));
    }
    let out = args.out.clone().ok_or_else(|| {
        user("--out is required unless the first argument is a run directory (e.g. --out weights-minilm)")
    })?;
    // The argument as typed names a default model (minilm-l6) better than its folder does.
    let label = |arg: &str, path: &Path| {
        if arg == heal::defaults::MINILM_L6 {
            arg.to_string()
        } else {
            folder_name(path)
        }
    };
    let mut names = vec![label(&args.a, &a)];
    if let (Some(arg), Some(p)) = (&args.b, &b) {
        names.push(label(arg, p));
    }
    if let (Some(arg), Some(p)) = (&args.start, &start) {
        names.push(label(arg, p));
    }
    Ok(Inputs {
        a,
        b,
        start,
        names,
        out,
    })
}

pub fn run(args: WeightsArgs) -> anyhow::Result<()> {
    let mut inputs = resolve(&args)?;
    if let Some(names) = &args.names {
        let given: Vec<String> = names.split(',').map(|s| s.trim().to_string()).collect();
        let needed = 1 + inputs.b.is_some() as usize + inputs.start.is_some() as usize;
        if given.len() != needed || given.iter().any(|s| s.is_empty()) {
            return Err(user(format!(
                "--names {names:?}: give {needed} non-empty names, comma-separated (A,B[,start])"
            )));
        }
        inputs.names = given;
    }
    let request = ReportRequest {
        a: inputs.a,
        b: inputs.b,
        start: inputs.start,
        names: inputs.names,
        bins: args.bins,
        out: inputs.out,
        overwrite: args.overwrite,
    };
    print!("{}", write_report(&request)?);
    println!("weights analysis: {}", request.out.display());
    Ok(())
}
