//! `heal data fetch NAME`: a dataset from the Hugging Face hub in the project's JSON-lines form.

use clap::{Args, Subcommand};
use heal::data::cache::DataCache;
use heal::data::fetch::{self, FetchOptions};
use std::path::PathBuf;

const FETCH_EXAMPLES: &str = "Examples:
  heal data fetch sst2                        # -> ~/.cache/heal/data/sst2 (or $HEAL_DATA_DIR/sst2)
  heal data fetch mrpc --out data/mrpc --force
  heal data fetch imdb --data-dir /shared/heal-data
  HF_ENDPOINT=https://hf-mirror.example heal data fetch ag_news";

#[derive(Args, Debug)]
#[command(after_help = FETCH_EXAMPLES)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Download a named dataset from the Hugging Face hub into a folder that `heal finetune
    /// --data` reads.
    #[command(
        long_about = "Download a named dataset from the Hugging Face hub into a folder that \
`heal finetune --data` reads.\n\n\
The files come from the hub's parquet conversion branch (refs/convert/parquet): every parquet \
file of the dataset's train, validation and test splits is downloaded, checked against the size \
and hash the hub lists (sha256, or the git blob id of a non-LFS file), and converted to \
<split>.jsonl.gz (one JSON object per line: text, text_pair for sentence pairs, label as an \
index into labels.json). A split without labels (GLUE \
test splits: label -1 everywhere) is left out. SOURCE.json records the hub, repository, config, \
branch, every file with its sha256 and row count, and the label counts.\n\n\
The output is NAME in heal's data folder (--data-dir, else $HEAL_DATA_DIR, else \
~/.cache/heal/data) unless --out names another; `heal finetune --data NAME` reads it there (and \
fetches it there itself when it is missing). Everything is written into a temporary folder \
beside the output and moved into place at the end: a failed fetch leaves nothing behind.\n\n\
The hub is https://huggingface.co unless HF_ENDPOINT names another (a mirror), as for \
huggingface_hub; with HF_HUB_OFFLINE=1 set nothing is fetched.",
        after_help = FETCH_EXAMPLES,
        after_long_help = format!("{FETCH_EXAMPLES}\n\n{}", fetch::help_table())
    )]
    Fetch(FetchArgs),
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    /// Which dataset: sst2, imdb, ag_news, emotion, dbpedia, twitter-financial-news-topic,
    /// mrpc or rte.
    pub name: String,
    /// Output folder. [default: DATA_DIR/NAME]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// heal's data folder, where `--data NAME` looks. [default: $HEAL_DATA_DIR, else
    /// ~/.cache/heal/data]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Replace an existing output folder (only once the new one is complete).
    #[arg(long, alias = "overwrite")]
    pub force: bool,
}

pub fn run(args: DataArgs) -> anyhow::Result<()> {
    match args.command {
        DataCommand::Fetch(args) => run_fetch(args),
    }
}

fn run_fetch(args: FetchArgs) -> anyhow::Result<()> {
    let dataset = fetch::dataset(&args.name)?;
    let out = match args.out {
        Some(out) => out,
        None => DataCache::open(args.data_dir.as_deref())?.folder(dataset.name),
    };
    let opts = FetchOptions {
        out: out.clone(),
        force: args.force,
        endpoint: fetch::endpoint_from_env(),
    };
    let summary = fetch::fetch(dataset, &opts)?;
    for s in &summary.splits {
        println!("  {:<10} {:>8} rows  {}", s.split, s.rows, s.file);
    }
    for s in &summary.skipped {
        println!("  {:<10} skipped: {}", s.split, s.reason);
    }
    println!("labels: {}", summary.label_names.join(", "));
    println!("{}", out.display());
    Ok(())
}
