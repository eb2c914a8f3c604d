//! Token ids agree with HF's tokenizers: tokenizer.json (minilm-l6, tiny-roberta) and the
//! WordPiece tokenizer built from vocab.txt alone (tiny-bert, tiny-distilbert, and minilm-l6's
//! vocab.txt without its tokenizer.json).

mod common;

use common::fixtures;
use heal::model::tokenizer::TextEncoder;
use std::path::Path;

#[derive(serde::Deserialize)]
struct Reference {
    texts: Vec<String>,
    ids: Vec<Vec<i64>>,
    pairs: Vec<(String, String)>,
    pair_ids: Vec<Vec<i64>>,
    pair_type_ids: Vec<Option<Vec<i64>>>,
    truncated_ids: Vec<Vec<i64>>,
}

fn reference(name: &str) -> Reference {
    let text = std::fs::read_to_string(fixtures().join("golden").join("tokens.json")).unwrap();
    let mut all: std::collections::HashMap<String, Reference> =
        serde_json::from_str(&text).unwrap();
    all.remove(name).unwrap()
}

fn check(dir: &Path, name: &str, expected_source: &str) {
    let r = reference(name);
    let enc = TextEncoder::from_dir(dir, 32).unwrap();
    assert_eq!(enc.source, expected_source);
    let singles: Vec<(String, Option<String>)> =
        r.texts.iter().map(|t| (t.clone(), None)).collect();
    let got: Vec<Vec<i64>> = enc
        .encode_batch(&singles)
        .unwrap()
        .into_iter()
        .map(|e| e.ids)
        .collect();
    assert_eq!(got, r.ids, "{name}: single texts");
    let pairs: Vec<(String, Option<String>)> = r
        .pairs
        .iter()
        .map(|(a, b)| (a.clone(), Some(b.clone())))
        .collect();
    let got = enc.encode_batch(&pairs).unwrap();
    assert_eq!(
        got.iter().map(|e| e.ids.clone()).collect::<Vec<_>>(),
        r.pair_ids,
        "{name}: pairs"
    );
    if let Some(Some(types)) = r.pair_type_ids.first() {
        assert_eq!(&got[0].type_ids, types, "{name}: pair token types");
    }
    let short = TextEncoder::from_dir(dir, 8).unwrap();
    let got = short.encode_batch(&[(r.texts[2].clone(), None)]).unwrap();
    assert_eq!(
        vec![got[0].ids.clone()],
        r.truncated_ids,
        "{name}: truncation to 8"
    );
}

#[test]
fn wordpiece_from_vocab_txt_matches_hf() {
    check(&fixtures().join("tiny-bert"), "tiny-bert", "vocab.txt");
    check(
        &fixtures().join("tiny-distilbert"),
        "tiny-distilbert",
        "vocab.txt",
    );
}

#[test]
fn byte_level_bpe_tokenizer_json_matches_hf() {
    check(
        &fixtures().join("tiny-roberta"),
        "tiny-roberta",
        "tokenizer.json",
    );
}

#[test]
fn minilm_tokenizer_json_and_vocab_txt_both_match_hf() {
    let dir = heal::defaults::minilm_l6_dir().unwrap();
    check(&dir, "minilm-l6", "tokenizer.json");
    let vocab_only = tempfile::tempdir().unwrap();
    for f in ["vocab.txt", "tokenizer_config.json"] {
        std::fs::copy(dir.join(f), vocab_only.path().join(f)).unwrap();
    }
    check(vocab_only.path(), "minilm-l6", "vocab.txt");
}
