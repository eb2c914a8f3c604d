//! run.json: what ran, fully resolved, written before training starts and again at the end
//! (with the timings). Readers deserialise it into [`RunJson`].

use crate::corrupt::CorruptionReport;
use crate::data::labels::LabelMap;
use crate::error::user;
use crate::model::checkpoint::LoadReport;
use crate::model::config::Family;
use crate::train::optim::LinearSchedule;
use crate::train::trainable::TrainableFacts;
use crate::train::FinetuneConfig;
use crate::versions::Versions;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunJson {
    /// [`super::SCHEMA_VERSION`] of the writer; 0 for files written before it was recorded.
    #[serde(default)]
    pub schema_version: u32,
    /// The options as resolved: give this file back to repeat the run.
    pub config: FinetuneConfig,
    /// The checkpoint folder `config.model` resolved to.
    pub model_dir: PathBuf,
    pub family: Family,
    pub layers: i64,
    pub hidden_size: i64,
    /// "tokenizer.json" or "vocab.txt".
    pub tokenizer: String,
    /// --max-len, capped by the model's position embeddings.
    pub effective_max_len: usize,
    pub labels: LabelMap,
    pub data: DataFacts,
    pub parameters: TrainableFacts,
    pub load_report: LoadReport,
    pub corruption: Option<CorruptionReport>,
    pub schedule: LinearSchedule,
    pub device: String,
    /// Under bf16, which kernels ran the products (see `model::precision::Bf16Kernels`);
    /// absent under fp32 and in files written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bf16_kernels: Option<crate::model::precision::Bf16Kernels>,
    pub threads: i32,
    pub versions: Versions,
    pub started_at: String,
    pub timings: Timings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataFacts {
    pub train_source: String,
    pub eval_source: String,
    pub train_examples: usize,
    pub eval_examples: usize,
    /// Examples cut at max-len.
    pub train_truncated: usize,
    pub eval_truncated: usize,
}

#[derive(Debug, Serialize, Deserialize, Default, Clone, Copy)]
pub struct Timings {
    pub prepare_seconds: f64,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    pub total_seconds: f64,
}

/// The resolved config of the run.json at `path` (any file name), read alone so that the rest
/// of the file may come from another heal version.
pub fn read_config(path: &Path) -> anyhow::Result<FinetuneConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| user(format!("{}: cannot read ({e})", path.display())))?;
    let not_run_json = |why: String| {
        user(format!(
            "{}: not a heal run.json ({why}); --config takes a run.json or a TOML file of options",
            path.display()
        ))
    };
    let mut value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| not_run_json(e.to_string()))?;
    match value.get_mut("config").map(serde_json::Value::take) {
        Some(config @ serde_json::Value::Object(_)) => {
            serde_json::from_value(config).map_err(|e| not_run_json(format!("config: {e}")))
        }
        _ => Err(not_run_json("no config object".into())),
    }
}
