//! Property tests of the safetensors readers (issue 17, item 4): a checkpoint's
//! model.safetensors (read_raw_tensors, what every --model load goes through),
//! RUN/analysis/vectors.safetensors (AnalysisVectors::read, what `heal report` reads) and an
//! embeddings folder's embeddings.safetensors (EmbeddingSet::read: heal drift, tsne). Files are
//! built field by field (an 8-byte header length, then the JSON header: dtypes, shapes and
//! byte ranges, the metadata), each field right or wrong: lengths past the file or past 2^63,
//! shapes with zero, huge or overflowing dimensions, unknown or mismatched dtypes, offsets out
//! of range, truncated data; and valid files written by heal's own writers, with bytes edited.
//! No file panics a reader; every refusal is a one-line user error.

mod fuzz_common;

use fuzz_common::{accepted, config, mutated_bytes};
use heal::model::checkpoint::{read_raw_tensors, write_named_safetensors_with, CheckpointFiles};
use heal::run_dir::analysis::AnalysisVectors;
use heal::run_dir::embeddings::EmbeddingSet;
use heal::train::config::EmbeddingStage;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::Path;
use tch::Tensor;

const DTYPES: &[(&str, u64)] = &[
    ("F32", 4),
    ("F16", 2),
    ("BF16", 2),
    ("F64", 8),
    ("I64", 8),
    ("I32", 4),
    ("I16", 2),
    ("I8", 1),
    ("U8", 1),
    ("BOOL", 1),
    ("U16", 2),
    ("U32", 4),
    ("U64", 8),
    ("F8_E4M3", 1),
    ("f32", 4),
    ("", 1),
];
const DIMS: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    7,
    1 << 31,
    1 << 32,
    (1 << 62) + 1,
    1 << 63,
    u64::MAX,
];
/// The data bytes written at most: larger tensors get their offsets but not their bytes.
const MAX_DATA: u64 = 4096;

