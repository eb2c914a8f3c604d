//! The embeddings format: per-layer pooled vectors of every example, as one safetensors file
//! (what heal reads back), one .npy per layer (numpy), and a TensorBoard projector export.
//! Written by training (`--dump-embeddings`) and `heal embed`; read by drift and t-SNE.
//! Layer 0 is the embeddings output, layer i the output of encoder layer i.

use super::{RunDir, RunJson};
use crate::data::Example;
use crate::error::user;
use crate::fsio;
use crate::model::head::Pooling;
use crate::npy;
use crate::tensorboard::projector::{self, ProjectorTensor};
use crate::train::config::EmbeddingStage;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use tch::Tensor;

/// The projector's files, in a folder of this name inside the embeddings folder.
const PROJECTOR: &str = "projector";
const METADATA_TSV: &str = "metadata.tsv";
/// The projector metadata's text column keeps this many characters of each example's text.
const TEXT_CHARS: usize = 100;

/// Pooled vectors of the chosen layers, rows in example order.
pub struct Embeddings {
    /// (layer number, [examples, hidden] on the CPU).
    pub layers: Vec<(usize, Tensor)>,
    pub labels: Vec<i64>,
    pub ids: Vec<String>,
    /// Each example's text (a pair as `a [SEP] b`), for the projector's metadata.
    pub texts: Vec<String>,
    pub label_names: Vec<String>,
    pub pooling: Pooling,
}

#[derive(Serialize)]
struct Manifest<'a> {
    examples: usize,
    hidden_size: i64,
    layers: Vec<usize>,
    pooling: Pooling,
    label_names: &'a [String],
    files: Vec<String>,
}

fn floats(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.contiguous().flatten(0, -1)).expect("float tensor")
}

