//! Property tests of config.json (issue 17, item 4): `EncoderConfig::from_json` on the tiny
//! fixtures' configs with fields set to values of every JSON type and at every numeric edge,
//! removed or renamed, and `EncoderConfig::from_file` on the files' bytes edited. No config
//! panics the reader; every refusal is a one-line user error naming the file; an accepted
//! config answers the questions the loader and the disk estimate ask of it.

mod fuzz_common;

use fuzz_common::{accepted, config, mutated_bytes};
use heal::model::config::EncoderConfig;
use heal::sweep::ModelShape;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::path::Path;

const CONFIGS: &[&str] = &[
    include_str!("fixtures/tiny-bert/config.json"),
    include_str!("fixtures/tiny-distilbert/config.json"),
    include_str!("fixtures/tiny-roberta/config.json"),
];

/// Every field a family reads, and a few it does not.
const FIELDS: &[&str] = &[
    "model_type",
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "classifier_dropout",
    "max_position_embeddings",
    "type_vocab_size",
    "layer_norm_eps",
    "pad_token_id",
    "initializer_range",
    "position_embedding_type",
    "dim",
    "n_layers",
    "n_heads",
    "hidden_dim",
    "activation",
    "dropout",
    "attention_dropout",
    "seq_classif_dropout",
    "sinusoidal_pos_embds",
    "id2label",
    "label2id",
    "torch_dtype",
    "dtype",
    "architectures",
    "",
];

fn values() -> Vec<Value> {
    vec![
        json!(0),
        json!(1),
        json!(-1),
        json!(2),
        json!(3),
        json!(32),
        json!(37),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1u64 << 63),
        json!(1e300),
        json!(-0.0),
        json!(0.5),
        json!(1.5),
        json!(1e-12),
        json!(f64::MAX),
        json!(f64::MIN_POSITIVE),
        json!(null),
        json!(true),
        json!(false),
        json!(""),
        json!("gelu"),
        json!("gelu_new"),
        json!("relu"),
        json!("swish"),
        json!("absolute"),
        json!("relative_key"),
        json!("bert"),
        json!("distilbert"),
        json!("roberta"),
        json!("gpt2"),
        json!("BERT"),
        json!(" bert"),
        json!("float16"),
        json!("bfloat16"),
        json!("float32"),
        json!("int8"),
        json!("\u{feff}bert"),
        json!([]),
        json!([1, 2]),
        json!({}),
        json!({"0": "a"}),
        json!("12"),
        json!(12.0),
        json!(1e20),
    ]
}

#[derive(Debug, Clone)]
enum Change {
    Set(usize, usize),
    Remove(usize),
    Rename(usize, usize),
}

fn change() -> impl Strategy<Value = Change> {
    let (f, v) = (0..FIELDS.len(), 0..values().len());
    prop_oneof![
        5 => (f.clone(), v).prop_map(|(f, v)| Change::Set(f, v)),
        2 => f.clone().prop_map(Change::Remove),
        1 => (f.clone(), f).prop_map(|(a, b)| Change::Rename(a, b)),
    ]
}

fn edited_config() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(CONFIGS),
        prop::collection::vec(change(), 0..6),
        prop_oneof![Just(None), (0..FIELDS.len(), any::<i64>()).prop_map(Some)],
    )
        .prop_map(|(text, changes, number)| {
            let mut value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            let vals = values();
            if let Some(map) = value.as_object_mut() {
                for c in changes {
                    match c {
                        Change::Set(f, v) => {
                            map.insert(FIELDS[f].to_string(), vals[v].clone());
                        }
                        Change::Remove(f) => {
                            map.remove(FIELDS[f]);
                        }
                        Change::Rename(a, b) => {
                            if let Some(v) = map.remove(FIELDS[a]) {
                                map.insert(FIELDS[b].to_string(), v);
                            }
                        }
                    }
                }
                if let Some((f, n)) = number {
                    map.insert(FIELDS[f].to_string(), json!(n));
                }
            }
            value
        })
}

/// What the loader, the tokeniser and `heal sweep --plan` ask of an accepted config.
fn use_config(c: &EncoderConfig) {
    let _ = (c.max_tokens(), c.uses_token_types(), c.family.prefix());
    let shape = ModelShape::of(c);
    let _ = (shape.artefact_bytes(2_000), shape.checkpoint_bytes());
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn edited_configs_load_or_are_user_errors(value in edited_config()) {
        let path = Path::new("model/config.json");
        if let Some(c) = accepted(&value, EncoderConfig::from_json(value.clone(), path))? {
            use_config(&c);
            prop_assert_eq!(&c.raw, &value, "the raw JSON is kept for saving");
        }
    }

    #[test]
    fn config_files_load_or_are_user_errors(
        bytes in mutated_bytes(CONFIGS.iter().map(|c| c.as_bytes().to_vec()).collect(), 6)
    ) {
        let dir = fuzz_common::scratch()?;
        let path = dir.path().join("config.json");
        std::fs::write(&path, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let result = EncoderConfig::from_file(&path);
        if let Err(e) = &result {
            let shown = e.to_string();
            prop_assert!(shown.contains("config.json"), "the error names no file: {shown}");
        }
        if let Some(c) = accepted(&String::from_utf8_lossy(&bytes), result)? {
            use_config(&c);
        }
    }
}
