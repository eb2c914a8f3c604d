//! `heal embed (RUN_DIR | MODEL)`: per-layer pooled vectors for every example of a split.

use clap::Args;
use heal::extract::{self, ExtractRequest, Split};
use heal::model::head::Pooling;
use heal::model::precision::Precision;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  heal embed runs/sst2 --out emb/sst2                 # the run's best checkpoint, data and pooling
  heal embed minilm-l6 --data bbc-news --layers 0,6 --out emb/minilm
  heal embed path/to/checkpoint --data train.jsonl --eval-data test.jsonl --pooling mean --out emb/x")]
pub struct EmbedArgs {
    /// A run directory (its best checkpoint, data, pooling and max-len are the defaults), the
    /// name minilm-l6, or an HF checkpoint folder.
    pub source: String,
    /// Hub revision (branch, tag or commit) of a model given by hub id. [default: main]
    #[arg(long)]
    pub revision: Option<String>,
    /// Data: bbc-news, a data file or folder, or a dataset name (as for finetune). [default:
    /// the run's data]
    #[arg(long)]
    pub data: Option<String>,
    /// heal's data folder for a named --data (sst2, ...). [default: the run's, else
    /// $HEAL_DATA_DIR, else ~/.cache/heal/data]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Which split: eval (the held-out split) or train.
    #[arg(long, value_enum, default_value = "eval")]
    pub split: Split,
    /// Evaluation file, when the data has no held-out split of its own.
    #[arg(long)]
    pub eval_data: Option<PathBuf>,
    /// Or a stratified carve-out of the training data (with --seed).
    #[arg(long)]
    pub eval_split: Option<f64>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// all, or a list such as 0,3,6 (0 = the embeddings output, i = encoder layer i).
    #[arg(long, default_value = "all")]
    pub layers: String,
    /// cls (the first token) or mean (non-[CLS], non-padding tokens). [default: the run's, else cls]
    #[arg(long, value_enum)]
    pub pooling: Option<Pooling>,
    /// [default: the run's, else 128]
    #[arg(long)]
    pub max_len: Option<usize>,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Matrix-product precision: fp32, or bf16 (bfloat16 products, as torch's autocast; fast
    /// on CPUs with AMX; on x86 CPUs without AMX run by float32 kernels on bfloat16-rounded
    /// operands, HEAL_BF16_KERNELS=bf16|fp32 overriding the choice). [default: fp32]
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
    /// libtorch threads. [default: one per core]
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output folder: embeddings.safetensors, layer_<i>.npy, labels.npy, ids.txt, manifest.json,
    /// projector/ (tensors.tsv + metadata.tsv for TensorBoard's projector).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing output folder (as a whole, once the new one is complete).
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    let out = args.out.clone();
    let done = extract::extract(&ExtractRequest {
        source: args.source,
        revision: args.revision,
        data: args.data,
        data_dir: args.data_dir,
        split: args.split,
        eval_data: args.eval_data,
        eval_split: args.eval_split,
        seed: args.seed,
        layers: args.layers,
        pooling: args.pooling,
        max_len: args.max_len,
        batch_size: args.batch_size,
        device: args.device,
        precision: args.precision,
        threads: args.threads,
        out: args.out,
        overwrite: args.overwrite,
    })?;
    println!(
        "{} examples x {} layers x {} dims ({:.1} s, encoding {:.3} s) -> {}",
        done.examples,
        done.layers,
        done.hidden_size,
        done.seconds,
        done.encode_seconds,
        out.display()
    );
    Ok(())
}
