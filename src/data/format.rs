//! Reading labelled examples from JSON lines (.jsonl, .jsonl.gz), CSV and TSV (optionally .gz).
//! Columns / keys: `text`, optional `text_pair`, `label` (an integer or a string).

use crate::error::user;
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

/// A label as written in the file, before it is mapped to a class index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RawLabel {
    Int(i64),
    Str(String),
}

/// One example as read, with the line it came from (1-based) for error messages.
#[derive(Debug, Clone)]
pub struct RawExample {
    pub text: String,
    pub text_pair: Option<String>,
    pub label: RawLabel,
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    JsonLines,
    Csv,
    Tsv,
}

fn format_of(path: &Path) -> anyhow::Result<Format> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".jsonl") || name.ends_with(".json") || name.ends_with(".ndjson") {
        Ok(Format::JsonLines)
    } else if name.ends_with(".csv") {
        Ok(Format::Csv)
    } else if name.ends_with(".tsv") {
        Ok(Format::Tsv)
    } else {
        Err(user(format!(
            "{}: unknown data format: use .jsonl, .jsonl.gz, .csv or .tsv (optionally .gz)",
            path.display()
        )))
    }
}

fn open(path: &Path) -> anyhow::Result<Box<dyn Read>> {
    let file = std::fs::File::open(path).map_err(|e| {
        user(format!(
            "{}: cannot open the data file ({e})",
            path.display()
        ))
    })?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let reader = crate::bom::skip(reader).map_err(|e| {
        user(format!(
            "{}: cannot read the data file ({e})",
            path.display()
        ))
    })?;
    Ok(Box::new(reader))
}

#[derive(Deserialize)]
struct JsonRow {
    text: Option<String>,
    #[serde(default)]
    text_pair: Option<String>,
    label: Option<serde_json::Value>,
}

fn label_from_json(v: &serde_json::Value) -> Option<RawLabel> {
    match v {
        serde_json::Value::Number(n) => n.as_i64().map(RawLabel::Int),
        serde_json::Value::String(s) => Some(RawLabel::Str(s.clone())),
        _ => None,
    }
}

fn label_from_field(s: &str) -> RawLabel {
    match s.trim().parse::<i64>() {
        Ok(i) => RawLabel::Int(i),
        Err(_) => RawLabel::Str(s.to_string()),
    }
}

/// Reads every example of a data file. An empty file, a malformed line or a missing field is
/// a user error naming the file and the line.
pub fn read_examples(path: &Path) -> anyhow::Result<Vec<RawExample>> {
    let format = format_of(path)?;
    let reader = open(path)?;
    let examples = match format {
        Format::JsonLines => read_jsonl(path, reader)?,
        Format::Csv => read_delimited(path, reader, b',')?,
        Format::Tsv => read_delimited(path, reader, b'\t')?,
    };
    if examples.is_empty() {
        return Err(user(format!(
            "{}: the data file holds no examples",
            path.display()
        )));
    }
    Ok(examples)
}

fn read_jsonl(path: &Path, reader: Box<dyn Read>) -> anyhow::Result<Vec<RawExample>> {
    let mut out = Vec::new();
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let n = i + 1;
        let line =
            line.map_err(|e| user(format!("{}: line {n}: cannot read ({e})", path.display())))?;
        if line.trim().is_empty() {
            continue;
        }
        let row: JsonRow = serde_json::from_str(&line).map_err(|e| {
            user(format!(
                "{}: line {n}: not a JSON object with text and label ({e})",
                path.display()
            ))
        })?;
        let text = row
            .text
            .ok_or_else(|| user(format!("{}: line {n}: no \"text\" field", path.display())))?;
        let label = row
            .label
            .as_ref()
            .ok_or_else(|| user(format!("{}: line {n}: no \"label\" field", path.display())))?;
        let label = label_from_json(label).ok_or_else(|| {
            user(format!(
                "{}: line {n}: \"label\" must be an integer or a string",
                path.display()
            ))
        })?;
        out.push(RawExample {
            text,
            text_pair: row.text_pair,
            label,
            line: n,
        });
    }
    Ok(out)
}

