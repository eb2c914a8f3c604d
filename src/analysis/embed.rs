//! Per-layer pooled vectors for every example: layer 0 is the embeddings output, layer i the
//! output of encoder layer i. Written as safetensors, one .npy per layer, and a TensorBoard
//! projector export.

use super::npy;
use crate::data::batching::Tokenized;
use crate::error::user;
use crate::fsio;
use crate::model::head::Pooling;
use crate::model::SequenceClassifier;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Pooled vectors of the chosen layers, rows in example order.
pub struct Embeddings {
    /// (layer number, [examples, hidden] on the CPU).
    pub layers: Vec<(usize, Tensor)>,
    pub labels: Vec<i64>,
    pub ids: Vec<String>,
    pub label_names: Vec<String>,
    pub pooling: Pooling,
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

/// Runs the encoder (eval mode) over `data` and pools the chosen layers.
pub fn embed(
    model: &SequenceClassifier,
    data: &Tokenized,
    layers: &[usize],
    pooling: Pooling,
    batch_size: usize,
) -> Vec<(usize, Tensor)> {
    let device = model.device();
    let hidden = model.config.hidden_size;
    let mut out: Vec<(usize, Tensor)> = layers
        .iter()
        .map(|&l| {
            (
                l,
                Tensor::zeros([data.len() as i64, hidden], (Kind::Float, Device::Cpu)),
            )
        })
        .collect();
    tch::no_grad(|| {
        for indices in data.eval_batches(batch_size) {
            let batch = data.collate(&indices, device);
            let states = model.hidden_states(&batch, false);
            let idx = Tensor::from_slice(&indices.iter().map(|&i| i as i64).collect::<Vec<_>>());
            for (layer, target) in out.iter_mut() {
                let pooled = pooling
                    .pool(&states[*layer], &batch.attention_mask)
                    .to_device(Device::Cpu);
                let _ = target.index_copy_(0, &idx, &pooled);
            }
        }
    });
    out
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

impl Embeddings {
    /// Writes `dir/embeddings.safetensors` (`layer_<i>` [N, H] f32, `labels` [N] i64, ids and
    /// label names in the metadata), `dir/layer_<i>.npy`, `dir/labels.npy`, `dir/ids.txt`,
    /// `dir/manifest.json`, and `dir/projector/` (the last chosen layer as tensors.tsv with
    /// metadata.tsv, for TensorBoard's projector). The folder appears complete or not at all.
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
            let projector = tmp.join("projector");
            std::fs::create_dir_all(&projector)?;
            if let Some((_, last)) = self.layers.last() {
                let values = floats(last);
                let mut text = String::with_capacity(values.len() * 10);
                for row in values.chunks(hidden.max(1) as usize) {
                    let cells: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
                    text.push_str(&cells.join("\t"));
                    text.push('\n');
                }
                fsio::write_atomic(&projector.join("tensors.tsv"), text.as_bytes())?;
                let mut meta = String::from("id\tlabel\n");
                for (id, &label) in self.ids.iter().zip(&self.labels) {
                    let name = self
                        .label_names
                        .get(label as usize)
                        .map_or(label.to_string(), |s| s.clone());
                    meta.push_str(&format!("{}\t{}\n", tsv_field(id), tsv_field(&name)));
                }
                fsio::write_atomic(&projector.join("metadata.tsv"), meta.as_bytes())?;
            }
            files.extend([
                "labels.npy".into(),
                "ids.txt".into(),
                "projector/tensors.tsv".into(),
                "projector/metadata.tsv".into(),
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
}
