//! Property tests of the data readers (issue 17, item 4): JSON lines, CSV and TSV (plain and
//! gzip) through `read_examples`, and labels.json with the label map built from them. No file
//! panics the reader; every refusal is a one-line user error; an accepted JSON-lines file has
//! one example per non-blank line, in order; every training label maps to a class index in
//! range, and for labels of one kind to the class of that very name.

mod fuzz_common;

use fuzz_common::{accepted, config, mutated, mutated_bytes};
use heal::data::format::{read_examples, RawExample, RawLabel};
use heal::data::labels::LabelMap;
use proptest::prelude::*;
use std::io::Write;
use std::path::Path;

const JSON_LINES: &[&str] = &[
    r#"{"text": "high strong fell shares", "label": "sport"}"#,
    r#"{"text": "team fell low", "label": 0}"#,
    r#"{"text": "a", "text_pair": "b", "label": 3}"#,
    r#"{"text": "é 日本 😀", "label": "pos", "extra": [1, 2]}"#,
    r#"{"label": -9223372036854775808, "text": ""}"#,
    r#"{"text": "x", "label": 1.5}"#,
    "",
    "   ",
];
const CSV_FILES: &[&str] = &[
    "text,label\nhello world,0\n\"a, quoted\nline\",1\n",
    "label,text,text_pair\npos,first,second\nneg,third,\n",
    "text,label\n\"unterminated,0\n",
    "id,text,label\n1,x,sport\n2,y,business\n",
];
const LABELS_JSON: &[&str] = &[
    r#"["business", "sport"]"#,
    r#"["0", "1", "2"]"#,
    r#"["neg", "pos", "neg"]"#,
    r#"[]"#,
    r#"{"0": "neg"}"#,
    r#"["a", 1, null]"#,
];

fn failed(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), TestCaseError> {
    std::fs::write(path, bytes).map_err(failed)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// JSON lines: each line a mutated seed, joined with \n or \r\n; sometimes the whole file
/// as bytes mutated again (invalid UTF-8, cut multi-byte characters).
fn jsonl_file() -> BoxedStrategy<Vec<u8>> {
    let lines = prop::collection::vec(mutated(JSON_LINES, 3), 1..12);
    let text = (lines, any::<bool>())
        .prop_map(|(l, crlf)| l.join(if crlf { "\r\n" } else { "\n" }).into_bytes());
    let seeds: Vec<Vec<u8>> = JSON_LINES
        .iter()
        .map(|l| format!("{l}\n{l}\n").into_bytes())
        .collect();
    prop_oneof![3 => text, 1 => mutated_bytes(seeds, 6)].boxed()
}

fn delimited_file(tab: bool) -> BoxedStrategy<Vec<u8>> {
    let seeds: Vec<Vec<u8>> = CSV_FILES
        .iter()
        .map(|f| {
            if tab {
                f.replace(',', "\t")
            } else {
                f.to_string()
            }
            .into_bytes()
        })
        .collect();
    mutated_bytes(seeds, 8)
}

/// What the reader keeps its promises to: examples in line order, line numbers past the
/// header; for JSON lines one example per non-blank line.
fn check_examples(file: &[u8], jsonl: bool, examples: &[RawExample]) -> Result<(), TestCaseError> {
    prop_assert!(!examples.is_empty(), "an accepted file has examples");
    // Non-decreasing: a lone CR ends a row in CSV, so two rows can share a line.
    prop_assert!(
        examples.windows(2).all(|w| w[0].line <= w[1].line),
        "lines out of order"
    );
    if jsonl {
        let text = String::from_utf8_lossy(file);
        // The reader skips a byte-order mark at the start of the file; it is not a character
        // of line 1 (nor White_Space to trim), so a BOM alone leaves line 1 blank.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let lines: Vec<usize> = text
            .split('\n')
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, _)| i + 1)
            .collect();
        let got: Vec<usize> = examples.iter().map(|e| e.line).collect();
        prop_assert_eq!(got, lines);
    } else {
        // A header ended by a lone CR (the csv crate's record terminator too) shares line 1
        // with the first row: lines count newlines.
        let header_end = file.iter().position(|&b| b == b'\n' || b == b'\r');
        let lone_cr =
            matches!(header_end, Some(i) if file[i] == b'\r' && file.get(i + 1) != Some(&b'\n'));
        let first = if lone_cr { 1 } else { 2 };
        prop_assert!(
            examples.iter().all(|e| e.line >= first),
            "a row on the header's line"
        );
    }
    Ok(())
}

