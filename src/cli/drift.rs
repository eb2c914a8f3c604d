//! `heal drift`: how far representations moved between two embedding sets of the same examples,
//! layer by layer; or a heatmap of CKA to a reference across many runs.

use clap::Args;
use heal::analysis::drift::{self, DriftInputs, DriftRequest, EmbeddingInput};
use heal::error::user;
use heal::train::config::EmbeddingStage;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  heal drift runs/figures/all runs/figures/all --stage-a corrupted --stage-b best
  heal drift runs/figures/clean emb/minilm-pretrained --out drift-clean
  heal drift --reference runs/figures/clean runs/figures/top25 runs/figures/bottom25 runs/figures/all --out figures/drift

Each input is an embeddings folder (from `heal embed` or RUN/embeddings/<stage>) or a run
directory (then RUN/embeddings/<stage>). Rows are matched by example id.")]
pub struct DriftArgs {
    /// Two embedding sets (A then B), or, with --reference, any number of runs to compare with
    /// the reference.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Compare every input with this one (e.g. the clean fine-tuned run) and draw a heatmap of
    /// linear CKA, layers x runs.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Stage read from a run directory given as A (and as the reference): pretrained,
    /// corrupted or best.
    #[arg(long, value_enum, default_value = "best")]
    pub stage_a: EmbeddingStage,
    /// Stage read from a run directory given as B (and as every compared run).
    #[arg(long, value_enum, default_value = "best")]
    pub stage_b: EmbeddingStage,
    /// Neighbours for the k-NN accuracy (leave-one-out, Euclidean).
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    /// Output folder: drift.csv (one row per input and layer), drift.json, and with
    /// --reference cka_heatmap.png. Required with --reference.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace an existing output folder (as a whole, once the new one is complete).
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(args: DriftArgs) -> anyhow::Result<()> {
    if args.k == 0 {
        return Err(user("--k 0: give at least 1 neighbour"));
    }
    let input = |path: &PathBuf, stage: EmbeddingStage| EmbeddingInput {
        path: path.clone(),
        stage,
    };
    let inputs = match &args.reference {
        None => {
            if args.inputs.len() != 2 {
                return Err(user(format!(
                    "give exactly two embedding sets (A B), or --reference REF with runs to compare; got {}",
                    args.inputs.len()
                )));
            }
            DriftInputs::Pair {
                a: input(&args.inputs[0], args.stage_a),
                b: input(&args.inputs[1], args.stage_b),
                out: args.out.clone(),
            }
        }
        Some(reference) => DriftInputs::Reference {
            reference: input(reference, args.stage_a),
            runs: args.inputs.iter().map(|p| input(p, args.stage_b)).collect(),
            out: args
                .out
                .clone()
                .ok_or_else(|| user("--reference draws a heatmap: give --out DIR for it"))?,
        },
    };
    print!(
        "{}",
        drift::analyse(&DriftRequest {
            inputs,
            k: args.k,
            overwrite: args.overwrite,
        })?
    );
    if let Some(out) = &args.out {
        println!("drift: {}", out.display());
    }
    Ok(())
}