/// Tensor names each reader looks for, and some it skips.
const NAMES: &[&str] = &[
    "labels",
    "examples",
    "best.layer.0",
    "best.layer.2",
    "corrupted.layer.2",
    "pretrained.layer.2",
    "best.layer.x",
    "layer_0",
    "layer_1",
    "layer_12",
    "layer_",
    "bert.encoder.layer.0.attention.self.query.weight",
    "",
    "__metadata__",
];
const META: &[(&str, &[&str])] = &[
    ("format", &["heal-analysis-vectors", "other", ""]),
    (
        "schema_version",
        &["1", "0", "2", "-1", "99999999999999999999", "x"],
    ),
    (
        "sample_seed",
        &["0", "18446744073709551615", "18446744073709551616", "nan"],
    ),
    ("eval_examples", &["3", "0", "18446744073709551615", "-3"]),
    ("pooling", &["cls", "mean", "max", "\"cls\""]),
    (
        "ids",
        &[r#"["a","b","c"]"#, "[]", r#"["a"]"#, "[1,2]", "{", r#""a""#],
    ),
    (
        "label_names",
        &[r#"["neg","pos"]"#, "[]", "null", r#"["é"]"#],
    ),
];

#[derive(Debug, Clone)]
struct Entry {
    name: usize,
    dtype: usize,
    shape: Vec<u64>,
    /// Offsets as the data would lie (None), or these.
    offsets: Option<(u64, u64)>,
}

#[derive(Debug, Clone)]
enum Length {
    Right,
    Off(i64),
    Raw(u64),
}

fn entry() -> impl Strategy<Value = Entry> {
    let dim = prop_oneof![4 => 0..5u64, 1 => prop::sample::select(DIMS)];
    (
        0..NAMES.len(),
        0..DTYPES.len(),
        prop::collection::vec(dim, 0..4),
        prop::option::weighted(0.15, (any::<u64>(), prop_oneof![0..64u64, any::<u64>()])),
    )
        .prop_map(|(name, dtype, shape, offsets)| Entry {
            name,
            dtype,
            shape,
            offsets,
        })
}

/// A safetensors file from its parts. The data holds real bytes (a counter), so that the
/// readers' conversions see varied values.
fn build(entries: &[Entry], metadata: &[(usize, usize)], length: &Length, cut: i64) -> Vec<u8> {
    let mut header = Map::new();
    if !metadata.is_empty() {
        let meta: Map<String, Value> = metadata
            .iter()
            .map(|&(k, v)| {
                let (key, choices) = META[k];
                (key.to_string(), json!(choices[v % choices.len()]))
            })
            .collect();
        header.insert("__metadata__".into(), Value::Object(meta));
    }
    let mut offset = 0u64;
    for e in entries {
        let (dtype, size) = DTYPES[e.dtype];
        let bytes = e
            .shape
            .iter()
            .try_fold(size, |a, &d| a.checked_mul(d))
            .unwrap_or(u64::MAX);
        let (start, end) = e.offsets.unwrap_or((offset, offset.saturating_add(bytes)));
        offset = end;
        header.insert(
            NAMES[e.name].to_string(),
            json!({"dtype": dtype, "shape": e.shape, "data_offsets": [start, end]}),
        );
    }
    let mut text = Value::Object(header).to_string();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let n = text.len() as u64;
    let field = match *length {
        Length::Right => n,
        Length::Off(d) => n.wrapping_add(d as u64),
        Length::Raw(v) => v,
    };
    let data = offset.min(MAX_DATA) as usize;
    let mut out = field.to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend((0..data).map(|i| (i % 251) as u8));
    let keep = (out.len() as i64 + cut.min(0)).max(0) as usize;
    out.truncate(keep);
    out
}

fn built_file() -> impl Strategy<Value = Vec<u8>> {
    let length = prop_oneof![
        8 => Just(Length::Right),
        1 => (-9i64..9).prop_map(Length::Off),
        1 => prop::sample::select(&[0u64, 1, 7, 8, 1 << 31, 100_000_001, 1 << 63, u64::MAX][..]).prop_map(Length::Raw),
    ];
    let cut = prop_oneof![6 => Just(0i64), 1 => -64i64..0];
    let metadata = prop::collection::vec((0..META.len(), 0..8usize), 0..8);
    (prop::collection::vec(entry(), 0..6), metadata, length, cut)
        .prop_map(|(entries, metadata, length, cut)| build(&entries, &metadata, &length, cut))
}

fn failed(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// Valid files written by heal's writers, as seeds for byte edits: a vectors file, an
/// embeddings file and a checkpoint of three dtypes.
fn written_seeds() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let vectors = AnalysisVectors {
        layers: [
            (EmbeddingStage::Best, 0),
            (EmbeddingStage::Best, 2),
            (EmbeddingStage::Corrupted, 2),
        ]
        .into_iter()
        .map(|k| {
            (
                k,
                ndarray::Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f32 / 8.0),
            )
        })
        .collect(),
        labels: vec![0, 1, 1],
        examples: vec![0, 4, 9],
        sample_seed: 0,
        eval_examples: 10,
        pooling: Default::default(),
    };
    let vectors_path = dir.path().join("vectors.safetensors");
    vectors.write(&vectors_path).expect("vectors written");
    let embeddings_path = dir.path().join("embeddings.safetensors");
    let named = vec![
        ("labels".to_string(), Tensor::from_slice(&[0i64, 1, 0])),
        (
            "layer_0".to_string(),
            Tensor::from_slice(&[0.5f32; 6]).reshape([3, 2]),
        ),
        (
            "layer_2".to_string(),
            Tensor::from_slice(&[1.5f32; 6]).reshape([3, 2]),
        ),
    ];
    let meta = HashMap::from([
        ("ids".to_string(), r#"["a","b","c"]"#.to_string()),
        ("label_names".to_string(), r#"["neg","pos"]"#.to_string()),
    ]);
    write_named_safetensors_with(&named, &embeddings_path, meta).expect("embeddings written");
    let model_path = dir.path().join("model.safetensors");
    let named = vec![
        (
            "w".to_string(),
            Tensor::from_slice(&[1.0f32, -2.0, 3.0, 4.0]).reshape([2, 2]),
        ),
        (
            "h".to_string(),
            Tensor::from_slice(&[1.0f32, 2.0]).to_kind(tch::Kind::BFloat16),
        ),
        ("ids".to_string(), Tensor::from_slice(&[7i64])),
    ];
    write_named_safetensors_with(&named, &model_path, HashMap::new()).expect("model written");
    [vectors_path, embeddings_path, model_path]
        .iter()
        .map(|p| std::fs::read(p).expect("seed read"))
        .collect()
}

fn any_file() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![3 => built_file(), 2 => mutated_bytes(written_seeds(), 6)].boxed()
}

/// Runs all three readers on one file.
fn read_all(dir: &Path, bytes: &[u8]) -> Result<(), TestCaseError> {
    let shown = format!(
        "{} bytes, header {:?}",
        bytes.len(),
        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
    );

    let vectors = dir.join("vectors.safetensors");
    std::fs::write(&vectors, bytes).map_err(failed)?;
    if let Some(v) = accepted(&shown, AnalysisVectors::read(&vectors))? {
        prop_assert_eq!(v.labels.len(), v.examples.len());
        prop_assert!(v.layers.values().all(|a| a.nrows() == v.labels.len()));
    }

    let folder = dir.join("embeddings");
    std::fs::create_dir_all(&folder).map_err(failed)?;
    std::fs::write(folder.join("embeddings.safetensors"), bytes).map_err(failed)?;
    if let Some(set) = accepted(&shown, EmbeddingSet::read(&folder, EmbeddingStage::Best))? {
        prop_assert!(!set.layers.is_empty());
        prop_assert!(set
            .layers
            .iter()
            .all(|(_, a)| a.nrows() == set.labels.len()));
        let _ = set.last_layer();
    }

    let model = dir.join("model");
    std::fs::create_dir_all(&model).map_err(failed)?;
    std::fs::write(model.join("model.safetensors"), bytes).map_err(failed)?;
    let files = CheckpointFiles {
        dir: model.clone(),
        config: model.join("config.json"),
        weights: vec![model.join("model.safetensors")],
    };
    if let Some(tensors) = accepted(&shown, read_raw_tensors(&files))? {
        for (name, t) in &tensors {
            prop_assert!(t.size().iter().all(|&d| d >= 0), "{name}: {:?}", t.size());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn safetensors_files_read_or_are_user_errors(bytes in any_file()) {
        let dir = fuzz_common::scratch()?;
        read_all(dir.path(), &bytes)?;
    }
}
