//! analysis/vectors.safetensors: the sample's pooled vectors per layer (float16) at the stages
//! kept, with each row's label and index in the evaluation split.

use super::{ANALYSIS_SCHEMA_VERSION, VECTORS_FORMAT};
use crate::error::user;
use crate::fsio;
use crate::model::head::Pooling;
use crate::train::config::EmbeddingStage;
use ndarray::Array2;
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Kind, Tensor};

/// analysis/vectors.safetensors: the sample's pooled vectors at each stage kept.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisVectors {
    /// [n, hidden] per (stage, layer); stored as float16, so read back rounded to it.
    pub layers: BTreeMap<(EmbeddingStage, usize), Array2<f32>>,
    /// Each row's label: an index into run.json's label names.
    pub labels: Vec<i64>,
    /// Each row's index in the evaluation split, ascending.
    pub examples: Vec<usize>,
    pub sample_seed: u64,
    /// The size of the evaluation split the sample was drawn from.
    pub eval_examples: usize,
    pub pooling: Pooling,
}

fn tensor_name(stage: EmbeddingStage, layer: usize) -> String {
    format!("{}.layer.{layer}", stage.name())
}

fn parse_tensor_name(name: &str) -> Option<(EmbeddingStage, usize)> {
    let (stage, layer) = name.split_once(".layer.")?;
    let stage = [
        EmbeddingStage::Pretrained,
        EmbeddingStage::Corrupted,
        EmbeddingStage::Best,
    ]
    .into_iter()
    .find(|s| s.name() == stage)?;
    Some((stage, layer.parse().ok()?))
}

impl AnalysisVectors {
    /// The matrix of one stage and layer.
    pub fn get(&self, stage: EmbeddingStage, layer: usize) -> Option<&Array2<f32>> {
        self.layers.get(&(stage, layer))
    }

    /// The best epoch's layers, 0 (embeddings output) first.
    pub fn best_layers(&self) -> Vec<(usize, &Array2<f32>)> {
        self.layers
            .iter()
            .filter(|((s, _), _)| *s == EmbeddingStage::Best)
            .map(|((_, l), a)| (*l, a))
            .collect()
    }

    /// L: the deepest layer stored.
    pub fn final_layer(&self) -> Option<usize> {
        self.layers.keys().map(|(_, l)| *l).max()
    }

    /// Writes the file atomically, every matrix as float16. The same vectors always give the
    /// same bytes: tensors and metadata in name order (the safetensors crate's writer orders
    /// the metadata as a HashMap iterates).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut tensors: BTreeMap<String, (&str, Vec<usize>, Vec<u8>)> = BTreeMap::new();
        for (&(stage, layer), a) in &self.layers {
            let values: Vec<f32> = a.iter().copied().collect();
            let half = Tensor::from_slice(&values).to_kind(Kind::Half);
            let mut bytes = vec![0u8; values.len() * 2];
            half.copy_data_u8(&mut bytes, values.len());
            let shape = vec![a.nrows(), a.ncols()];
            tensors.insert(tensor_name(stage, layer), ("F16", shape, bytes));
        }
        let ints = |v: &[i64]| {
            (
                "I64",
                vec![v.len()],
                v.iter().flat_map(|i| i.to_le_bytes()).collect(),
            )
        };
        tensors.insert("labels".into(), ints(&self.labels));
        let examples: Vec<i64> = self.examples.iter().map(|&i| i as i64).collect();
        tensors.insert("examples".into(), ints(&examples));
        let pooling = match self.pooling {
            Pooling::Cls => "cls",
            Pooling::Mean => "mean",
        };
        let metadata = BTreeMap::from([
            ("format", VECTORS_FORMAT.to_string()),
            ("schema_version", ANALYSIS_SCHEMA_VERSION.to_string()),
            ("sample_seed", self.sample_seed.to_string()),
            ("eval_examples", self.eval_examples.to_string()),
            ("pooling", pooling.to_string()),
        ]);
        fsio::write_atomic(path, &safetensors_bytes(&tensors, &metadata)?)
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| user(format!("{}: cannot read ({e})", path.display())))?;
        let bad = |what: String| user(format!("{}: {what}", path.display()));
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| bad(format!("not a safetensors file ({e:?})")))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("no header ({e:?})")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let field = |key: &str| {
            meta.get(key)
                .cloned()
                .ok_or_else(|| bad(format!("metadata lacks {key:?}: not a heal analysis file")))
        };
        if field("format")? != VECTORS_FORMAT {
            return Err(bad(format!("metadata format is not {VECTORS_FORMAT:?}")));
        }
        let number = |key: &str| -> anyhow::Result<u64> {
            field(key)?
                .parse()
                .map_err(|_| bad(format!("metadata {key:?} is not a number")))
        };
        let version = number("schema_version")?;
        if version > ANALYSIS_SCHEMA_VERSION as u64 {
            return Err(bad(format!(
                "schema_version {version} is newer than this heal reads ({ANALYSIS_SCHEMA_VERSION}): update heal"
            )));
        }
        let pooling = match field("pooling")?.as_str() {
            "cls" => Pooling::Cls,
            "mean" => Pooling::Mean,
            other => return Err(bad(format!("unknown pooling {other:?}"))),
        };
        let ints = |name: &str| -> anyhow::Result<Vec<i64>> {
            let view = st
                .tensor(name)
                .map_err(|_| bad(format!("no {name:?} tensor")))?;
            if view.dtype() != safetensors::Dtype::I64 {
                return Err(bad(format!("{name:?} is not int64")));
            }
            Ok(view
                .data()
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect())
        };
        let labels = ints("labels")?;
        let examples: Vec<usize> = ints("examples")?
            .into_iter()
            .map(|i| usize::try_from(i).map_err(|_| bad(format!("negative example index {i}"))))
            .collect::<anyhow::Result<_>>()?;
        if examples.len() != labels.len() {
            return Err(bad(format!(
                "{} examples but {} labels",
                examples.len(),
                labels.len()
            )));
        }
        let mut layers = BTreeMap::new();
        for (name, view) in st.tensors() {
            let Some(key) = parse_tensor_name(&name) else {
                continue;
            };
            let shape = view.shape().to_vec();
            if view.dtype() != safetensors::Dtype::F16 || shape.len() != 2 {
                return Err(bad(format!("{name}: expected a 2-D float16 tensor")));
            }
            if shape[0] != labels.len() {
                return Err(bad(format!(
                    "{name} has {} rows but there are {} labels",
                    shape[0],
                    labels.len()
                )));
            }
            let t = Tensor::from_data_size(
                view.data(),
                &[shape[0] as i64, shape[1] as i64],
                Kind::Half,
            );
            let values = Vec::<f32>::try_from(t.to_kind(Kind::Float).flatten(0, -1))?;
            let array = Array2::from_shape_vec((shape[0], shape[1]), values)
                .map_err(|e| bad(format!("{name}: {e}")))?;
            layers.insert(key, array);
        }
        Ok(AnalysisVectors {
            layers,
            labels,
            examples,
            sample_seed: number("sample_seed")?,
            eval_examples: number("eval_examples")? as usize,
            pooling,
        })
    }
}

