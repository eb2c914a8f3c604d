//! The disk a sweep's cells will take: each cell's analysis artefacts (RUN/analysis/), from its
//! model's shape, plus the checkpoints its grid asks for. `heal sweep --plan` prints it.

use super::Plan;
use crate::data::EvalSource;
use crate::model::config::{EncoderConfig, Family};
use crate::train::FinetuneConfig;
use std::collections::HashMap;
use std::fmt;

/// An --eval-data file larger than this is not read just to count its examples.
const COUNTED_FILE_BYTES: u64 = 64 << 20;
/// weights.json: about this much per tensor, and per histogram group (edges and three rows of
/// counts, pretty-printed); measured on BERT-Base-shaped and tiny models.
const WEIGHTS_JSON_PER_TENSOR: u64 = 950;
const WEIGHTS_JSON_PER_GROUP: u64 = 7_000;
const HISTOGRAM_GROUPS: u64 = crate::model::place::ALL_GROUPS.len() as u64;
/// The vectors file's header and metadata.
const VECTORS_HEADER: u64 = 2_000;

/// What a model's artefacts and checkpoints depend on, from its config.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelShape {
    pub layers: u64,
    pub hidden: u64,
    /// Parameters with a two-label head.
    pub parameters: u64,
    /// Float tensors of the *ForSequenceClassification model.
    pub tensors: u64,
}

impl ModelShape {
    pub fn of(c: &EncoderConfig) -> Self {
        let (h, i, l) = (
            c.hidden_size as u64,
            c.intermediate_size as u64,
            c.num_layers as u64,
        );
        let types = if c.family == Family::DistilBert {
            0
        } else {
            c.type_vocab_size as u64
        };
        let embeddings =
            (c.vocab_size as u64 + c.max_position_embeddings as u64 + types) * h + 2 * h;
        // q, k, v, o (weight and bias), two LayerNorms, FFN in and out.
        let layer = 4 * (h * h + h) + 2 * h * i + i + h + 4 * h;
        // A hidden-sized dense layer (pooler, pre-classifier) and a two-label classifier.
        let head = h * h + h + 2 * h + 2;
        ModelShape {
            layers: l,
            hidden: h,
            parameters: embeddings + l * layer + head,
            // Embeddings (word, position, token type, LayerNorm), 16 per layer, the head's 4.
            tensors: (if types > 0 { 5 } else { 4 }) + 16 * l + 4,
        }
    }

    /// Bytes of RUN/analysis/ with a sample of `n` examples: every layer's vectors at the best
    /// epoch and one more final layer (pretrained or corrupted), float16, the labels and
    /// example indices, and weights.json.
    pub fn artefact_bytes(&self, n: u64) -> u64 {
        let vectors = (self.layers + 2) * n * self.hidden * 2 + 16 * n + VECTORS_HEADER;
        let weights =
            self.tensors * WEIGHTS_JSON_PER_TENSOR + HISTOGRAM_GROUPS * WEIGHTS_JSON_PER_GROUP;
        vectors + weights
    }

    /// Bytes of one saved checkpoint (float32).
    pub fn checkpoint_bytes(&self) -> u64 {
        self.parameters * 4
    }
}

/// The disk a plan's cells will take.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiskEstimate {
    pub cells: usize,
    /// (artefacts, checkpoints) bytes of each cell whose model's shape is known.
    pub known: Vec<(u64, u64)>,
    /// Models whose config.json is neither here nor in the HF cache (nothing is downloaded to
    /// find out).
    pub unknown_models: Vec<String>,
}

impl DiskEstimate {
    pub fn total(&self) -> u64 {
        self.known.iter().map(|(a, c)| a + c).sum()
    }
}

/// Estimates the disk of every cell of `plan`, reading each model's config.json once.
pub fn estimate_disk(plan: &Plan) -> DiskEstimate {
    let mut shapes: HashMap<(String, Option<String>), Option<ModelShape>> = HashMap::new();
    let mut evals: HashMap<String, Option<u64>> = HashMap::new();
    let mut out = DiskEstimate {
        cells: plan.cells.len(),
        ..Default::default()
    };
    for cell in &plan.cells {
        let cfg = &cell.config;
        let shape = *shapes
            .entry((cfg.model.clone(), cfg.revision.clone()))
            .or_insert_with(|| {
                let path = crate::hub::model::local_config(&cfg.model, cfg.revision.as_deref())?;
                EncoderConfig::from_file(&path)
                    .ok()
                    .map(|c| ModelShape::of(&c))
            });
        let Some(shape) = shape else {
            if !out.unknown_models.contains(&cfg.model) {
                out.unknown_models.push(cfg.model.clone());
            }
            continue;
        };
        let key = format!("{}\n{:?}\n{:?}", cfg.data, cfg.eval_data, cfg.eval_split);
        let eval = *evals.entry(key).or_insert_with(|| eval_size(cfg));
        let n = (cfg.analysis_examples as u64).min(eval.unwrap_or(u64::MAX));
        let artefacts = if n > 0 { shape.artefact_bytes(n) } else { 0 };
        let checkpoints = cfg.save_checkpoint.len() as u64 * shape.checkpoint_bytes();
        out.known.push((artefacts, checkpoints));
    }
    out
}

