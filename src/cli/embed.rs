//! `heal embed (RUN_DIR | MODEL)`: per-layer pooled vectors for every example of a split.

use crate::analysis::embed::{embed, parse_layers, Embeddings};
use crate::data::batching::Tokenized;
use crate::data::{self, EvalSource};
use crate::error::user;
use crate::model::head::Pooling;
use crate::model::tokenizer::TextEncoder;
use crate::model::SequenceClassifier;
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// A run directory (its best checkpoint, data, pooling and max-len are the defaults), the
    /// name minilm-l6, or an HF checkpoint folder.
    pub source: String,
    /// Data: bbc-news, a data file or folder (as for finetune). [default: the run's data]
    #[arg(long)]
    pub data: Option<String>,
    /// Which split: eval (the held-out split) or train.
    #[arg(long, default_value = "eval")]
    pub split: String,
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
    /// Output folder: embeddings.safetensors, layer_<i>.npy, labels.npy, ids.txt, manifest.json,
    /// projector/ (tensors.tsv + metadata.tsv for TensorBoard's projector).
    #[arg(long)]
    pub out: PathBuf,
}

/// What a run directory says about how it was made.
struct RunDefaults {
    checkpoint: PathBuf,
    config: serde_json::Value,
}

fn run_defaults(path: &Path) -> anyhow::Result<Option<RunDefaults>> {
    let Some(config) = crate::run_dir::read_run_config(path)? else {
        return Ok(None);
    };
    let checkpoint = path.join(crate::run_dir::CHECKPOINT_DIR);
    if !checkpoint.is_dir() {
        return Err(user(format!(
            "{}: the run has no checkpoint/ (it was trained without --save-checkpoint); give a model folder instead",
            path.display()
        )));
    }
    Ok(Some(RunDefaults { checkpoint, config }))
}

pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    let device = crate::device::parse_device(&args.device)?;
    let run = run_defaults(Path::new(&args.source))?;
    let model_dir = match &run {
        Some(r) => r.checkpoint.clone(),
        None => crate::defaults::resolve_model(&args.source)?,
    };
    let cfg = run.as_ref().map(|r| &r.config);
    let from_run = |key: &str| {
        cfg.and_then(|c| c.get(key))
            .filter(|v| !v.is_null())
            .cloned()
    };
    let data_name = args
        .data
        .clone()
        .or_else(|| from_run("data").and_then(|v| v.as_str().map(String::from)))
        .ok_or_else(|| {
            user("--data is needed when the source is not a run directory".to_string())
        })?;
    let eval = match (&args.eval_data, args.eval_split) {
        (Some(p), _) => EvalSource::File(p.clone()),
        (None, Some(f)) => EvalSource::Carve(f),
        (None, None) => match (from_run("eval-data"), from_run("eval-split")) {
            (Some(p), _) if args.data.is_none() => {
                EvalSource::File(PathBuf::from(p.as_str().unwrap_or_default()))
            }
            (_, Some(f)) if args.data.is_none() => EvalSource::Carve(f.as_f64().unwrap_or(0.1)),
            _ => EvalSource::Builtin,
        },
    };
    let seed = if args.data.is_none() {
        from_run("seed")
            .and_then(|v| v.as_u64())
            .unwrap_or(args.seed)
    } else {
        args.seed
    };
    let pooling = args
        .pooling
        .or_else(|| from_run("pooling").and_then(|v| serde_json::from_value(v).ok()))
        .unwrap_or_default();
    let max_len = args
        .max_len
        .or_else(|| {
            from_run("max-len")
                .and_then(|v| v.as_u64())
                .map(|v| v as usize)
        })
        .unwrap_or(128);
    if max_len == 0 || args.batch_size == 0 {
        return Err(user(
            "--max-len and --batch-size must be positive".to_string(),
        ));
    }
    let task = data::load_task(&data_name, &eval, seed)?;
    let examples = match args.split.as_str() {
        "eval" | "test" | "validation" => &task.eval,
        "train" => &task.train,
        other => return Err(user(format!("--split {other:?}: use eval or train"))),
    };
    let files = crate::model::checkpoint::CheckpointFiles::locate(&model_dir)?;
    let model_cfg = crate::model::config::EncoderConfig::from_file(&files.config)?;
    let encoder = TextEncoder::from_dir(&model_dir, max_len.min(model_cfg.max_tokens()))?;
    let tokenized = Tokenized::new(&encoder, examples, model_cfg.uses_token_types())?;
    let layers = parse_layers(&args.layers, model_cfg.num_layers as usize)?;
    let (model, _) = SequenceClassifier::from_checkpoint(
        &files,
        model_cfg.clone(),
        task.labels.len() as i64,
        pooling,
        device,
    )?;
    let started = std::time::Instant::now();
    let vectors = embed(&model, &tokenized, &layers, pooling, args.batch_size);
    let embeddings = Embeddings {
        layers: vectors,
        labels: tokenized.labels.clone(),
        ids: examples.iter().map(|e| e.id.clone()).collect(),
        label_names: task.labels.names.clone(),
        pooling,
    };
    embeddings.write(&args.out)?;
    println!(
        "{} examples x {} layers x {} dims ({:.1} s) -> {}",
        tokenized.len(),
        layers.len(),
        model_cfg.hidden_size,
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}
