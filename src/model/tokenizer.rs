//! Text to token ids: tokenizer.json when the checkpoint has one, otherwise a WordPiece
//! tokenizer built from vocab.txt (lower-casing as tokenizer_config.json / config.json say).

use crate::error::user;
use std::path::Path;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{
    EncodeInput, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

/// One tokenised example: ids, token types, and nothing padded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub ids: Vec<i64>,
    pub type_ids: Vec<i64>,
}

/// A tokenizer set to truncate at `max_len` and never pad.
pub struct TextEncoder {
    tokenizer: Tokenizer,
    /// Which file it came from: "tokenizer.json" or "vocab.txt".
    pub source: &'static str,
    pub pad_id: i64,
    /// The most tokens an example is cut to, special tokens included.
    pub max_len: usize,
}

impl TextEncoder {
    pub fn from_dir(dir: &Path, max_len: usize) -> anyhow::Result<Self> {
        let json = dir.join("tokenizer.json");
        let vocab = dir.join("vocab.txt");
        let (mut tokenizer, source) = if json.is_file() {
            let t = Tokenizer::from_file(&json).map_err(|e| {
                user(format!(
                    "{}: cannot load the tokenizer ({e})",
                    json.display()
                ))
            })?;
            (t, "tokenizer.json")
        } else if vocab.is_file() {
            (wordpiece_from_vocab(dir, &vocab)?, "vocab.txt")
        } else {
            return Err(user(format!(
                "{}: no tokenizer files: expected tokenizer.json or vocab.txt in the model folder",
                dir.display()
            )));
        };
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| anyhow::anyhow!("tokenizer truncation: {e}"))?;
        let pad_id = ["[PAD]", "<pad>"]
            .iter()
            .find_map(|t| tokenizer.token_to_id(t))
            .unwrap_or(0) as i64;
        Ok(TextEncoder {
            tokenizer,
            source,
            pad_id,
            max_len,
        })
    }

    /// Tokenises texts (or text pairs) with the model's special tokens.
    pub fn encode_batch(&self, texts: &[(String, Option<String>)]) -> anyhow::Result<Vec<Encoded>> {
        let inputs: Vec<EncodeInput> = texts
            .iter()
            .map(|(a, b)| match b {
                Some(b) => EncodeInput::Dual(a.as_str().into(), b.as_str().into()),
                None => EncodeInput::Single(a.as_str().into()),
            })
            .collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
        Ok(encodings
            .into_iter()
            .map(|e| Encoded {
                ids: e.get_ids().iter().map(|&i| i as i64).collect(),
                type_ids: e.get_type_ids().iter().map(|&i| i as i64).collect(),
            })
            .collect())
    }
}

fn lowercase_setting(dir: &Path) -> bool {
    let read = |name: &str| -> Option<serde_json::Value> {
        serde_json::from_str(crate::bom::strip(
            &std::fs::read_to_string(dir.join(name)).ok()?,
        ))
        .ok()
    };
    for name in ["tokenizer_config.json", "config.json"] {
        if let Some(v) = read(name).and_then(|j| j.get("do_lower_case").and_then(|v| v.as_bool())) {
            return v;
        }
    }
    // HF's BertTokenizer lower-cases unless told otherwise.
    true
}

fn wordpiece_from_vocab(dir: &Path, vocab: &Path) -> anyhow::Result<Tokenizer> {
    let path = vocab.to_string_lossy().into_owned();
    let model = WordPiece::from_file(&path)
        .unk_token("[UNK]".into())
        .build()
        .map_err(|e| {
            user(format!(
                "{}: cannot read the vocabulary ({e})",
                vocab.display()
            ))
        })?;
    let id = |tok: &str| {
        model_token_id(&model, tok).ok_or_else(|| {
            user(format!(
                "{}: the vocabulary has no {tok} token",
                vocab.display()
            ))
        })
    };
    let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_normalizer(Some(BertNormalizer::new(
        true,
        true,
        None,
        lowercase_setting(dir),
    )));
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_post_processor(Some(BertProcessing::new(
        ("[SEP]".into(), sep),
        ("[CLS]".into(), cls),
    )));
    Ok(tokenizer)
}

fn model_token_id(model: &WordPiece, token: &str) -> Option<u32> {
    use tokenizers::Model;
    model.token_to_id(token)
}
