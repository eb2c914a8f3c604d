//! The run directory: the one contract between training and every later tool.
//!
//! ```text
//! RUN/
//!   run.json                what ran (RunJson), written first and rewritten at the end
//!   metrics.jsonl           one EpochRecord per finished epoch
//!   result.json             RunResult, written last: a directory without it is unfinished
//!   checkpoint/             the best epoch's model as an HF folder (--save-checkpoint best)
//!   checkpoint-corrupted/   the damaged start as an HF folder (--save-checkpoint corrupted)
//!   embeddings/<stage>/     pooled vectors per layer (--dump-embeddings; format in embeddings.rs)
//!   analysis/               the study's compact artefacts (--analysis-examples; format in analysis/)
//!     vectors.safetensors   a fixed sample's pooled vectors per layer, float16
//!     weights.json          per-tensor statistics and |w| histograms, pretrained/corrupted/healed
//!   events.out.tfevents.*   TensorBoard's event file: scalars and hyper-parameters (events.rs)
//!   resume/                 the loop's state after the last finished epoch, for --resume
//!   projector_config.pbtxt  TensorBoard's projector: the last dumped stage's layers
//!   curves.png              loss and score curves (heal curves, heal demo)
//!   weights/                heal weights RUN's default output
//! ```
//!
//! Every path to an entry is a method here; nothing else spells the names.

pub mod analysis;
pub mod embeddings;
pub mod events;
mod records;
mod run_json;

pub use records::{EpochRecord, RunResult, Status, StoppedEarly};
pub use run_json::{read_config, DataFacts, RunJson, Timings};

use crate::error::user;
use crate::fsio;
use crate::train::config::{CheckpointStage, EmbeddingStage};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Written into run.json and result.json, so readers can tell a later layout from this one.
pub const SCHEMA_VERSION: u32 = 1;

const RUN_JSON: &str = "run.json";
const METRICS_JSONL: &str = "metrics.jsonl";
const RESULT_JSON: &str = "result.json";
const CHECKPOINT: &str = "checkpoint";
const CHECKPOINT_CORRUPTED: &str = "checkpoint-corrupted";
const EMBEDDINGS: &str = "embeddings";
const ANALYSIS: &str = "analysis";
const ANALYSIS_VECTORS: &str = "vectors.safetensors";
const ANALYSIS_WEIGHTS: &str = "weights.json";
const CURVES_PNG: &str = "curves.png";
const WEIGHTS: &str = "weights";
const RESUME: &str = "resume";
/// TensorBoard reads every file whose name holds this.
const EVENTS_PREFIX: &str = "events.out.tfevents.";

/// The local time as it appears in default output names (`runs/demo-20261122-085649`).
pub fn timestamp() -> String {
    chrono::Local::now().format("%Y%m%d-%H%M%S").to_string()
}

