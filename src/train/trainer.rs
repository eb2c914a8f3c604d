//! The fine-tuning loop and the run directory it writes.

use super::config::FinetuneConfig;
use super::config::{CheckpointStage, EmbeddingStage};
use super::eval::{evaluate, evaluate_features};
use super::loss::{batch_loss, pooled_features};
use super::optim::{self, LinearSchedule};
use super::prepare::{prepare, Prepared};
use super::resume::{BestSnapshot, LoopState, Start};
use super::trainable::TrainMode;
use crate::data::batching::Tokenized;
use crate::device::device_name;
use crate::fsio::{self, Output};
use crate::metrics;
use crate::run_dir::events::RunEvents;
use crate::run_dir::{
    DataFacts, EpochRecord, RunDir, RunJson, RunResult, Status, StoppedEarly, Timings,
};
use crate::torch_error::one_line;
use crate::versions;
use std::path::PathBuf;
use std::time::Instant;
use tch::{Kind, Tensor};

/// What a finished run returns to its caller (the same facts as result.json).
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_dir: PathBuf,
    pub result: RunResult,
    pub epochs: Vec<EpochRecord>,
    /// The max-len used: --max-len, capped by the model's positions (run.json's effective_max_len).
    pub max_len: usize,
}

/// Fine-tunes as `cfg` says and writes the run directory. Returns the outcome; a run that
/// diverged or collapsed is an outcome, not an error. The output is checked before any work;
/// an existing run replaced with --overwrite stays whole until the new one is complete.
pub fn finetune(cfg: &FinetuneConfig) -> anyhow::Result<RunOutcome> {
    let output = Output::check("--out", &cfg.out, fsio::Kind::Run, cfg.overwrite)?;
    run(cfg, Start::New(output))
}

/// `--resume`: continues the run at `cfg.out` (`cfg` from [`super::resume_config`]) from its
/// last finished epoch, or from the start when it saved no state.
pub fn resume(cfg: &FinetuneConfig) -> anyhow::Result<RunOutcome> {
    run(cfg, Start::Resume)
}

/// A sweep cell without saved state: runs from the first epoch in the cell's own folder,
/// clearing what an earlier, killed attempt left there (`cfg.overwrite` plays no part).
pub fn restart(cfg: &FinetuneConfig) -> anyhow::Result<RunOutcome> {
    run(cfg, Start::Restart)
}

