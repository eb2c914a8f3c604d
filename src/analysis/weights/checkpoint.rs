//! A checkpoint's weights loaded for analysis.

use super::{place, stats_of, TensorStats};
use crate::model::checkpoint::{read_tensors, CheckpointFiles};
use crate::model::config::{EncoderConfig, Family};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::{Kind, Tensor};

/// A checkpoint's float tensors, by normalised name, as f64 vectors with shapes.
pub struct Weights {
    pub label: String,
    pub family: Family,
    pub tensors: BTreeMap<String, (Vec<i64>, Vec<f64>)>,
}

impl Weights {
    /// Reads a checkpoint folder. Integer buffers (position ids) are left out.
    pub fn load(dir: &Path, label: &str) -> anyhow::Result<Self> {
        let files = CheckpointFiles::locate(dir)?;
        let config = EncoderConfig::from_file(&files.config)?;
        let raw: HashMap<String, Tensor> = read_tensors(&files, config.family)?;
        let mut tensors = BTreeMap::new();
        for (name, t) in raw {
            if !t.is_floating_point() {
                continue;
            }
            let shape = t.size();
            let values = Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1))?;
            tensors.insert(name, (shape, values));
        }
        Ok(Weights {
            label: label.to_string(),
            family: config.family,
            tensors,
        })
    }

    pub fn parameter_count(&self) -> usize {
        self.tensors.values().map(|(_, v)| v.len()).sum()
    }

    pub fn stats(&self) -> Vec<TensorStats> {
        self.tensors
            .iter()
            .map(|(name, (_, values))| {
                let (mean, mean_abs, std, min, max, kurtosis, outliers) = stats_of(values);
                TensorStats {
                    tensor: name.clone(),
                    place: place(name, self.family),
                    count: values.len(),
                    mean,
                    mean_abs,
                    std,
                    min,
                    max,
                    max_abs: min.abs().max(max.abs()),
                    kurtosis,
                    outliers,
                }
            })
            .collect()
    }
}