fn read_delimited(
    path: &Path,
    reader: Box<dyn Read>,
    delimiter: u8,
) -> anyhow::Result<Vec<RawExample>> {
    let runs = Rc::new(RefCell::new(VecDeque::new()));
    let indexed = LineEnds {
        inner: reader,
        offset: 0,
        run: None,
        runs: Rc::clone(&runs),
    };
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(false)
        .from_reader(indexed);
    // The line a row starts on. The csv crate gives where the previous row's terminator ended:
    // after a CRLF that is its LF, after blank lines the first of them, so every row of a
    // Windows file was one line early in messages and example ids.
    let line_of = |p: &csv::Position| {
        let (b, mut runs) = (p.byte(), runs.borrow_mut());
        while runs.front().is_some_and(|r: &LineEndRun| r.end <= b) {
            runs.pop_front();
        }
        let skipped = runs
            .front()
            .filter(|r| r.start <= b)
            .map_or(0, |r| r.lfs.iter().filter(|&&lf| lf >= b).count());
        p.line() as usize + skipped
    };
    let headers = csv
        .headers()
        .map_err(|e| {
            user(format!(
                "{}: cannot read the header row ({e})",
                path.display()
            ))
        })?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.trim() == name);
    let text_col = column("text").ok_or_else(|| {
        user(format!(
            "{}: the header row has no \"text\" column",
            path.display()
        ))
    })?;
    let label_col = column("label").ok_or_else(|| {
        user(format!(
            "{}: the header row has no \"label\" column",
            path.display()
        ))
    })?;
    let pair_col = column("text_pair");
    let mut out = Vec::new();
    for record in csv.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(&line_of).unwrap_or(0);
            user(format!(
                "{}: line {line}: malformed row ({e})",
                path.display()
            ))
        })?;
        let line = record.position().map(&line_of).unwrap_or(0);
        let field = |c: usize| record.get(c).unwrap_or("").to_string();
        out.push(RawExample {
            text: field(text_col),
            text_pair: pair_col.map(field).filter(|s| !s.is_empty()),
            label: label_from_field(&field(label_col)),
            line,
        });
    }
    Ok(out)
}

/// A run of line-end bytes (CR, LF) in a delimited file: its byte range and its LFs.
struct LineEndRun {
    start: u64,
    end: u64,
    lfs: Vec<u64>,
}

/// A reader that notes every run of line ends read through it, for `read_delimited`'s
/// `line_of`, which drops the runs behind the row it asks about (memory stays at the csv
/// reader's read-ahead).
struct LineEnds<R> {
    inner: R,
    offset: u64,
    run: Option<LineEndRun>,
    runs: Rc<RefCell<VecDeque<LineEndRun>>>,
}

impl<R: Read> Read for LineEnds<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if b == b'\r' || b == b'\n' {
                let at = self.offset;
                let run = self.run.get_or_insert_with(|| LineEndRun {
                    start: at,
                    end: at,
                    lfs: Vec::new(),
                });
                if b == b'\n' {
                    run.lfs.push(at);
                }
            } else if let Some(mut run) = self.run.take() {
                run.end = self.offset;
                self.runs.borrow_mut().push_back(run);
            }
            self.offset += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_a_crlf_file_name_their_own_lines() {
        // Found by tests/fuzz_data.rs: with CRLF line ends each row was reported one line
        // early (the first row on the header's line 1), and a row after a blank line on it.
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            (
                "a.csv",
                "text,label\r\nhello,0\r\n\"two\r\nlines\",1\r\nx,2\r\n",
            ),
            ("b.csv", "text,label\nhello,0\n\"two\nlines\",1\nx,2\n"),
            ("c.tsv", "text\tlabel\r\nhello\t0\n\r\nx\t1\r\n"),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let lines: Vec<usize> = read_examples(&path)
                .unwrap()
                .iter()
                .map(|e| e.line)
                .collect();
            let expected = if name == "c.tsv" {
                vec![2, 4]
            } else {
                vec![2, 3, 5]
            };
            assert_eq!(lines, expected, "{name}");
        }
    }
}