/// The evaluation split's size when it is cheap to know: a local --eval-data file that is not
/// too large, or the embedded bbc-news. Named datasets and carve-outs are not read.
fn eval_size(cfg: &FinetuneConfig) -> Option<u64> {
    match EvalSource::from_options(cfg.eval_data.as_deref(), cfg.eval_split) {
        EvalSource::File(path) => {
            if std::fs::metadata(&path).ok()?.len() > COUNTED_FILE_BYTES {
                return None;
            }
            let examples = crate::data::format::read_examples(&path).ok()?;
            Some(examples.len() as u64)
        }
        EvalSource::Builtin if cfg.data == crate::defaults::BBC_NEWS => {
            let task = crate::data::load_task(&cfg.data, None, &EvalSource::Builtin, cfg.seed);
            task.ok().map(|t| t.eval.len() as u64)
        }
        _ => None,
    }
}

/// "2.8 MB", decimal units.
fn size(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0 => "0 B".into(),
        _ if b < 1e3 => format!("{bytes} B"),
        _ if b < 1e6 => format!("{:.0} kB", b / 1e3),
        _ if b < 1e9 => format!("{:.1} MB", b / 1e6),
        _ if b < 1e12 => format!("{:.1} GB", b / 1e9),
        _ => format!("{:.1} TB", b / 1e12),
    }
}

/// "2.8 MB a cell", or "24.6 to 106.5 MB a cell" when cells differ.
fn per_cell(values: impl Iterator<Item = u64> + Clone, what: &str, none: &str) -> String {
    let (lo, hi) = (values.clone().min(), values.max());
    match (lo, hi) {
        (_, None) | (_, Some(0)) => none.into(),
        (Some(lo), Some(hi)) if lo == hi => format!("{what} {} a cell", size(lo)),
        (Some(lo), Some(hi)) => format!("{what} {} to {} a cell", size(lo), size(hi)),
        _ => none.into(),
    }
}

impl fmt::Display for DiskEstimate {
    /// `disk: about 1.2 GB for 432 cells (artefacts 2.8 MB a cell; no checkpoints)`, with the
    /// cells whose model is not here counted apart.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known = self.known.len();
        write!(f, "disk: ")?;
        if known < self.cells {
            write!(
                f,
                "unknown for {} of {} cells (no config.json here or in the HF cache for {}: `heal model fetch` it to know)",
                self.cells - known,
                self.cells,
                self.unknown_models.join(", ")
            )?;
            if known == 0 {
                return Ok(());
            }
            write!(f, "; ")?;
        }
        let others = if known < self.cells { "the other " } else { "" };
        let cells = if known == 1 { "cell" } else { "cells" };
        write!(
            f,
            "about {} for {others}{known} {cells} ({}; {})",
            size(self.total()),
            per_cell(self.known.iter().map(|k| k.0), "artefacts", "no artefacts"),
            per_cell(
                self.known.iter().map(|k| k.1),
                "checkpoints",
                "no checkpoints"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bert_base_has_its_published_parameter_count() {
        let raw = serde_json::json!({"model_type": "bert", "vocab_size": 30522, "hidden_size": 768,
            "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
            "max_position_embeddings": 512});
        let c = EncoderConfig::from_json(raw, std::path::Path::new("config.json")).unwrap();
        let s = ModelShape::of(&c);
        // BertForSequenceClassification with two labels: 109,483,778 parameters, 201 tensors.
        assert_eq!((s.parameters, s.tensors), (109_483_778, 201));
        let e = DiskEstimate {
            cells: 3,
            known: vec![(2_800_000, 0), (2_800_000, 0)],
            unknown_models: vec!["org/big".into()],
        };
        assert_eq!(e.to_string(), "disk: unknown for 1 of 3 cells (no config.json here or in the HF cache for org/big: `heal model fetch` it to know); about 5.6 MB for the other 2 cells (artefacts 2.8 MB a cell; no checkpoints)");
    }
}
