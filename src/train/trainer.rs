//! The fine-tuning loop and the run directory it writes.

use super::config::FinetuneConfig;
use super::config::{CheckpointStage, EmbeddingStage};
use super::eval::{evaluate, evaluate_features};
use super::optim::{self, LinearSchedule};
use super::trainable::{self, TrainMode, Trainable, TrainableFacts};
use crate::corrupt::{self, CorruptionReport};
use crate::data::batching::Tokenized;
use crate::data::{self, EvalSource, TaskData};
use crate::device::{device_name, parse_device};
use crate::metrics::{self, Scores};
use crate::model::checkpoint::LoadReport;
use crate::model::tokenizer::TextEncoder;
use crate::model::SequenceClassifier;
use crate::run_dir::{EpochRecord, RunDir, RunResult, Status};
use crate::{defaults, versions};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;
use tch::{Device, Kind, Reduction, Tensor};

/// What a finished run returns to its caller (the same facts as result.json).
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_dir: PathBuf,
    pub result: RunResult,
    pub epochs: Vec<EpochRecord>,
}

/// Everything prepared before the run directory is created: bad input fails here, leaving
/// nothing on disk.
struct Prepared {
    device: Device,
    model_dir: PathBuf,
    task: TaskData,
    train: Tokenized,
    eval: Tokenized,
    /// The --validation-split carve-out, scored every epoch.
    validation: Option<Tokenized>,
    tokenizer_source: &'static str,
    max_len: usize,
    model: SequenceClassifier,
    load_report: LoadReport,
    corruption: Option<CorruptionReport>,
    trainable: Trainable,
    /// Pooled vectors of the evaluation split taken before training (pretrained, corrupted).
    early_embeddings: Vec<(EmbeddingStage, Vec<(usize, Tensor)>)>,
    prepare_seconds: f64,
}

fn prepare(cfg: &FinetuneConfig) -> anyhow::Result<Prepared> {
    let start = Instant::now();
    let device = parse_device(&cfg.device)?;
    if let Some(n) = cfg.threads {
        tch::set_num_threads(n as i32);
    }
    crate::model::precision::set(cfg.precision);
    let model_dir = defaults::resolve_model(&cfg.model)?;
    let files = crate::model::checkpoint::CheckpointFiles::locate(&model_dir)?;
    let model_config = crate::model::config::EncoderConfig::from_file(&files.config)?;
    let max_len = cfg.max_len.min(model_config.max_tokens());
    let encoder = TextEncoder::from_dir(&model_dir, max_len)?;
    let eval_source = match (&cfg.eval_data, cfg.eval_split) {
        (Some(path), _) => EvalSource::File(path.clone()),
        (None, Some(f)) => EvalSource::Carve(f),
        (None, None) => EvalSource::Builtin,
    };
    let types = model_config.uses_token_types();
    let (task, train, eval, validation) =
        tokenized_task(cfg, &model_dir, &encoder, &eval_source, types, max_len)?;
    for (split, t) in [("training", &train), ("evaluation", &eval)] {
        if let Some(id) = t.encoded.iter().flat_map(|e| e.ids.iter()).copied().max() {
            if id >= model_config.vocab_size {
                return Err(crate::error::user(format!(
                    "{}: the tokenizer gives token id {id} on the {split} data, but config.json has vocab_size {}: the tokenizer files do not belong to this model",
                    model_dir.display(),
                    model_config.vocab_size
                )));
            }
        }
    }
    tch::manual_seed(cfg.seed as i64);
    crate::model::dropout::seed(cfg.seed);
    let (model, load_report) = SequenceClassifier::from_checkpoint(
        &files,
        model_config,
        task.labels.len() as i64,
        cfg.pooling,
        device,
    )?;
    let stage_embeddings =
        |stage: EmbeddingStage| cfg.dumps(stage).then(|| stage_vectors(cfg, &model, &eval));
    let pretrained_embeddings = stage_embeddings(EmbeddingStage::Pretrained);
    let corruption_cfg = cfg.corruption();
    let corruption = if corruption_cfg.is_none() {
        None
    } else {
        let report = corrupt::corrupt(&corruption_cfg, &model.config, &model.vs.variables())?;
        for line in corrupt::format_report(&report).lines() {
            log::info!("{line}");
        }
        Some(report)
    };
    let corrupted_embeddings = if corruption.is_some() {
        stage_embeddings(EmbeddingStage::Corrupted)
    } else {
        None
    };
    let trainable = trainable::apply(&cfg.train, &model)?;
    Ok(Prepared {
        device,
        model_dir,
        task,
        train,
        eval,
        validation,
        tokenizer_source: encoder.source,
        max_len,
        model,
        load_report,
        corruption,
        trainable,
        early_embeddings: [
            pretrained_embeddings.map(|v| (EmbeddingStage::Pretrained, v)),
            corrupted_embeddings.map(|v| (EmbeddingStage::Corrupted, v)),
        ]
        .into_iter()
        .flatten()
        .collect(),
        prepare_seconds: start.elapsed().as_secs_f64(),
    })
}

