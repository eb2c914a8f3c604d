//! Parquet files of one split converted to gzip JSON lines (`text`, optional `text_pair`,
//! integer `label`), and the class names the files carry.

use super::catalogue::HubDataset;
use crate::error::user;
use anyhow::Context;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, LargeStringArray, StringArray, StringViewArray};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use serde::Serialize;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// ClassLabel names of `column` from the `huggingface` metadata that the datasets library
/// writes into every parquet file (`{"info": {"features": {column: {"_type": "ClassLabel",
/// "names": [...]}}}}`), if the file has them.
pub(super) fn parquet_class_names(
    path: &Path,
    column: &str,
) -> anyhow::Result<Option<Vec<String>>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{}: not a readable parquet file", path.display()))?;
    let Some(meta) = builder.schema().metadata().get("huggingface") else {
        return Ok(None);
    };
    let Ok(meta) = serde_json::from_str::<serde_json::Value>(meta) else {
        return Ok(None);
    };
    let feature = &meta["info"]["features"][column];
    if feature["_type"] != "ClassLabel" {
        return Ok(None);
    }
    Ok(feature["names"].as_array().map(|names| {
        names
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect()
    }))
}

/// A text column of any of arrow's string layouts.
enum Texts<'a> {
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
}

impl<'a> Texts<'a> {
    fn new(col: &'a ArrayRef, name: &str, file: &str) -> anyhow::Result<Self> {
        match col.data_type() {
            DataType::Utf8 => Ok(Texts::Utf8(col.as_string::<i32>())),
            DataType::LargeUtf8 => Ok(Texts::Large(col.as_string::<i64>())),
            DataType::Utf8View => Ok(Texts::View(col.as_string_view())),
            other => Err(user(format!(
                "{file}: column {name:?} holds {other}, not text: the hub's layout differs from heal's table"
            ))),
        }
    }

    fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            Texts::Utf8(a) => a.is_valid(i).then(|| a.value(i)),
            Texts::Large(a) => a.is_valid(i).then(|| a.value(i)),
            Texts::View(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }
}

/// An integer label column as i64 values (None for nulls).
fn int_labels(col: &ArrayRef, name: &str, file: &str) -> anyhow::Result<Vec<Option<i64>>> {
    macro_rules! ints {
        ($t:ty) => {{
            let a = col.as_primitive::<$t>();
            (0..a.len())
                .map(|i| a.is_valid(i).then(|| a.value(i) as i64))
                .collect()
        }};
    }
    Ok(match col.data_type() {
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        other => {
            return Err(user(format!(
                "{file}: column {name:?} holds {other}, not integer class ids: the hub's layout differs from heal's table"
            )))
        }
    })
}

#[derive(Serialize)]
struct Line<'a> {
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text_pair: Option<&'a str>,
    label: i64,
}

/// Counts from converting one split.
pub(super) struct Converted {
    pub(super) rows: usize,
    pub(super) label_counts: Vec<usize>,
    pub(super) unlabelled: usize,
    pub(super) nulls: usize,
    pub(super) rows_per_file: Vec<usize>,
}

/// Reads the split's parquet files in order and writes `out` (gzip JSON lines).
pub(super) fn convert_split(
    d: &HubDataset,
    files: &[(PathBuf, String)],
    num_labels: usize,
    names_from: &str,
    out: &Path,
) -> anyhow::Result<Converted> {
    let writer =
        std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut gz =
        flate2::write::GzEncoder::new(BufWriter::new(writer), flate2::Compression::default());
    let mut c = Converted {
        rows: 0,
        label_counts: vec![0; num_labels],
        unlabelled: 0,
        nulls: 0,
        rows_per_file: Vec::new(),
    };
    let mut line = Vec::new();
    for (path, shown) in files {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| user(format!("{shown}: not a readable parquet file ({e})")))?;
        let schema = builder.schema().clone();
        let wanted: Vec<&str> = [Some(d.text), d.text_pair, Some(d.label)]
            .into_iter()
            .flatten()
            .collect();
        let mut roots = Vec::new();
        for col in &wanted {
            let idx = schema.index_of(col).map_err(|_| {
                let have: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                user(format!(
                    "{shown}: no column {col:?} (it has {}): the hub's layout differs from heal's table for {}",
                    have.join(", "),
                    d.name
                ))
            })?;
            roots.push(idx);
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(8192)
            .build()
            .map_err(|e| user(format!("{shown}: cannot read ({e})")))?;
        let mut file_rows = 0;
        for batch in reader {
            let batch = batch.map_err(|e| user(format!("{shown}: cannot read ({e})")))?;
            let column = |name: &str| {
                batch
                    .column_by_name(name)
                    .cloned()
                    .ok_or_else(|| user(format!("{shown}: no column {name:?}")))
            };
            let text_col = column(d.text)?;
            let texts = Texts::new(&text_col, d.text, shown)?;
            let pair_col = d.text_pair.map(column).transpose()?;
            let pairs = match (&pair_col, d.text_pair) {
                (Some(col), Some(name)) => Some(Texts::new(col, name, shown)?),
                _ => None,
            };
            let labels = int_labels(&column(d.label)?, d.label, shown)?;
            for (i, label) in labels.into_iter().enumerate() {
                let row = file_rows + i + 1;
                let text = texts.get(i);
                let pair = pairs.as_ref().map(|p| p.get(i));
                let (Some(text), Some(label)) = (text, label) else {
                    c.nulls += 1;
                    continue;
                };
                let pair = match pair {
                    Some(None) => {
                        c.nulls += 1;
                        continue;
                    }
                    Some(Some(p)) => Some(p),
                    None => None,
                };
                if label == -1 {
                    c.unlabelled += 1;
                    continue;
                }
                if label < 0 || label as usize >= num_labels {
                    return Err(user(format!(
                        "{shown}: row {row}: label {label} is outside the {num_labels} class names ({names_from}): heal's table for {} needs updating",
                        d.name
                    )));
                }
                c.label_counts[label as usize] += 1;
                c.rows += 1;
                line.clear();
                serde_json::to_writer(
                    &mut line,
                    &Line {
                        text,
                        text_pair: pair,
                        label,
                    },
                )?;
                line.push(b'\n');
                gz.write_all(&line)
                    .with_context(|| format!("writing {}", out.display()))?;
            }
            file_rows += batch.num_rows();
        }
        c.rows_per_file.push(file_rows);
    }
    let mut inner = gz
        .finish()
        .with_context(|| format!("writing {}", out.display()))?;
    inner
        .flush()
        .with_context(|| format!("writing {}", out.display()))?;
    let file = inner
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing {}: {}", out.display(), e.error()))?;
    file.sync_all()
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(c)
}
