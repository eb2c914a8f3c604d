//! `heal embed`'s work: a checkpoint (or a run directory's best one) run over a dataset split,
//! every chosen layer pooled, written in the embeddings format of [`crate::run_dir::embeddings`].

use crate::data::batching::Tokenized;
use crate::data::{self, EvalSource, Example, TaskData};
use crate::error::user;
use crate::fsio::{Kind, Output};
use crate::model::checkpoint::CheckpointFiles;
use crate::model::config::EncoderConfig;
use crate::model::head::Pooling;
use crate::model::precision::{self, Precision};
use crate::model::tokenizer::TextEncoder;
use crate::model::SequenceClassifier;
use crate::run_dir::embeddings::Embeddings;
use crate::run_dir::{self, RunDir};
use crate::train::config::CheckpointStage;
use crate::train::options::defaults;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Which split of the data to embed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Split {
    /// The held-out (evaluation) split.
    #[value(alias = "test", alias = "validation")]
    Eval,
    Train,
}

/// What to embed and where to write it. Options left `None` come from the run directory when
/// `source` is one, else from the finetune defaults.
#[derive(Debug, Clone)]
pub struct ExtractRequest {
    /// A run directory, `minilm-l6`, an HF checkpoint folder, or a hub id.
    pub source: String,
    /// The hub revision when `source` is a hub id.
    pub revision: Option<String>,
    pub data: Option<String>,
    /// heal's data folder for a named `data` (see [`crate::data::cache::DataCache::open`]);
    /// None: the run's, else the default.
    pub data_dir: Option<PathBuf>,
    pub split: Split,
    pub eval_data: Option<PathBuf>,
    pub eval_split: Option<f64>,
    pub seed: u64,
    /// `all` or a list such as `0,6,12`.
    pub layers: String,
    pub pooling: Option<Pooling>,
    pub max_len: Option<usize>,
    pub batch_size: usize,
    pub device: String,
    /// The products' precision; None: fp32 (whatever a run directory trained with).
    pub precision: Option<Precision>,
    /// libtorch threads; None: libtorch's default (one per core).
    pub threads: Option<usize>,
    pub out: PathBuf,
    /// Replace an existing (non-run) folder at `out`.
    pub overwrite: bool,
}

/// What [`extract`] wrote.
#[derive(Debug, Clone)]
pub struct Extracted {
    pub examples: usize,
    pub layers: usize,
    pub hidden_size: i64,
    /// From the start of the encoding to the folder written.
    pub seconds: f64,
    /// The encoding alone: batches collated and run through the model, vectors pooled (no
    /// model load, tokenisation or writing).
    pub encode_seconds: f64,
}