/// A safetensors file: an 8-byte header length, the JSON header (`__metadata__`, then each
/// tensor's dtype, shape and byte range) padded with spaces to 8 bytes, then the data.
fn safetensors_bytes(
    tensors: &BTreeMap<String, (&str, Vec<usize>, Vec<u8>)>,
    metadata: &BTreeMap<&str, String>,
) -> anyhow::Result<Vec<u8>> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::to_value(metadata)?);
    let mut offset = 0;
    for (name, (dtype, shape, bytes)) in tensors {
        let range = [offset, offset + bytes.len()];
        let entry = serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": range});
        header.insert(name.clone(), entry);
        offset += bytes.len();
    }
    let mut text = serde_json::to_string(&header)?;
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + offset);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    for (_, _, bytes) in tensors.values() {
        out.extend_from_slice(bytes);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run_dir::analysis::SAMPLE_SEED;

    #[test]
    fn vectors_read_back_as_written_to_float16() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.safetensors");
        let a =
            Array2::from_shape_vec((2, 3), vec![0.1f32, -2.0, 3.5, 1e-3, 0.0, 65504.0]).unwrap();
        let v = AnalysisVectors {
            layers: BTreeMap::from([
                ((EmbeddingStage::Best, 0), a.clone()),
                ((EmbeddingStage::Corrupted, 1), a.clone()),
            ]),
            labels: vec![1, 0],
            examples: vec![3, 7],
            sample_seed: SAMPLE_SEED,
            eval_examples: 9,
            pooling: Pooling::Mean,
        };
        v.write(&path).unwrap();
        let again = dir.path().join("again.safetensors");
        v.write(&again).unwrap();
        assert!(std::fs::read(&path).unwrap() == std::fs::read(&again).unwrap());
        let back = AnalysisVectors::read(&path).unwrap();
        let got = back.get(EmbeddingStage::Best, 0).unwrap();
        for (x, y) in got.iter().zip(a.iter()) {
            assert!((x - y).abs() <= y.abs() / 1024.0, "{x} vs {y}");
        }
        assert_eq!((back.final_layer(), back.best_layers().len()), (Some(1), 1));
        assert_eq!(
            (back.labels, back.examples, back.eval_examples, back.pooling),
            (v.labels, v.examples, 9, Pooling::Mean)
        );
    }
}