/// Escapes a TSV field (tabs and newlines would break the row).
fn tsv_field(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

/// The first [`TEXT_CHARS`] characters of `text` as a TSV field, "…" marking a cut.
fn short_text(text: &str) -> String {
    let field = tsv_field(text);
    match field.char_indices().nth(TEXT_CHARS) {
        Some((at, _)) => format!("{}…", &field[..at]),
        None => field,
    }
}

/// One layer's vectors as the projector reads them: a row per example, tab-separated.
fn tensor_tsv(t: &Tensor) -> String {
    let hidden = t.size().get(1).copied().unwrap_or(1).max(1) as usize;
    let values = floats(t);
    let mut text = String::with_capacity(values.len() * 10);
    for row in values.chunks(hidden) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    text
}

fn layer_tsv(layer: usize) -> String {
    format!("layer_{layer}.tsv")
}

impl Embeddings {
    /// The vectors of `examples` (rows in their order), with their ids and texts.
    pub fn of_examples(
        layers: Vec<(usize, Tensor)>,
        examples: &[Example],
        labels: Vec<i64>,
        label_names: Vec<String>,
        pooling: Pooling,
    ) -> Self {
        Embeddings {
            layers,
            labels,
            ids: examples.iter().map(|e| e.id.clone()).collect(),
            texts: examples
                .iter()
                .map(|e| match &e.text_pair {
                    Some(b) => format!("{} [SEP] {b}", e.text),
                    None => e.text.clone(),
                })
                .collect(),
            label_names,
            pooling,
        }
    }

    /// The projector's metadata: a header row, then id, label name, label number and the
    /// text's start for every example.
    fn metadata_tsv(&self) -> String {
        let mut meta = String::from("id\tlabel\tlabel_id\ttext\n");
        for (i, (id, &label)) in self.ids.iter().zip(&self.labels).enumerate() {
            let name = self
                .label_names
                .get(label as usize)
                .map_or(label.to_string(), |s| s.clone());
            let text = self.texts.get(i).map_or(String::new(), |t| short_text(t));
            meta.push_str(&format!(
                "{}\t{}\t{label}\t{text}\n",
                tsv_field(id),
                tsv_field(&name)
            ));
        }
        meta
    }

    /// The projector's entries, one per layer: `prefix` + `layer_<i>`, paths below `folder`
    /// (relative to the config that lists them).
    fn projector_tensors(&self, prefix: &str, folder: &str) -> Vec<ProjectorTensor> {
        self.layers
            .iter()
            .map(|(l, _)| ProjectorTensor {
                name: format!("{prefix}layer_{l}"),
                tensor_path: format!("{folder}{}", layer_tsv(*l)),
                metadata_path: format!("{folder}{METADATA_TSV}"),
            })
            .collect()
    }

    /// Writes `dir/embeddings.safetensors` (`layer_<i>` [N, H] f32, `labels` [N] i64, ids and
    /// label names in the metadata), `dir/layer_<i>.npy`, `dir/labels.npy`, `dir/ids.txt`,
    /// `dir/manifest.json`, and `dir/projector/` for TensorBoard's projector: `layer_<i>.tsv`
    /// per layer, `metadata.tsv` (a header row; id, label name, label number, the text's start)
    /// and `projector_config.pbtxt` naming every layer; `tensors.tsv` repeats the last layer,
    /// one pair to load into the standalone projector. The folder appears complete or not at
    /// all.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let n = self.labels.len();
        let hidden = self.layers.first().map_or(0, |(_, t)| t.size()[1]);
        fsio::write_dir_atomic(dir, |tmp| {
            let mut named: Vec<(String, Tensor)> = self
                .layers
                .iter()
                .map(|(l, t)| (format!("layer_{l}"), t.shallow_clone()))
                .collect();
            named.push(("labels".into(), Tensor::from_slice(&self.labels)));
            let metadata = HashMap::from([
                ("ids".to_string(), serde_json::to_string(&self.ids)?),
                (
                    "label_names".to_string(),
                    serde_json::to_string(&self.label_names)?,
                ),
                ("pooling".to_string(), serde_json::to_string(&self.pooling)?),
            ]);
            crate::model::checkpoint::write_named_safetensors_with(
                &named,
                &tmp.join("embeddings.safetensors"),
                metadata,
            )?;
            let mut files = vec!["embeddings.safetensors".to_string()];
            for (l, t) in &self.layers {
                let name = format!("layer_{l}.npy");
                npy::write(&tmp.join(&name), &floats(t), &[n, hidden as usize])?;
                files.push(name);
            }
            npy::write(&tmp.join("labels.npy"), &self.labels, &[n])?;
            fsio::write_atomic(
                &tmp.join("ids.txt"),
                (self.ids.join("\n") + "\n").as_bytes(),
            )?;
            files.extend(["labels.npy".into(), "ids.txt".into()]);
            let projector = tmp.join(PROJECTOR);
            std::fs::create_dir_all(&projector)?;
            for (i, (l, t)) in self.layers.iter().enumerate() {
                let text = tensor_tsv(t);
                fsio::write_atomic(&projector.join(layer_tsv(*l)), text.as_bytes())?;
                files.push(format!("{PROJECTOR}/{}", layer_tsv(*l)));
                if i + 1 == self.layers.len() {
                    fsio::write_atomic(&projector.join("tensors.tsv"), text.as_bytes())?;
                    files.push(format!("{PROJECTOR}/tensors.tsv"));
                }
            }
            fsio::write_atomic(
                &projector.join(METADATA_TSV),
                self.metadata_tsv().as_bytes(),
            )?;
            fsio::write_atomic(
                &projector.join(projector::CONFIG_FILE),
                projector::config_text(&self.projector_tensors("", "")).as_bytes(),
            )?;
            files.extend([
                format!("{PROJECTOR}/{METADATA_TSV}"),
                format!("{PROJECTOR}/{}", projector::CONFIG_FILE),
            ]);
            fsio::write_json(
                &tmp.join("manifest.json"),
                &Manifest {
                    examples: n,
                    hidden_size: hidden,
                    layers: self.layers.iter().map(|(l, _)| *l).collect(),
                    pooling: self.pooling,
                    label_names: &self.label_names,
                    files,
                },
            )
        })
    }

    /// Writes RUN/embeddings/<stage>/, then points RUN/projector_config.pbtxt at its layers
    /// (named `<stage>/layer_<i>`), so that TensorBoard on the run, or on a folder of runs,
    /// shows the stage written last (the best epoch's, when dumped) beside the scalars.
    pub fn write_in_run(&self, run: &RunDir, stage: EmbeddingStage) -> anyhow::Result<()> {
        let dir = run.embeddings(stage);
        self.write(&dir)?;
        let folder = dir
            .join(PROJECTOR)
            .strip_prefix(&run.path)?
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned() + "/")
            .collect::<String>();
        let tensors = self.projector_tensors(&format!("{}/", stage.name()), &folder);
        fsio::write_atomic(
            &run.projector_config(),
            projector::config_text(&tensors).as_bytes(),
        )
    }
}

/// Embeddings read back from a folder written by [`Embeddings::write`], as f64 for analysis.
pub struct EmbeddingSet {
    pub dir: std::path::PathBuf,
    /// (layer number, [examples, hidden]).
    pub layers: Vec<(usize, ndarray::Array2<f64>)>,
    pub labels: Vec<usize>,
    pub ids: Vec<String>,
    pub label_names: Vec<String>,
    /// The run's run.json when the folder sits in a run directory (RUN/embeddings/<stage>).
    pub run: Option<RunJson>,
}

