//! `heal tsne`: 2-D maps of pooled embeddings (PCA, then t-SNE), one per run or the paper's
//! Figure 1 as a grid of panels, each with the scores that back the picture.

use clap::Args;
use heal::analysis::tsne::figure::{self, FigureRequest};
use heal::analysis::tsne::TsneParams;
use heal::train::config::EmbeddingStage;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  heal tsne runs/figures/clean                      # writes runs/figures/clean/tsne.png
  heal tsne --panel runs/figures/{clean,top25,bottom25,all} --out figures/figure1-tsne.png
  heal tsne sst2-train-emb --iterations 750         # 67k points: the FFT method, chosen by size

Each input is an embeddings folder (from `heal embed` or RUN/embeddings/<stage>) or a run
directory (then RUN/embeddings/<stage>). Panel titles name the run's corruption setting.")]
pub struct TsneArgs {
    /// Embedding sets or run directories.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Draw all inputs as one grid of panels into --out.
    #[arg(long)]
    pub panel: bool,
    /// Output PNG. [default: <input>/tsne.png for each input; required with --panel]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Stage read from run directories: pretrained, corrupted or best.
    #[arg(long, value_enum, default_value = "best")]
    pub stage: EmbeddingStage,
    /// Layer to map: last, or a layer number (0 = embeddings output).
    #[arg(long, default_value = "last")]
    pub layer: String,
    /// Panel titles, comma-separated, one per input. [default: the corruption setting]
    #[arg(long)]
    pub titles: Option<String>,
    /// Panels per row with --panel. [default: 4, or fewer inputs]
    #[arg(long)]
    pub columns: Option<usize>,
    /// t-SNE perplexity (effective number of neighbours); must be below (n - 1) / 3.
    #[arg(long, default_value_t = 30.0)]
    pub perplexity: f64,
    /// Gradient-descent iterations (the first 250 with early exaggeration 12).
    #[arg(long, default_value_t = 1000)]
    pub iterations: usize,
    /// auto or a number. auto: max(n / 12 / 4, 50) as scikit-learn with exact and bh; with fft
    /// n / 12 / 4 during early exaggeration and n / 4 after, as openTSNE (in its units n / 12
    /// and n).
    #[arg(long, default_value = "auto")]
    pub learning_rate: String,
    /// Seeds the random starting layout (--init random) and the linfa engine. With --init pca
    /// (the default) the heal engine has no randomness: every seed gives the same map.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Barnes-Hut accuracy: 0 is exact (slow), larger is coarser.
    #[arg(long, default_value_t = 0.5)]
    pub theta: f64,
    /// Repulsion: auto (exact at --theta 0, fft from 200,000 points, else bh), exact, bh
    /// (Barnes-Hut, scikit-learn's optimiser) or fft (interpolation on a grid, O(n), openTSNE's
    /// optimiser).
    #[arg(long, default_value = "auto")]
    pub method: String,
    /// PCA dimensions before t-SNE (skipped when the vectors are already this narrow).
    #[arg(long, default_value_t = 50)]
    pub pca_dims: usize,
    /// Starting layout: pca or random (from --seed).
    #[arg(long, default_value = "pca")]
    pub init: String,
    /// heal (Barnes-Hut, parallel, all settings) or linfa (linfa-tsne; its learning rate is
    /// fixed at 200).
    #[arg(long, default_value = "heal")]
    pub engine: String,
    /// Neighbours for the k-NN accuracy printed under each panel.
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    /// Replace existing PNGs (and their .svg, .csv, .json).
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(args: TsneArgs) -> anyhow::Result<()> {
    // The library reads 0 as "no PCA"; on the command line a narrow input skips it already.
    if args.pca_dims == 0 {
        return Err(heal::error::user(
            "--pca-dims 0: give 2 or more dimensions (50 is usual; vectors already that narrow skip the PCA)",
        ));
    }
    // The parse errors already name the value and what to use.
    let params = TsneParams {
        perplexity: args.perplexity,
        iterations: args.iterations,
        learning_rate: args.learning_rate.parse()?,
        seed: args.seed,
        theta: args.theta,
        pca_dims: args.pca_dims,
        init: args.init.parse()?,
        engine: args.engine.parse()?,
        method: args.method.parse()?,
        ..TsneParams::default()
    };
    params.check()?;
    if args.columns == Some(0) {
        return Err(heal::error::user(
            "--columns 0: give 1 or more panels per row",
        ));
    }
    let request = FigureRequest {
        layer: args.layer.parse()?,
        titles: args
            .titles
            .map(|t| t.split(',').map(|s| s.trim().to_string()).collect()),
        inputs: args.inputs,
        stage: args.stage,
        panel: args.panel,
        out: args.out,
        columns: args.columns,
        params,
        k: args.k,
        overwrite: args.overwrite,
    };
    figure::draw(&request, &mut |line| println!("{line}"))?;
    Ok(())
}
