//! `heal model fetch NAME`: a model from the Hugging Face hub into the HF cache.

use clap::{Args, Subcommand};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  heal model fetch google-bert/bert-base-uncased     # prints the snapshot folder in the HF cache
  HF_HUB_OFFLINE=1 heal finetune --model google-bert/bert-base-uncased --data sst2")]
pub struct ModelArgs {
    #[command(subcommand)]
    pub command: ModelCommand,
}

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Download a model's config, weights and tokenizer files from the hub into the HF cache
    /// (shared with transformers) and print the snapshot folder.
    #[command(after_help = "Examples:
  heal model fetch google-bert/bert-base-uncased
  heal model fetch distilbert/distilbert-base-uncased --revision main
  HF_TOKEN=hf_... heal model fetch org/private-model

The cache is $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub; the hub is
$HF_ENDPOINT, else https://huggingface.co. Every file is checked against the size and hash the
hub lists before it enters the cache. On a cluster whose compute nodes have no network, fetch
on the login node and run the jobs with HF_HUB_OFFLINE=1: `--model NAME` then reads the cache.")]
    Fetch(FetchArgs),
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    /// A hub id: `name` or `org/name`.
    pub name: String,
    /// Branch, tag or commit. [default: main]
    #[arg(long)]
    pub revision: Option<String>,
}

pub fn run(args: ModelArgs) -> anyhow::Result<()> {
    match args.command {
        ModelCommand::Fetch(args) => {
            let snapshot = heal::hub::model::fetch(&args.name, args.revision.as_deref())?;
            println!("{}", snapshot.display());
            Ok(())
        }
    }
}