/// What decides a tokenised task: runs that agree on all of it (cells of a sweep that differ
/// only in corruption, learning rate, ...) share one tokenisation within a process.
#[derive(Clone, PartialEq, Eq, Hash)]
struct TaskKey {
    model_dir: PathBuf,
    data: String,
    eval: String,
    seed: u64,
    max_train_examples: Option<usize>,
    validation: Option<u64>,
    max_len: usize,
    types: bool,
}

type CachedTask = (TaskData, Tokenized, Tokenized, Option<Tokenized>);

static TASK_CACHE: std::sync::Mutex<Vec<(TaskKey, CachedTask)>> = std::sync::Mutex::new(Vec::new());

/// Loads and tokenises the task, or takes it from the process-wide cache. The cache keeps the
/// last few tasks (a sweep's datasets), not every one ever seen.
fn tokenized_task(
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
    let mut task = data::load_task(&cfg.data, eval_source, cfg.seed)?;
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

#[derive(Serialize)]
struct RunJson<'a> {
    config: &'a FinetuneConfig,
    model_dir: PathBuf,
    family: crate::model::config::Family,
    layers: i64,
    hidden_size: i64,
    tokenizer: &'static str,
    /// --max-len, capped by the model's position embeddings.
    effective_max_len: usize,
    labels: &'a crate::data::labels::LabelMap,
    data: DataFacts<'a>,
    parameters: TrainableFacts,
    load_report: &'a LoadReport,
    corruption: Option<&'a CorruptionReport>,
    schedule: LinearSchedule,
    device: String,
    threads: i32,
    versions: versions::Versions,
    started_at: String,
    timings: Timings,
}

#[derive(Serialize)]
struct DataFacts<'a> {
    train_source: &'a str,
    eval_source: &'a str,
    train_examples: usize,
    eval_examples: usize,
    /// Examples cut at max-len.
    train_truncated: usize,
    eval_truncated: usize,
}

#[derive(Serialize, Default, Clone, Copy)]
struct Timings {
    prepare_seconds: f64,
    train_seconds: f64,
    eval_seconds: f64,
    total_seconds: f64,
}

