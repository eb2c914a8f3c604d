//! `heal corrupt`: write a damaged copy of a checkpoint.

use clap::Args;
use heal::corrupt::method::{Kaiming, Method};
use heal::corrupt::select::{parse_modules, Include};
use heal::corrupt::spec::LayerSpec;
use heal::corrupt::CorruptionConfig;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  heal corrupt --spec bottom:50% --out minilm-bottom50           # the paper's re-initialisation
  heal corrupt --model path/to/bert-base-uncased --spec top:25% --method noise:0.5 --out bert-top25-noise
  heal corrupt --spec layers:1-3 --modules attention --method zero --seed 7 --out minilm-attn-zero")]
pub struct CorruptArgs {
    /// Checkpoint: `minilm-l6`, an HF folder, or a hub id (from the HF cache, else downloaded).
    #[arg(long, default_value = "minilm-l6")]
    pub model: String,
    /// Hub revision (branch, tag or commit) of a model given by hub id. [default: main]
    #[arg(long)]
    pub revision: Option<String>,
    /// Layers: none, all, bottom:25%, top:50%, bottom:3, layers:1-3,7 (1-based; a percentage p of
    /// L layers selects floor(L*p/100 + 0.5) layers, round half up).
    #[arg(long)]
    pub spec: String,
    /// reinit, noise:S, zero, shuffle, bitflip:P or bitflip:n=K.
    #[arg(long, default_value = "reinit")]
    pub method: String,
    /// all, attention, ffn, layernorm, or a list of q,k,v,o,ffn_in,ffn_out,ln_attn,ln_ffn.
    #[arg(long, default_value = "all")]
    pub modules: String,
    /// Also damage: embeddings, pooler.
    #[arg(long, default_value = "")]
    pub include: String,
    /// Kaiming bound for reinit: he (sqrt(6/fan_in)) or linear (1/sqrt(fan_in)).
    #[arg(long, value_enum, default_value_t = Kaiming::He)]
    pub kaiming: Kaiming,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output folder (an HF checkpoint: config.json, model.safetensors, tokenizer files,
    /// corruption_report.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing output folder.
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(args: CorruptArgs) -> anyhow::Result<()> {
    let cfg = CorruptionConfig {
        spec: LayerSpec::parse(&args.spec)?,
        modules: parse_modules(&args.modules)?,
        include: Include::parse(&args.include)?,
        method: Method::parse(&args.method)?,
        kaiming: args.kaiming,
        seed: args.seed,
    };
    // The output is checked before the model is resolved (which may download it).
    heal::fsio::Output::check("--out", &args.out, heal::fsio::Kind::Folder, args.overwrite)?;
    let model_dir = heal::hub::model::resolve(&args.model, args.revision.as_deref())?;
    let report =
        heal::corrupt::checkpoint::corrupt_checkpoint(&model_dir, &cfg, &args.out, args.overwrite)?;
    print!("{}", heal::corrupt::format_report(&report));
    println!("corrupted checkpoint: {}", args.out.display());
    Ok(())
}