/// The label map of a training file: every training label gets an index in range; with one
/// kind of label (all integers or all strings), the index names that very label.
fn check_label_map(dir: &Path, examples: &[RawExample]) -> Result<(), TestCaseError> {
    let data = dir.join("train.jsonl");
    let Some(map) = accepted(
        &"training labels",
        LabelMap::for_training_file(&data, examples),
    )?
    else {
        return Ok(());
    };
    let one_kind = examples.iter().all(|e| matches!(e.label, RawLabel::Int(_)))
        || examples.iter().all(|e| matches!(e.label, RawLabel::Str(_)));
    for e in examples {
        let index = accepted(&e.label, map.index_of(e, &data))?;
        prop_assert!(
            index.is_some(),
            "training label {:?} has no class in {:?}",
            e.label,
            map.names
        );
        let index = index.unwrap_or(-1);
        prop_assert!(
            index >= 0 && (index as usize) < map.len(),
            "{index} of {}",
            map.len()
        );
        if one_kind {
            let name = match &e.label {
                RawLabel::Int(i) => i.to_string(),
                RawLabel::Str(s) => s.clone(),
            };
            prop_assert_eq!(&map.names[index as usize], &name);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn json_lines_files_read_or_are_user_errors(file in jsonl_file(), gz in any::<bool>()) {
        let dir = fuzz_common::scratch()?;
        let (path, bytes) = if gz {
            (dir.path().join("train.jsonl.gz"), gzip(&file))
        } else {
            (dir.path().join("train.jsonl"), file.clone())
        };
        write(&path, &bytes)?;
        if let Some(examples) = accepted(&String::from_utf8_lossy(&file), read_examples(&path))? {
            check_examples(&file, true, &examples)?;
            check_label_map(dir.path(), &examples)?;
        }
    }

    #[test]
    fn csv_and_tsv_files_read_or_are_user_errors(
        (tab, file) in any::<bool>().prop_flat_map(|tab| (Just(tab), delimited_file(tab)))
    ) {
        let dir = fuzz_common::scratch()?;
        let path = dir.path().join(if tab { "train.tsv" } else { "train.csv" });
        write(&path, &file)?;
        if let Some(examples) = accepted(&String::from_utf8_lossy(&file), read_examples(&path))? {
            check_examples(&file, false, &examples)?;
            check_label_map(dir.path(), &examples)?;
        }
    }

    #[test]
    fn truncated_gzip_is_a_user_error(file in jsonl_file(), cut in any::<prop::sample::Index>()) {
        let dir = fuzz_common::scratch()?;
        let path = dir.path().join("train.jsonl.gz");
        let bytes = gzip(&file);
        write(&path, &bytes[..cut.index(bytes.len())])?;
        accepted(&cut, read_examples(&path))?;
    }

    #[test]
    fn labels_json_reads_or_is_a_user_error(text in mutated(LABELS_JSON, 6), lines in jsonl_file()) {
        let dir = fuzz_common::scratch()?;
        let labels = dir.path().join("labels.json");
        write(&labels, text.as_bytes())?;
        let Some(map) = accepted(&text, LabelMap::from_labels_json(&labels))? else {
            return Ok(());
        };
        prop_assert!(!map.is_empty());
        // Beside a data file, the same map; each example's label in range or a user error.
        let data = dir.path().join("train.jsonl");
        write(&data, &lines)?;
        let Some(examples) = accepted(&"data", read_examples(&data))? else {
            return Ok(());
        };
        let Some(beside) = accepted(&text, LabelMap::for_training_file(&data, &examples))? else {
            return Ok(());
        };
        prop_assert_eq!(&beside.names, &map.names);
        for e in &examples {
            if let Some(i) = accepted(&e.label, beside.index_of(e, &data))? {
                prop_assert!(i >= 0 && (i as usize) < beside.len());
            }
        }
    }
}
