//! The process-wide cache of tokenised tasks: cells of a sweep that share model, data and
//! split settings tokenise once per process.

use super::config::FinetuneConfig;
use crate::data::batching::Tokenized;
use crate::data::{self, EvalSource, TaskData};
use crate::model::tokenizer::TextEncoder;
use std::path::PathBuf;

/// What decides a tokenised task: runs that agree on all of it (cells of a sweep that differ
/// only in corruption, learning rate, ...) share one tokenisation within a process.
#[derive(Clone, PartialEq, Eq, Hash)]
struct TaskKey {
    model_dir: PathBuf,
    data: String,
    data_dir: Option<PathBuf>,
    eval: String,
    seed: u64,
    max_train_examples: Option<usize>,
    validation: Option<u64>,
    max_len: usize,
    types: bool,
}

pub(super) type CachedTask = (TaskData, Tokenized, Tokenized, Option<Tokenized>);

static TASK_CACHE: std::sync::Mutex<Vec<(TaskKey, CachedTask)>> = std::sync::Mutex::new(Vec::new());

/// Loads and tokenises the task, or takes it from the process-wide cache. The cache keeps the
/// last few tasks (a sweep's datasets), not every one ever seen.
pub(super) fn tokenized_task(
    cfg: &FinetuneConfig,
    model_dir: &std::path::Path,
    encoder: &TextEncoder,
    eval_source: &EvalSource,
    types: bool,
    max_len: usize,
) -> anyhow::Result<CachedTask> {
    let key = TaskKey {
        model_dir: model_dir.to_path_buf(),
        data: cfg.data.clone(),
        data_dir: cfg.data_dir.clone(),
        eval: format!("{eval_source:?}"),
        seed: cfg.seed,
        max_train_examples: cfg.max_train_examples,
        validation: cfg.validation_split.map(f64::to_bits),
        max_len,
        types,
    };
    let mut cache = TASK_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, hit)) = cache.iter().find(|(k, _)| *k == key) {
        log::debug!("tokenised {} taken from this process's cache", cfg.data);
        return Ok(hit.clone());
    }
    let mut task = data::load_task(&cfg.data, cfg.data_dir.as_deref(), eval_source, cfg.seed)?;
    if let Some(n) = cfg.max_train_examples {
        task.train = data::subsample(std::mem::take(&mut task.train), n, cfg.seed);
    }
    let validation = match cfg.validation_split {
        Some(f) => {
            let (rest, held) = data::carve(std::mem::take(&mut task.train), f, cfg.seed)
                .map_err(|e| crate::error::user(format!("--validation-split: {e:#}")))?;
            task.train = rest;
            task.train_source.push_str(&format!(
                ", less a {f} validation carve-out ({} examples)",
                held.len()
            ));
            Some(Tokenized::new(encoder, &held, types)?)
        }
        None => None,
    };
    data::check_training_set(&task.train, &task.labels, &cfg.data, &carve_outs(cfg))?;
    let train = Tokenized::new(encoder, &task.train, types)?;
    let eval = Tokenized::new(encoder, &task.eval, types)?;
    if cache.len() >= 4 {
        cache.remove(0);
    }
    cache.push((
        key,
        (
            task.clone(),
            train.clone(),
            eval.clone(),
            validation.clone(),
        ),
    ));
    Ok((task, train, eval, validation))
}

/// " after --eval-split 0.5, --max-train-examples 4" (what was taken from the training data),
/// or "" when nothing was.
fn carve_outs(cfg: &FinetuneConfig) -> String {
    let mut taken = Vec::new();
    if cfg.eval_data.is_none() {
        if let Some(f) = cfg.eval_split {
            taken.push(format!("--eval-split {f}"));
        }
    }
    if let Some(n) = cfg.max_train_examples {
        taken.push(format!("--max-train-examples {n}"));
    }
    if let Some(f) = cfg.validation_split {
        taken.push(format!("--validation-split {f}"));
    }
    if taken.is_empty() {
        String::new()
    } else {
        format!(" after {}", taken.join(", "))
    }
}
