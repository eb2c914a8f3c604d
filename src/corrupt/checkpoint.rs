//! `heal corrupt`: a damaged copy of a checkpoint folder that this tool and HF transformers load.
//! Tensors keep their stored names and dtypes; those outside the selection keep their bytes.

use super::{corrupt, CorruptionConfig, CorruptionReport};
use crate::error::user;
use crate::fsio;
use crate::model::checkpoint::{self, normalise_name, CheckpointFiles, TOKENIZER_FILES};
use crate::model::config::EncoderConfig;
use anyhow::Context;
use std::collections::HashMap;
use std::path::Path;

pub const REPORT_FILE: &str = "corruption_report.json";

pub fn corrupt_checkpoint(
    model_dir: &Path,
    cfg: &CorruptionConfig,
    out: &Path,
    overwrite: bool,
) -> anyhow::Result<CorruptionReport> {
    fsio::Output::check("--out", out, fsio::Kind::Folder, overwrite)?;
    let files = CheckpointFiles::locate(model_dir)?;
    let config = EncoderConfig::from_file(&files.config)?;
    refuse_empty_selection(cfg, &config, model_dir)?;
    let raw = checkpoint::read_raw_tensors(&files)?;
    let by_name: HashMap<String, tch::Tensor> = raw
        .iter()
        .map(|(n, t)| (normalise_name(n, config.family), t.shallow_clone()))
        .collect();
    let report = corrupt(cfg, &config, &by_name)?;
    let mut json = config.raw.clone();
    if let Some(obj) = json.as_object_mut() {
        obj.insert(
            "heal_corruption".into(),
            serde_json::json!({
                "source": model_dir.canonicalize().unwrap_or(model_dir.to_path_buf()),
                "spec": cfg.spec.to_string(),
                "method": cfg.method.to_string(),
                "kaiming": cfg.kaiming,
                "seed": cfg.seed,
                "layers": report.layers,
            }),
        );
    }
    fsio::write_dir_atomic(out, |tmp| {
        checkpoint::write_named_safetensors(&raw, &tmp.join("model.safetensors"))?;
        fsio::write_json(&tmp.join("config.json"), &json)?;
        fsio::write_json(&tmp.join(REPORT_FILE), &report)?;
        for name in TOKENIZER_FILES {
            let src = model_dir.join(name);
            if src.is_file() {
                std::fs::copy(&src, tmp.join(name))
                    .with_context(|| format!("copying {}", src.display()))?;
            }
        }
        Ok(())
    })?;
    Ok(report)
}

/// A damaged copy that damages nothing is a mistake in the flags (`--spec none` without
/// `--include`), not a result: refused before anything is read or written.
fn refuse_empty_selection(
    cfg: &CorruptionConfig,
    config: &EncoderConfig,
    model_dir: &Path,
) -> anyhow::Result<()> {
    let (_, names) = super::selection(cfg, config)?;
    if names.is_empty() {
        return Err(user(format!(
            "--spec {}: selects no tensor of {} ({} layers): name layers to damage, e.g. --spec all, or add --include embeddings,pooler",
            cfg.spec,
            model_dir.display(),
            config.num_layers
        )));
    }
    Ok(())
}