/// Fine-tunes as `cfg` says and writes the run directory. Returns the outcome; a run that
/// diverged or collapsed is an outcome, not an error.
pub fn finetune(cfg: &FinetuneConfig) -> anyhow::Result<RunOutcome> {
    let wall = Instant::now();
    let p = prepare(cfg)?;
    let run = RunDir::create(&cfg.out, cfg.overwrite)?;
    let steps_per_epoch = p.train.len().div_ceil(cfg.batch_size);
    let schedule = LinearSchedule::new(cfg.lr, cfg.warmup, steps_per_epoch * cfg.epochs);
    let truncated = |t: &Tokenized| {
        t.encoded
            .iter()
            .filter(|e| e.ids.len() >= p.max_len)
            .count()
    };
    let head_only = cfg.train == TrainMode::Head;
    let mut run_json = RunJson {
        config: cfg,
        model_dir: p.model_dir.canonicalize().unwrap_or(p.model_dir.clone()),
        family: p.model.config.family,
        layers: p.model.config.num_layers,
        hidden_size: p.model.config.hidden_size,
        tokenizer: p.tokenizer_source,
        effective_max_len: p.max_len,
        labels: &p.task.labels,
        data: DataFacts {
            train_source: &p.task.train_source,
            eval_source: &p.task.eval_source,
            train_examples: p.train.len(),
            eval_examples: p.eval.len(),
            train_truncated: truncated(&p.train),
            eval_truncated: truncated(&p.eval),
        },
        parameters: p.trainable.facts(&cfg.train),
        load_report: &p.load_report,
        corruption: p.corruption.as_ref(),
        schedule,
        device: device_name(p.device),
        threads: tch::get_num_threads(),
        versions: versions::Versions::current(),
        started_at: chrono::Local::now().to_rfc3339(),
        timings: Timings {
            prepare_seconds: p.prepare_seconds,
            ..Default::default()
        },
    };
    run.write_run_json(&run_json)?;
    if p.max_len < cfg.max_len {
        log::warn!(
            "--max-len {} is beyond the model's {} positions; using {}",
            cfg.max_len,
            p.max_len,
            p.max_len
        );
    }
    for (stage, vectors) in &p.early_embeddings {
        write_embeddings(
            cfg,
            &p,
            &run,
            *stage,
            vectors
                .iter()
                .map(|(l, t)| (*l, t.shallow_clone()))
                .collect(),
        )?;
    }
    if cfg.saves(CheckpointStage::Corrupted) {
        p.model.save_hf(
            &run.path.join("checkpoint-corrupted"),
            &p.task.labels.names,
            &p.model_dir,
        )?;
    }
    log::info!(
        "training {} of {} parameters ({:.2}%, --train {})",
        run_json.parameters.trainable,
        run_json.parameters.total,
        run_json.parameters.fraction * 100.0,
        cfg.train
    );
    log::info!(
        "{} ({} layers) on {}: {} train / {} eval examples, {} labels, device {}, run dir {}",
        cfg.model,
        p.model.config.num_layers,
        cfg.data,
        p.train.len(),
        p.eval.len(),
        p.task.labels.len(),
        run_json.device,
        run.path.display()
    );
    if !p.load_report.initialised.is_empty() {
        log::info!(
            "initialised head tensors: {}",
            p.load_report.initialised.join(", ")
        );
    }

    // libtorch reports some failures (an overflowing optimiser state, say) by panicking inside
    // tch: record them as a failed run instead of leaving a directory without result.json.
    let loop_result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train_loop(cfg, &p, &run, schedule, head_only)
    }))
    .unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(anyhow::anyhow!(
            "training stopped by a libtorch error: {message}"
        ))
    });
    let (epochs, best_snapshot, status, reason, timings) = match loop_result {
        Ok(v) => v,
        Err(e) => {
            let failed = RunResult {
                status: Status::Failed,
                reason: format!("{e:#}"),
                best_epoch: 0,
                best: None,
                last: None,
                epochs_run: 0,
                label_names: p.task.labels.names.clone(),
                confusion_matrix: vec![],
                eval_examples: p.eval.len(),
                wall_seconds: wall.elapsed().as_secs_f64(),
            };
            run.write_result(&failed)?;
            return Err(e);
        }
    };

    let best = epochs.iter().max_by(|a, b| {
        a.f1_weighted
            .total_cmp(&b.f1_weighted)
            .then(b.epoch.cmp(&a.epoch))
    });
    let mut confusion = vec![];
    if let Some((_, predicted)) = &best_snapshot.predictions {
        confusion = metrics::confusion_matrix(&p.eval.labels, predicted, p.task.labels.len());
    }
    if let Some(weights) = &best_snapshot.weights {
        p.model.restore(weights);
    }
    if cfg.saves(CheckpointStage::Best) {
        p.model
            .save_hf(&run.checkpoint_dir(), &p.task.labels.names, &p.model_dir)?;
    }
    if cfg.dumps(EmbeddingStage::Best) && !epochs.is_empty() {
        dump_embeddings(cfg, &p, &run, EmbeddingStage::Best)?;
    }
    let scores = |e: &EpochRecord| Scores {
        accuracy: e.accuracy,
        f1_weighted: e.f1_weighted,
        f1_macro: e.f1_macro,
    };
    let (status, reason) = match (status, best) {
        (Status::Ok, Some(b)) if b.collapsed => (
            Status::Collapsed,
            format!(
                "at the best epoch one class got {:.1}% of the predictions (threshold {:.0}%)",
                b.predicted_majority_share * 100.0,
                cfg.collapse_threshold * 100.0
            ),
        ),
        other => (other.0, reason),
    };
    let result = RunResult {
        status,
        reason,
        best_epoch: best.map_or(0, |b| b.epoch),
        best: best.map(scores),
        last: epochs.last().map(scores),
        epochs_run: epochs.len(),
        label_names: p.task.labels.names.clone(),
        confusion_matrix: confusion,
        eval_examples: p.eval.len(),
        wall_seconds: wall.elapsed().as_secs_f64(),
    };
    run_json.timings = Timings {
        total_seconds: wall.elapsed().as_secs_f64(),
        ..timings
    };
    run_json.timings.prepare_seconds = p.prepare_seconds;
    run.write_run_json(&run_json)?;
    run.write_result(&result)?;
    Ok(RunOutcome {
        run_dir: run.path.clone(),
        result,
        epochs,
    })
}