fn run(cfg: &FinetuneConfig, how: Start) -> anyhow::Result<RunOutcome> {
    let wall = Instant::now();
    // A libtorch failure while preparing (before the run directory exists) is one line too.
    let p = crate::torch_error::catch(|| prepare(cfg))?;
    let mut opt = optim::Stepper::new(
        &p.model.vs,
        cfg.optimizer,
        cfg.lr,
        cfg.weight_decay,
        cfg.fused_optimizer,
    )?;
    let (run, staged, state) = super::resume::start(cfg, &p, &mut opt, how)?;
    // Optimiser steps: one per group of --gradient-accumulation-steps batches.
    let steps_per_epoch = p
        .train
        .len()
        .div_ceil(cfg.batch_size * cfg.gradient_accumulation_steps);
    let schedule = LinearSchedule::new(cfg.lr, cfg.warmup, steps_per_epoch * cfg.epochs);
    let truncated = |t: &Tokenized| {
        t.encoded
            .iter()
            .filter(|e| e.ids.len() >= p.max_len)
            .count()
    };
    let mut run_json = RunJson {
        schema_version: crate::run_dir::SCHEMA_VERSION,
        config: cfg.clone(),
        model_dir: p.model_dir.canonicalize().unwrap_or(p.model_dir.clone()),
        family: p.model.config.family,
        layers: p.model.config.num_layers,
        hidden_size: p.model.config.hidden_size,
        tokenizer: p.tokenizer_source.to_string(),
        effective_max_len: p.max_len,
        labels: p.task.labels.clone(),
        data: DataFacts {
            train_source: p.task.train_source.clone(),
            eval_source: p.task.eval_source.clone(),
            train_examples: p.train.len(),
            eval_examples: p.eval.len(),
            train_truncated: truncated(&p.train),
            eval_truncated: truncated(&p.eval),
        },
        parameters: p.trainable.facts(&cfg.train),
        load_report: p.load_report.clone(),
        corruption: p.corruption.clone(),
        schedule,
        device: device_name(p.device),
        bf16_kernels: (cfg.precision == crate::model::precision::Precision::Bf16)
            .then(|| crate::model::precision::bf16_kernels(p.device)),
        threads: tch::get_num_threads(),
        versions: versions::Versions::current(),
        started_at: chrono::Local::now().to_rfc3339(),
        timings: Timings {
            prepare_seconds: p.prepare_seconds,
            ..Default::default()
        },
    };
    run.write_run_json(&run_json)?;
    let mut events = RunEvents::create(&run, &run_json)?;
    if p.max_len < cfg.max_len {
        log::warn!(
            "--max-len {} is beyond the model's {} positions; using {}",
            cfg.max_len,
            p.max_len,
            p.max_len
        );
    }
    for (stage, vectors) in &p.early_embeddings {
        super::prepare::write_embeddings(
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
            &run.checkpoint(CheckpointStage::Corrupted),
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
        cfg.out.display()
    );
    if !p.load_report.initialised.is_empty() {
        log::info!(
            "initialised head tensors: {}",
            p.load_report.initialised.join(", ")
        );
    }

    // libtorch reports some failures (an overflowing optimiser state, say) by panicking inside
    // tch: record them as a failed run instead of leaving a directory without result.json.
    let loop_result = crate::torch_error::catch(|| {
        train_loop(cfg, &p, &run, &mut events, (&mut opt, state), schedule)
    })
    .map_err(|e| match crate::error::find_user_error(&e) {
        Some(_) => e,
        None => anyhow::anyhow!("training stopped: {}", one_line(&format!("{e:#}"))),
    });
    let LoopOutput {
        epochs,
        best: best_snapshot,
        status,
        reason,
        timings,
        stopped_early,
    } = match loop_result {
        Ok(v) => v,
        Err(e) => {
            let failed = RunResult {
                schema_version: crate::run_dir::SCHEMA_VERSION,
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
                stopped_early: None,
            };
            // result.json matters more than the event file's last lines.
            let _ = events.finish(&failed);
            run.write_result(&failed)?;
            super::resume::discard(&run, cfg);
            // A failed run is a complete output too: it replaces the old one.
            if let Some(staged) = staged {
                staged.commit()?;
            }
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
        p.model.save_hf(
            &run.checkpoint(CheckpointStage::Best),
            &p.task.labels.names,
            &p.model_dir,
        )?;
    }
    if cfg.dumps(EmbeddingStage::Best) && !epochs.is_empty() {
        super::prepare::dump_embeddings(cfg, &p, &run, EmbeddingStage::Best)?;
    }
    if let Some(start) = p.artefacts.as_ref().filter(|_| !epochs.is_empty()) {
        start.write(&run, &p.model)?;
    }
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
        schema_version: crate::run_dir::SCHEMA_VERSION,
        status,
        reason,
        best_epoch: best.map_or(0, |b| b.epoch),
        best: best.map(EpochRecord::scores),
        last: epochs.last().map(EpochRecord::scores),
        epochs_run: epochs.len(),
        label_names: p.task.labels.names.clone(),
        confusion_matrix: confusion,
        eval_examples: p.eval.len(),
        wall_seconds: wall.elapsed().as_secs_f64(),
        stopped_early,
    };
    run_json.timings = Timings {
        total_seconds: wall.elapsed().as_secs_f64(),
        ..timings
    };
    run_json.timings.prepare_seconds = p.prepare_seconds;
    run.write_run_json(&run_json)?;
    events.finish(&result)?;
    run.write_result(&result)?;
    super::resume::discard(&run, cfg);
    if let Some(staged) = staged {
        staged.commit()?;
    }
    Ok(RunOutcome {
        run_dir: cfg.out.clone(),
        result,
        epochs,
        max_len: p.max_len,
    })
}

/// What the loop hands back: the epochs it finished, the best one's snapshot, and how it
/// ended (ok, or diverged with the reason; stopped early or not).
struct LoopOutput {
    epochs: Vec<EpochRecord>,
    best: BestSnapshot,
    status: Status,
    reason: String,
    timings: Timings,
    stopped_early: Option<StoppedEarly>,
}

fn train_loop(
    cfg: &FinetuneConfig,
    p: &Prepared,
    run: &RunDir,
    events: &mut RunEvents,
    (opt, mut st): (&mut optim::Stepper, LoopState),
    schedule: LinearSchedule,
) -> anyhow::Result<LoopOutput> {
    let head_only = cfg.train == TrainMode::Head;
    // A frozen encoder without dropout gives the same features every epoch: compute them once,
    // inside the first epoch's timings.
    let cache = head_only && cfg.feature_cache;
    let mut features: Option<Tensor> = None;
    let mut eval_features: Option<Tensor> = None;
    p.model
        .set_sparse_embedding_grads(opt.is_fused() && !head_only);
    log::debug!(
        "optimiser step: {}",
        if opt.is_fused() { "fused" } else { "libtorch" }
    );
    // The fused step takes the weights' gradients at the casts the forward pass multiplied
    // with (under bf16, in bfloat16), not at the float32 parameters: the backward pass skips
    // converting every weight's gradient (the same numbers; see GradSource). Under float32
    // the weights are the parameters and name no casts.
    let stop_at_casts = opt.is_fused() && !head_only;
    let delay = super::resume::test_step_delay();
    let mut stopped_early = None;
    let num_labels = p.task.labels.len();
    for epoch in st.epochs.len() + 1..=cfg.epochs {
        let started = Instant::now();
        if cache && features.is_none() {
            features = Some(pooled_features(&p.model, &p.train, cfg.eval_batch_size));
        }
        let bar = crate::progress::bar(
            p.train.len() as u64,
            crate::progress::Unit::Examples,
            format!("epoch {epoch}/{}", cfg.epochs),
        );
        let mut loss_sum = Tensor::zeros([], (Kind::Float, p.device));
        let mut seen = 0usize;
        let mut lr = cfg.lr;
        let mut diverged_at = None;
        // A group of --gradient-accumulation-steps batches is one batch of that many times
        // the size, cut into micro-batches: one optimiser step per group.
        let group_size = cfg.batch_size * cfg.gradient_accumulation_steps;
        for group in p.train.train_batches(group_size, &mut st.rng).iter() {
            lr = schedule.lr(st.step);
            opt.set_lr(lr);
            let micro_batches: Vec<&[usize]> = group.chunks(cfg.batch_size).collect();
            for indices in &micro_batches {
                let weights = stop_at_casts.then(|| p.model.encoder.weights());
                let loss = batch_loss(p, features.as_ref(), head_only, indices, weights.as_ref());
                let sources = weights
                    .as_ref()
                    .map(|w| w.grad_sources())
                    .unwrap_or_default();
                if micro_batches.len() == 1 {
                    opt.accumulate(&loss, &sources);
                } else {
                    // The group's mean loss: each micro-batch weighted by its share of examples.
                    let share = indices.len() as f64 / group.len() as f64;
                    opt.accumulate(&(&loss * share), &sources);
                }
                seen += indices.len();
                loss_sum += loss.detach() * indices.len() as f64;
            }
            opt.step(
                |var, grad| p.trainable.masked_gradient(var, grad),
                cfg.grad_clip,
            );
            p.trainable.restore_frozen_entries();
            st.step += 1;
            std::thread::sleep(delay);
            // Read the loss back only now and then: on a GPU every read is a synchronisation.
            if st.step.is_multiple_of(cfg.log_every) || seen == p.train.len() {
                let sum = loss_sum.double_value(&[]);
                let mean = sum / seen as f64;
                if !mean.is_finite() {
                    diverged_at = Some(st.step);
                    break;
                }
                let rate = seen as f64 / started.elapsed().as_secs_f64();
                bar.set_message(format!("loss {mean:.4}  {rate:.1} ex/s  lr {lr:.2e}"));
                events.train_progress(st.step, sum, seen, lr)?;
            }
            bar.set_position(seen as u64);
        }
        bar.finish_and_clear();
        let train_seconds = started.elapsed().as_secs_f64();
        st.timings.train_seconds += train_seconds;
        if let Some(at) = diverged_at {
            let reason =
                format!("non-finite training loss in epoch {epoch} (step {at}); training stopped");
            log::warn!("{reason}");
            return Ok(LoopOutput {
                epochs: st.epochs,
                best: st.best,
                status: Status::Diverged,
                reason,
                timings: st.timings,
                stopped_early: None,
            });
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
        st.timings.eval_seconds += eval_seconds;
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
        if record.f1_weighted > st.best_f1 {
            st.best_f1 = record.f1_weighted;
            st.best.predictions = Some((epoch, ev.predicted));
            if cfg.keeps_best_weights() {
                st.best.weights = Some(p.model.snapshot());
            }
        }
        // The best epoch stays the evaluation split's best (above); early stopping watches
        // the validation split when there is one.
        let stop = st
            .early_stopping
            .update(&record)
            .filter(|_| epoch < cfg.epochs);
        events.epoch(st.step, &record)?;
        st.epochs.push(record);
        run.write_metrics(&st.epochs)?;
        if stop.is_none() && epoch < cfg.epochs {
            // A run that ends here needs no state: killed before result.json, it resumes
            // from the previous epoch's.
            st.save(run, p, opt)?;
        }
        if let Some(stop) = stop {
            log::info!("early stopping after epoch {epoch}: {}", stop.reason);
            stopped_early = Some(stop);
            break;
        }
    }
    Ok(LoopOutput {
        epochs: st.epochs,
        best: st.best,
        status: Status::Ok,
        reason: String::new(),
        timings: st.timings,
        stopped_early,
    })
}