/// A run directory, by path. [`RunDir::create`] makes one for writing; [`RunDir::at`] names
/// one for reading.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn at(path: impl Into<PathBuf>) -> Self {
        RunDir { path: path.into() }
    }

    /// Whether `path` is a run directory (it holds run.json).
    pub fn is_run(path: &Path) -> bool {
        path.join(RUN_JSON).is_file()
    }

    /// Creates the folder to write a run in place. A folder that already holds files is
    /// refused unless `restart`: it is this run's own unfinished state (a resumed run that saved
    /// none, a sweep cell started again), whose entries are removed first so that nothing of
    /// the killed attempt stands beside the new one. `heal finetune --overwrite` never comes
    /// here with a full folder: it writes beside it and swaps (fsio::Output).
    pub fn create(path: &Path, restart: bool) -> anyhow::Result<Self> {
        let run = RunDir::at(path);
        if path.exists() {
            let busy = std::fs::read_dir(path)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true);
            if busy && !restart {
                let what = if run.result_json().exists() {
                    "a finished run"
                } else {
                    "files"
                };
                return Err(user(format!(
                    "{}: already holds {what}: choose another --out or pass --overwrite",
                    path.display()
                )));
            }
            // result.json first, so the folder never looks finished while it is rewritten.
            let _ = std::fs::remove_file(run.result_json());
            let _ = std::fs::remove_file(run.metrics_jsonl());
            // TensorBoard would show the old attempt's events and embeddings beside the new ones.
            for file in run.events_files() {
                let _ = std::fs::remove_file(file);
            }
            let _ = std::fs::remove_file(run.projector_config());
            // Another attempt's state would be resumed if this one were killed in its first epoch.
            let _ = std::fs::remove_dir_all(run.resume_state());
            // None of the old attempt's artefacts may stay to stand for this one.
            for dir in [
                run.analysis_dir(),
                run.embeddings_root(),
                run.checkpoint(CheckpointStage::Best),
                run.checkpoint(CheckpointStage::Corrupted),
            ] {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        std::fs::create_dir_all(path).map_err(|e| {
            user(format!(
                "{}: cannot create the run directory ({e})",
                path.display()
            ))
        })?;
        Ok(run)
    }

    pub fn run_json(&self) -> PathBuf {
        self.path.join(RUN_JSON)
    }

    pub fn metrics_jsonl(&self) -> PathBuf {
        self.path.join(METRICS_JSONL)
    }

    pub fn result_json(&self) -> PathBuf {
        self.path.join(RESULT_JSON)
    }

    /// The HF folder of a saved model.
    pub fn checkpoint(&self, stage: CheckpointStage) -> PathBuf {
        self.path.join(match stage {
            CheckpointStage::Best => CHECKPOINT,
            CheckpointStage::Corrupted => CHECKPOINT_CORRUPTED,
        })
    }

    /// The folder of one stage's pooled vectors.
    pub fn embeddings(&self, stage: EmbeddingStage) -> PathBuf {
        self.path.join(EMBEDDINGS).join(stage.name())
    }

    /// The folder that holds every stage's embeddings.
    pub fn embeddings_root(&self) -> PathBuf {
        self.path.join(EMBEDDINGS)
    }

    /// The study's compact artefacts (see [`analysis`]).
    pub fn analysis_dir(&self) -> PathBuf {
        self.path.join(ANALYSIS)
    }

    /// analysis/vectors.safetensors ([`analysis::AnalysisVectors`]).
    pub fn analysis_vectors(&self) -> PathBuf {
        self.analysis_dir().join(ANALYSIS_VECTORS)
    }

    /// analysis/weights.json ([`analysis::AnalysisWeights`]).
    pub fn analysis_weights(&self) -> PathBuf {
        self.analysis_dir().join(ANALYSIS_WEIGHTS)
    }

    /// A new TensorBoard event file, named as TensorFlow names them
    /// (`events.out.tfevents.<unix time>.<host>.<pid>.heal`) so that files sort by time.
    pub fn new_events_file(&self) -> PathBuf {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.path.join(format!(
            "{EVENTS_PREFIX}{secs}.{}.{}.heal",
            crate::fsio::temp::host_name(),
            std::process::id()
        ))
    }

    /// The event files in the run, in name (so time) order.
    pub fn events_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.path)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with(EVENTS_PREFIX))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    /// TensorBoard's projector config for the run folder (see
    /// [`embeddings::Embeddings::write_in_run`]).
    pub fn projector_config(&self) -> PathBuf {
        self.path.join(crate::tensorboard::projector::CONFIG_FILE)
    }

    pub fn curves_png(&self) -> PathBuf {
        self.path.join(CURVES_PNG)
    }

    /// The training state after the last finished epoch (`--resume`; see train/resume.rs).
    pub fn resume_state(&self) -> PathBuf {
        self.path.join(RESUME)
    }

    /// `heal weights RUN`'s default output folder.
    pub fn weights(&self) -> PathBuf {
        self.path.join(WEIGHTS)
    }

    /// Whether result.json exists: the run finished (in whatever status).
    pub fn is_finished(&self) -> bool {
        self.result_json().is_file()
    }

    pub fn write_run_json(&self, value: &impl Serialize) -> anyhow::Result<()> {
        fsio::write_json(&self.run_json(), value)
    }

    /// Rewrites metrics.jsonl with every epoch so far (atomically, so it is never half a line).
    pub fn write_metrics(&self, epochs: &[EpochRecord]) -> anyhow::Result<()> {
        let mut text = String::new();
        for e in epochs {
            text.push_str(&serde_json::to_string(e)?);
            text.push('\n');
        }
        fsio::write_atomic(&self.metrics_jsonl(), text.as_bytes())
    }

    pub fn write_result(&self, result: &RunResult) -> anyhow::Result<()> {
        fsio::write_json(&self.result_json(), result)
    }

    /// Reads result.json.
    pub fn read_result(&self) -> anyhow::Result<RunResult> {
        let path = self.result_json();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            user(format!(
                "{}: cannot read ({e}): is the run finished?",
                path.display()
            ))
        })?;
        let result: RunResult = serde_json::from_str(&text)
            .map_err(|e| user(format!("{}: not a heal result ({e})", path.display())))?;
        result.check_values(&path)?;
        Ok(result)
    }

    /// Reads metrics.jsonl.
    pub fn read_metrics(&self) -> anyhow::Result<Vec<EpochRecord>> {
        let path = self.metrics_jsonl();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| user(format!("{}: cannot read ({e})", path.display())))?;
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                let record: EpochRecord = serde_json::from_str(l)
                    .map_err(|e| user(format!("{}: line {}: {e}", path.display(), i + 1)))?;
                record.check_values(&path, i + 1)?;
                Ok(record)
            })
            .collect()
    }

    /// Reads run.json.
    pub fn read_run_json(&self) -> anyhow::Result<RunJson> {
        let path = self.run_json();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| user(format!("{}: cannot read ({e})", path.display())))?;
        serde_json::from_str(&text).map_err(|e| {
            user(format!(
                "{}: not a heal run.json ({e}); was it written by another version of heal?",
                path.display()
            ))
        })
    }
}

/// Reads a finished run's result.json.
pub fn read_result(run: &Path) -> anyhow::Result<RunResult> {
    RunDir::at(run).read_result()
}

/// Reads a run's metrics.jsonl.
pub fn read_metrics(run: &Path) -> anyhow::Result<Vec<EpochRecord>> {
    RunDir::at(run).read_metrics()
}

/// A run directory's run.json, or None when `path` is not a run directory (no run.json).
pub fn read_run_json(path: &Path) -> anyhow::Result<Option<RunJson>> {
    if !RunDir::is_run(path) {
        return Ok(None);
    }
    RunDir::at(path).read_run_json().map(Some)
}
