//! Label names and the mapping from labels as written to class indices.

use super::format::{RawExample, RawLabel};
use crate::error::user;
use std::path::{Path, PathBuf};

/// Class names in index order, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LabelMap {
    pub names: Vec<String>,
    /// "labels.json at PATH", "sorted set of training labels" or the embedded dataset's name.
    pub source: String,
    /// Integer labels as written, in index order, when they were not already 0..K-1 indices
    /// into a labels.json.
    #[serde(skip)]
    int_values: Option<Vec<i64>>,
    /// The names were the training file's string labels: an integer label elsewhere is looked
    /// up as a name, never taken as an index.
    #[serde(skip)]
    ints_by_name: bool,
}

impl LabelMap {
    pub fn from_names(names: Vec<String>, source: impl Into<String>) -> Self {
        LabelMap {
            names,
            source: source.into(),
            int_values: None,
            ints_by_name: false,
        }
    }

    /// labels.json beside `data_file` if present, otherwise the sorted set of training labels.
    pub fn for_training_file(data_file: &Path, train: &[RawExample]) -> anyhow::Result<Self> {
        let beside = labels_json_beside(data_file);
        if beside.is_file() {
            return Self::from_labels_json(&beside);
        }
        let ints: Vec<i64> = train
            .iter()
            .filter_map(|e| match e.label {
                RawLabel::Int(i) => Some(i),
                _ => None,
            })
            .collect();
        if ints.len() == train.len() {
            let mut values = ints;
            values.sort_unstable();
            values.dedup();
            let names = values.iter().map(|v| v.to_string()).collect();
            return Ok(LabelMap {
                names,
                source: "sorted set of training labels".into(),
                int_values: Some(values),
                ints_by_name: false,
            });
        }
        refuse_mixed_kinds(data_file, train)?;
        let mut names: Vec<String> = train
            .iter()
            .map(|e| match &e.label {
                RawLabel::Int(i) => i.to_string(),
                RawLabel::Str(s) => s.clone(),
            })
            .collect();
        names.sort();
        names.dedup();
        Ok(LabelMap {
            ints_by_name: true,
            ..LabelMap::from_names(names, "sorted set of training labels")
        })
    }

    /// A labels.json is a JSON array of class names in index order.
    pub fn from_labels_json(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| user(format!("{}: cannot read ({e})", path.display())))?;
        let names: Vec<String> = serde_json::from_str(crate::bom::strip(&text)).map_err(|e| {
            user(format!(
                "{}: expected a JSON array of class names ({e})",
                path.display()
            ))
        })?;
        if names.is_empty() {
            return Err(user(format!("{}: the label list is empty", path.display())));
        }
        refuse_duplicate_names(path, &names)?;
        Ok(LabelMap::from_names(
            names,
            format!("labels.json at {}", path.display()),
        ))
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The class index of one example's label, or a user error naming file and line.
    pub fn index_of(&self, example: &RawExample, file: &Path) -> anyhow::Result<i64> {
        let not_found = |shown: String| {
            user(format!(
                "{}: line {}: label {shown} is not among the {} known labels ({}): fix the label or the label list ({})",
                file.display(),
                example.line,
                self.names.len(),
                preview(&self.names),
                self.source
            ))
        };
        match &example.label {
            RawLabel::Int(i) => match &self.int_values {
                Some(values) => values
                    .binary_search(i)
                    .map(|p| p as i64)
                    .map_err(|_| not_found(i.to_string())),
                None if !self.ints_by_name && *i >= 0 && (*i as usize) < self.names.len() => Ok(*i),
                None => self
                    .names
                    .iter()
                    .position(|n| n == &i.to_string())
                    .map(|p| p as i64)
                    .ok_or_else(|| not_found(i.to_string())),
            },
            RawLabel::Str(s) => self
                .names
                .iter()
                .position(|n| n == s)
                .map(|p| p as i64)
                .ok_or_else(|| not_found(format!("{s:?}"))),
        }
    }
}

/// Integer and string labels in one training file, without a labels.json to say how they
/// map, cannot be given indices safely (is 1 the second class or a class named "1"?).
fn refuse_mixed_kinds(file: &Path, train: &[RawExample]) -> anyhow::Result<()> {
    let int = train.iter().find(|e| matches!(e.label, RawLabel::Int(_)));
    let text = train.iter().find(|e| matches!(e.label, RawLabel::Str(_)));
    if let (Some(int), Some(text)) = (int, text) {
        let (RawLabel::Int(i), RawLabel::Str(s)) = (&int.label, &text.label) else {
            return Ok(());
        };
        return Err(user(format!(
            "{}: line {}: label {i} is a number, but line {} has the label {s:?}: write every label the same way, or put a labels.json (a JSON array of the class names) beside the file",
            file.display(),
            int.line,
            text.line
        )));
    }
    Ok(())
}

/// A class name listed twice would give two indices one name in every table and figure.
fn refuse_duplicate_names(path: &Path, names: &[String]) -> anyhow::Result<()> {
    for (i, name) in names.iter().enumerate() {
        if let Some(j) = names[..i].iter().position(|n| n == name) {
            return Err(user(format!(
                "{}: the class name {name:?} is listed twice (positions {} and {}): class names must be unique",
                path.display(),
                j + 1,
                i + 1
            )));
        }
    }
    Ok(())
}

fn preview(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(6).map(|s| s.as_str()).collect();
    if names.len() > 6 {
        format!("{}, ...", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// `labels.json` in the same folder as the data file.
pub fn labels_json_beside(data_file: &Path) -> PathBuf {
    data_file
        .parent()
        .unwrap_or(Path::new("."))
        .join("labels.json")
}