/// The best epoch's predictions (and weights, when a checkpoint is to be saved).
#[derive(Default)]
struct BestSnapshot {
    predictions: Option<(usize, Vec<i64>)>,
    weights: Option<Vec<(String, Tensor)>>,
}

type LoopOutput = (Vec<EpochRecord>, BestSnapshot, Status, String, Timings);

fn train_loop(
    cfg: &FinetuneConfig,
    p: &Prepared,
    run: &RunDir,
    schedule: LinearSchedule,
    head_only: bool,
) -> anyhow::Result<LoopOutput> {
    // A frozen encoder without dropout gives the same features every epoch: compute them once,
    // inside the first epoch's timings.
    let cache = head_only && cfg.feature_cache;
    let mut features: Option<Tensor> = None;
    let mut eval_features: Option<Tensor> = None;
    let mut opt = optim::Stepper::new(
        &p.model.vs,
        cfg.optimizer,
        cfg.lr,
        cfg.weight_decay,
        cfg.fused_optimizer,
    )?;
    p.model
        .set_sparse_embedding_grads(opt.is_fused() && !head_only);
    log::debug!(
        "optimiser step: {}",
        if opt.is_fused() { "fused" } else { "libtorch" }
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut epochs: Vec<EpochRecord> = Vec::new();
    let mut best = BestSnapshot::default();
    let mut best_f1 = f64::NEG_INFINITY;
    let mut timings = Timings::default();
    let mut step = 0usize;
    let num_labels = p.task.labels.len();
    for epoch in 1..=cfg.epochs {
        let started = Instant::now();
        if cache && features.is_none() {
            features = Some(pooled_features(&p.model, &p.train, cfg.eval_batch_size));
        }
        let bar = progress_bar(p.train.len(), epoch, cfg.epochs);
        let mut loss_sum = Tensor::zeros([], (Kind::Float, p.device));
        let mut seen = 0usize;
        let mut lr = cfg.lr;
        let mut diverged_at = None;
        for (i, indices) in p
            .train
            .train_batches(cfg.batch_size, &mut rng)
            .iter()
            .enumerate()
        {
            lr = schedule.lr(step);
            opt.set_lr(lr);
            let batch = p.train.collate(indices, p.device);
            let logits = match (&features, head_only) {
                (Some(f), _) => {
                    let idx =
                        Tensor::from_slice(&indices.iter().map(|&i| i as i64).collect::<Vec<_>>())
                            .to_device(p.device);
                    p.model.head.forward_t(&f.index_select(0, &idx), true)
                }
                (None, true) => {
                    let pooled = tch::no_grad(|| p.model.pooled(&batch, false));
                    p.model.head.forward_t(&pooled, true)
                }
                (None, false) => p.model.forward_t(&batch, true),
            };
            let loss = logits.cross_entropy_loss::<Tensor>(
                &batch.labels,
                None,
                Reduction::Mean,
                -100,
                0.0,
            );
            opt.backward_step(
                &loss,
                |var, grad| p.trainable.masked_gradient(var, grad),
                cfg.grad_clip,
            );
            p.trainable.restore_frozen_entries();
            step += 1;
            seen += indices.len();
            loss_sum += loss.detach() * indices.len() as f64;
            // Read the loss back only now and then: on a GPU every read is a synchronisation.
            if i % 10 == 9 || seen == p.train.len() {
                let mean = loss_sum.double_value(&[]) / seen as f64;
                if !mean.is_finite() {
                    diverged_at = Some(step);
                    break;
                }
                let rate = seen as f64 / started.elapsed().as_secs_f64();
                bar.set_message(format!("loss {mean:.4}  {rate:.1} ex/s  lr {lr:.2e}"));
            }
            bar.set_position(seen as u64);
        }
        bar.finish_and_clear();
        let train_seconds = started.elapsed().as_secs_f64();
        timings.train_seconds += train_seconds;
        if let Some(at) = diverged_at {
            let reason =
                format!("non-finite training loss in epoch {epoch} (step {at}); training stopped");
            log::warn!("{reason}");
            return Ok((epochs, best, Status::Diverged, reason, timings));
        }
        let eval_started = Instant::now();
        if cache && eval_features.is_none() {
            eval_features = Some(pooled_features(&p.model, &p.eval, cfg.eval_batch_size));
        }
        let ev = match &eval_features {
            Some(f) => evaluate_features(&p.model.head, f, &p.eval.labels, cfg.eval_batch_size),
            None => evaluate(&p.model, &p.eval, cfg.eval_batch_size),
        };
        let validation = p.validation.as_ref().map(|v| {
            let ev = evaluate(&p.model, v, cfg.eval_batch_size);
            metrics::scores(&v.labels, &ev.predicted, num_labels)
        });
        let eval_seconds = eval_started.elapsed().as_secs_f64();
        timings.eval_seconds += eval_seconds;
        let s = metrics::scores(&p.eval.labels, &ev.predicted, num_labels);
        let (_, share) = metrics::majority_share(&ev.predicted, num_labels);
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum.double_value(&[]) / seen.max(1) as f64,
            eval_loss: ev.loss,
            accuracy: s.accuracy,
            f1_weighted: s.f1_weighted,
            f1_macro: s.f1_macro,
            lr,
            train_seconds,
            eval_seconds,
            train_examples_per_second: seen as f64 / train_seconds,
            predicted_majority_share: share,
            collapsed: metrics::is_collapsed(
                &p.eval.labels,
                &ev.predicted,
                num_labels,
                cfg.collapse_threshold,
            ),
            validation_f1_weighted: validation.as_ref().map(|s| s.f1_weighted),
            validation_accuracy: validation.as_ref().map(|s| s.accuracy),
        };
        log::info!(
            "epoch {epoch}/{}: train loss {:.4}, eval loss {:.4}, accuracy {:.4}, weighted F1 {:.4}, macro F1 {:.4} ({:.0} s, {:.1} ex/s)",
            cfg.epochs,
            record.train_loss,
            record.eval_loss,
            record.accuracy,
            record.f1_weighted,
            record.f1_macro,
            train_seconds + eval_seconds,
            record.train_examples_per_second
        );
        if record.f1_weighted > best_f1 {
            best_f1 = record.f1_weighted;
            best.predictions = Some((epoch, ev.predicted));
            if cfg.saves(CheckpointStage::Best) || cfg.dumps(EmbeddingStage::Best) {
                best.weights = Some(p.model.snapshot());
            }
        }
        epochs.push(record);
        run.write_metrics(&epochs)?;
    }
    Ok((epochs, best, Status::Ok, String::new(), timings))
}

