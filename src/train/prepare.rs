//! Everything a run needs before its directory is created: the device, the checkpoint and its
//! tokenizer, the tokenised task, the model, the damage and the trainable set. Bad input fails
//! here, leaving nothing on disk.

use super::config::{EmbeddingStage, FinetuneConfig};
use super::task_cache;
use super::trainable::{self, Trainable};
use crate::artefacts;
use crate::corrupt::{self, CorruptionReport};
use crate::data::batching::Tokenized;
use crate::data::{EvalSource, TaskData};

use crate::device::parse_device;
use crate::model::checkpoint::LoadReport;
use crate::model::tokenizer::TextEncoder;
use crate::model::SequenceClassifier;
use crate::run_dir::embeddings::Embeddings;
use crate::run_dir::RunDir;
use std::path::PathBuf;
use std::time::Instant;
use tch::{Device, Tensor};

/// Everything prepared before the run directory is created: bad input fails here, leaving
/// nothing on disk.
pub(super) struct Prepared {
    pub device: Device,
    pub model_dir: PathBuf,
    pub task: TaskData,
    pub train: Tokenized,
    pub eval: Tokenized,
    /// The --validation-split carve-out, scored every epoch.
    pub validation: Option<Tokenized>,
    pub tokenizer_source: &'static str,
    pub max_len: usize,
    pub model: SequenceClassifier,
    pub load_report: LoadReport,
    pub corruption: Option<CorruptionReport>,
    pub trainable: Trainable,
    /// Pooled vectors of the evaluation split taken before training (pretrained, corrupted).
    pub early_embeddings: Vec<(EmbeddingStage, Vec<(usize, Tensor)>)>,
    /// What RUN/analysis/ needs from before training (with --analysis-examples > 0).
    pub artefacts: Option<artefacts::Start>,
    pub prepare_seconds: f64,
}

pub(super) fn prepare(cfg: &FinetuneConfig) -> anyhow::Result<Prepared> {
    let start = Instant::now();
    let device = parse_device(&cfg.device)?;
    if let Some(n) = cfg.threads {
        crate::threads::set("--threads", n)?;
    }
    crate::model::precision::set(cfg.precision);
    crate::model::precision::bf16_kernels_override()?;
    let model_dir = crate::hub::model::resolve(&cfg.model, cfg.revision.as_deref())?;
    let files = crate::model::checkpoint::CheckpointFiles::locate(&model_dir)?;
    let model_config = crate::model::config::EncoderConfig::from_file(&files.config)?;
    let max_len = cfg.max_len.min(model_config.max_tokens());
    let encoder = TextEncoder::from_dir(&model_dir, max_len)?;
    let eval_source = EvalSource::from_options(cfg.eval_data.as_deref(), cfg.eval_split);
    let types = model_config.uses_token_types();
    let (task, train, eval, validation) =
        task_cache::tokenized_task(cfg, &model_dir, &encoder, &eval_source, types, max_len)?;
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
    let mut artefacts = (cfg.analysis_examples > 0)
        .then(|| {
            artefacts::Start::before_damage(
                &model,
                &eval,
                cfg.analysis_examples,
                cfg.eval_batch_size,
                &load_report.initialised,
                corruption_cfg.is_none(),
            )
        })
        .transpose()?;
    let corruption = if corruption_cfg.is_none() {
        None
    } else {
        let report = corrupt::corrupt(&corruption_cfg, &model.config, &model.vs.variables())?;
        for line in corrupt::format_report(&report).lines() {
            log::info!("{line}");
        }
        if let Some(a) = artefacts.as_mut() {
            a.after_damage(&model)?;
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
        artefacts,
        prepare_seconds: start.elapsed().as_secs_f64(),
    })
}

/// Every layer's pooled vectors of the evaluation split, with the run's pooling.
fn stage_vectors(
    cfg: &FinetuneConfig,
    model: &SequenceClassifier,
    eval: &Tokenized,
) -> Vec<(usize, Tensor)> {
    let layers: Vec<usize> = (0..=model.config.num_layers as usize).collect();
    model.layer_vectors(eval, cfg.eval_batch_size, &layers, cfg.pooling)
}

/// Writes one stage's vectors into RUN/embeddings/<stage>/ (and the run's projector config).
pub(super) fn write_embeddings(
    cfg: &FinetuneConfig,
    p: &Prepared,
    run: &RunDir,
    stage: EmbeddingStage,
    layers: Vec<(usize, Tensor)>,
) -> anyhow::Result<()> {
    let embeddings = Embeddings::of_examples(
        layers,
        &p.task.eval,
        p.eval.labels.clone(),
        p.task.labels.names.clone(),
        cfg.pooling,
    );
    embeddings.write_in_run(run, stage)
}

/// Embeds the evaluation split with the model as it is now and writes it under embeddings/.
pub(super) fn dump_embeddings(
    cfg: &FinetuneConfig,
    p: &Prepared,
    run: &RunDir,
    stage: EmbeddingStage,
) -> anyhow::Result<()> {
    let vectors = stage_vectors(cfg, &p.model, &p.eval);
    write_embeddings(cfg, p, run, stage, vectors)
}