/// Finds the embeddings folder a command-line argument means: an embeddings folder itself, or a
/// run directory (then RUN/embeddings/<stage>).
pub fn locate_embeddings(path: &Path, stage: EmbeddingStage) -> anyhow::Result<std::path::PathBuf> {
    let stage_name = stage.name();
    if path.join("embeddings.safetensors").is_file() {
        return Ok(path.to_path_buf());
    }
    if RunDir::is_run(path) {
        let run = RunDir::at(path);
        let dir = run.embeddings(stage);
        if dir.join("embeddings.safetensors").is_file() {
            return Ok(dir);
        }
        let present: Vec<String> = std::fs::read_dir(run.embeddings_root())
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        return Err(user(format!(
            "{}: no embeddings/{stage_name}/ in the run (it has: {}); train with --dump-embeddings {stage_name} or run `heal embed {} --out DIR`",
            path.display(),
            if present.is_empty() { "none".to_string() } else { present.join(", ") },
            path.display()
        )));
    }
    Err(user(format!(
        "{}: neither an embeddings folder (embeddings.safetensors) nor a run directory (run.json)",
        path.display()
    )))
}

impl EmbeddingSet {
    /// Reads `path` (see [`locate_embeddings`]).
    pub fn read(path: &Path, stage: EmbeddingStage) -> anyhow::Result<Self> {
        let dir = locate_embeddings(path, stage)?;
        let file = dir.join("embeddings.safetensors");
        let bytes = std::fs::read(&file)
            .map_err(|e| user(format!("{}: cannot read ({e})", file.display())))?;
        let bad = |what: String| user(format!("{}: {what}", file.display()));
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| bad(format!("not a safetensors file ({e:?})")))?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("no metadata ({e:?})")))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let json_list = |key: &str| -> anyhow::Result<Vec<String>> {
            let text = meta
                .get(key)
                .ok_or_else(|| bad(format!("metadata lacks {key:?}: write it with heal embed")))?;
            serde_json::from_str(text).map_err(|e| bad(format!("metadata {key:?}: {e}")))
        };
        let ids = json_list("ids")?;
        let label_names = json_list("label_names")?;
        let labels_view = st
            .tensor("labels")
            .map_err(|_| bad("no \"labels\" tensor".into()))?;
        if labels_view.dtype() != safetensors::Dtype::I64 {
            return Err(bad("\"labels\" is not int64".into()));
        }
        let labels: Vec<usize> = labels_view
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()).max(0) as usize)
            .collect();
        let mut layers = Vec::new();
        for (name, view) in st.tensors() {
            let Some(layer) = name
                .strip_prefix("layer_")
                .and_then(|l| l.parse::<usize>().ok())
            else {
                continue;
            };
            let shape = view.shape();
            if view.dtype() != safetensors::Dtype::F32 || shape.len() != 2 {
                return Err(bad(format!("{name}: expected a 2-D float32 tensor")));
            }
            let values: Vec<f64> = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect();
            let array = ndarray::Array2::from_shape_vec((shape[0], shape[1]), values)
                .map_err(|e| bad(format!("{name}: {e}")))?;
            if array.nrows() != labels.len() || ids.len() != labels.len() {
                return Err(bad(format!(
                    "{name} has {} rows but there are {} labels and {} ids",
                    array.nrows(),
                    labels.len(),
                    ids.len()
                )));
            }
            layers.push((layer, array));
        }
        if layers.is_empty() {
            return Err(bad("no layer_<i> tensors".into()));
        }
        layers.sort_by_key(|(l, _)| *l);
        let run = dir
            .parent()
            .and_then(|p| p.parent())
            .filter(|r| dir.parent() == Some(RunDir::at(*r).embeddings_root().as_path()))
            .map(super::read_run_json)
            .transpose()?
            .flatten();
        Ok(EmbeddingSet {
            dir,
            layers,
            labels,
            ids,
            label_names,
            run,
        })
    }

    /// The matrix of one layer.
    pub fn layer(&self, layer: usize) -> Option<&ndarray::Array2<f64>> {
        self.layers
            .iter()
            .find(|(l, _)| *l == layer)
            .map(|(_, a)| a)
    }

    /// The last (deepest) layer present.
    pub fn last_layer(&self) -> (usize, &ndarray::Array2<f64>) {
        let (l, a) = self.layers.last().expect("at least one layer");
        (*l, a)
    }

    /// A short name for plots: the corruption setting when the embeddings belong to a run
    /// ("0% (clean)", "top 25%", "bottom 2 layers", "100%"; a stage other than best is added:
    /// "top 25%, corrupted"), else the folder name.
    pub fn title(&self) -> String {
        let folder = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        match &self.run {
            Some(run) => match folder.as_deref() {
                Some("best") | None => run.config.setting_title(),
                Some(stage) => format!("{}, {stage}", run.config.setting_title()),
            },
            None => folder.unwrap_or_default(),
        }
    }
}