/// `all` or a list such as `0,6,12`, checked against the model's depth.
pub fn parse_layers(text: &str, depth: usize) -> anyhow::Result<Vec<usize>> {
    if text.trim() == "all" {
        return Ok((0..=depth).collect());
    }
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let l: usize = part.parse().map_err(|_| {
            user(format!(
                "--layers {text:?}: {part:?} is not a layer number; use all or e.g. 0,6,12"
            ))
        })?;
        if l > depth {
            return Err(user(format!("--layers {text:?}: layer {l} is beyond the model's {depth} layers (0 = embeddings)")));
        }
        out.push(l);
    }
    if out.is_empty() {
        return Err(user(format!("--layers {text:?}: names no layer")));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The model folder and run facts a source names.
fn open_source(
    source: &str,
    revision: Option<&str>,
) -> anyhow::Result<(PathBuf, Option<run_dir::RunJson>)> {
    let path = Path::new(source);
    let Some(run) = run_dir::read_run_json(path)? else {
        return Ok((crate::hub::model::resolve(source, revision)?, None));
    };
    let checkpoint = RunDir::at(path).checkpoint(CheckpointStage::Best);
    if !checkpoint.is_dir() {
        return Err(user(format!(
            "{}: the run has no checkpoint/ (it was trained without --save-checkpoint); give a model folder instead",
            path.display()
        )));
    }
    Ok((checkpoint, Some(run)))
}

/// A source opened for encoding: the model, the split's examples tokenised and the layers to
/// pool. [`extract`] encodes it once and writes the result; a benchmark can encode it again.
pub struct Prepared {
    task: TaskData,
    split: Split,
    tokenized: Tokenized,
    model: SequenceClassifier,
    layers: Vec<usize>,
    pooling: Pooling,
    batch_size: usize,
}

impl Prepared {
    /// Every chosen layer with its pooled vectors (batches collated, run through the model,
    /// pooled).
    pub fn encode(&self) -> Vec<(usize, Tensor)> {
        self.model
            .layer_vectors(&self.tokenized, self.batch_size, &self.layers, self.pooling)
    }

    fn examples(&self) -> &[Example] {
        self.split.of(&self.task)
    }
}

impl Split {
    fn of(self, task: &TaskData) -> &[Example] {
        match self {
            Split::Eval => &task.eval,
            Split::Train => &task.train,
        }
    }
}

/// Opens `req`'s source and data as `heal embed` does, short of encoding: sets the threads
/// and the precision, loads the model and tokenises the split. `req.out` is not looked at.
pub fn prepare(req: &ExtractRequest) -> anyhow::Result<Prepared> {
    let device = crate::device::parse_device(&req.device)?;
    if let Some(n) = req.threads {
        crate::threads::set("--threads", n)?;
    }
    let (model_dir, run) = open_source(&req.source, req.revision.as_deref())?;
    let cfg = run.as_ref().map(|r| &r.config);
    let data_name = req
        .data
        .clone()
        .or_else(|| cfg.map(|c| c.data.clone()))
        .ok_or_else(|| {
            user("--data is needed when the source is not a run directory".to_string())
        })?;
    // The run's evaluation split and seed apply only when the run's own data is embedded.
    let run_cfg = cfg.filter(|_| req.data.is_none());
    let eval = match (&req.eval_data, req.eval_split, run_cfg) {
        (None, None, Some(c)) => EvalSource::from_options(c.eval_data.as_deref(), c.eval_split),
        _ => EvalSource::from_options(req.eval_data.as_deref(), req.eval_split),
    };
    let seed = run_cfg.map_or(req.seed, |c| c.seed);
    precision::set(req.precision.unwrap_or_default());
    precision::bf16_kernels_override()?;
    let pooling = req
        .pooling
        .or_else(|| cfg.map(|c| c.pooling))
        .unwrap_or_default();
    let max_len = req
        .max_len
        .or_else(|| cfg.map(|c| c.max_len))
        .unwrap_or(defaults::MAX_LEN);
    if max_len == 0 || req.batch_size == 0 {
        return Err(user(
            "--max-len and --batch-size must be positive".to_string(),
        ));
    }
    let data_dir = req
        .data_dir
        .clone()
        .or_else(|| cfg.and_then(|c| c.data_dir.clone()));
    let task = data::load_task(&data_name, data_dir.as_deref(), &eval, seed)?;
    let examples = req.split.of(&task);
    let files = CheckpointFiles::locate(&model_dir)?;
    let model_cfg = EncoderConfig::from_file(&files.config)?;
    let encoder = TextEncoder::from_dir(&model_dir, max_len.min(model_cfg.max_tokens()))?;
    let tokenized = Tokenized::new(&encoder, examples, model_cfg.uses_token_types())?;
    let layers = parse_layers(&req.layers, model_cfg.num_layers as usize)?;
    let (model, _) = SequenceClassifier::from_checkpoint(
        &files,
        model_cfg,
        task.labels.len() as i64,
        pooling,
        device,
    )?;
    Ok(Prepared {
        split: req.split,
        tokenized,
        model,
        layers,
        pooling,
        batch_size: req.batch_size,
        task,
    })
}

pub fn extract(req: &ExtractRequest) -> anyhow::Result<Extracted> {
    Output::check("--out", &req.out, Kind::Folder, req.overwrite)?;
    let prepared = prepare(req)?;
    let started = std::time::Instant::now();
    let vectors = prepared.encode();
    let encode_seconds = started.elapsed().as_secs_f64();
    let embeddings = Embeddings::of_examples(
        vectors,
        prepared.examples(),
        prepared.tokenized.labels.clone(),
        prepared.task.labels.names.clone(),
        prepared.pooling,
    );
    embeddings.write(&req.out)?;
    Ok(Extracted {
        examples: prepared.tokenized.len(),
        layers: prepared.layers.len(),
        hidden_size: prepared.model.config.hidden_size,
        seconds: started.elapsed().as_secs_f64(),
        encode_seconds,
    })
}