fn progress_bar(len: usize, epoch: usize, epochs: usize) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    let style =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} ex  {elapsed}<{eta}  {msg}")
            .expect("valid progress template")
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    bar
}

/// The head's input for every training example, computed once with the encoder in eval mode.
fn pooled_features(model: &SequenceClassifier, data: &Tokenized, batch_size: usize) -> Tensor {
    let device = model.device();
    let mut features = Tensor::zeros(
        [data.len() as i64, model.config.hidden_size],
        (Kind::Float, device),
    );
    tch::no_grad(|| {
        for indices in data.eval_batches(batch_size) {
            let batch = data.collate(&indices, device);
            let pooled = model.pooled(&batch, false);
            let idx = Tensor::from_slice(&indices.iter().map(|&i| i as i64).collect::<Vec<_>>())
                .to_device(device);
            let _ = features.index_copy_(0, &idx, &pooled);
        }
    });
    features
}

/// Every layer's pooled vectors of the evaluation split, with the run's pooling.
fn stage_vectors(
    cfg: &FinetuneConfig,
    model: &SequenceClassifier,
    eval: &Tokenized,
) -> Vec<(usize, Tensor)> {
    let layers: Vec<usize> = (0..=model.config.num_layers as usize).collect();
    crate::analysis::embed::embed(model, eval, &layers, cfg.pooling, cfg.eval_batch_size)
}

fn write_embeddings(
    cfg: &FinetuneConfig,
    p: &Prepared,
    run: &RunDir,
    stage: EmbeddingStage,
    layers: Vec<(usize, Tensor)>,
) -> anyhow::Result<()> {
    let embeddings = crate::analysis::embed::Embeddings {
        layers,
        labels: p.eval.labels.clone(),
        ids: p.task.eval.iter().map(|e| e.id.clone()).collect(),
        label_names: p.task.labels.names.clone(),
        pooling: cfg.pooling,
    };
    embeddings.write(&run.path.join("embeddings").join(stage.name()))
}

/// Embeds the evaluation split with the model as it is now and writes it under embeddings/.
fn dump_embeddings(
    cfg: &FinetuneConfig,
    p: &Prepared,
    run: &RunDir,
    stage: EmbeddingStage,
) -> anyhow::Result<()> {
    let vectors = stage_vectors(cfg, &p.model, &p.eval);
    write_embeddings(cfg, p, run, stage, vectors)
}
