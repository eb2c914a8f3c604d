//! What a fetch did: the body of SOURCE.json.

use serde::Serialize;
use std::collections::BTreeMap;

/// One split as written.
#[derive(Debug, Clone, Serialize)]
pub struct SplitSummary {
    pub split: String,
    pub file: String,
    pub rows: usize,
    /// Rows per class, in labels.json order.
    pub label_counts: Vec<usize>,
    pub bytes: u64,
    pub sha256: String,
    /// Rows left out because their label is -1 (no label).
    pub unlabelled_rows_dropped: usize,
    /// Rows left out because their text or label is null.
    pub null_rows_dropped: usize,
    /// The hub files it was made from, in order.
    pub sources: Vec<String>,
}

/// A split of the hub's that was not written, and why.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedSplit {
    pub split: String,
    pub reason: String,
}

/// What a fetch did; also the body of SOURCE.json.
#[derive(Debug, Clone, Serialize)]
pub struct FetchSummary {
    pub name: String,
    pub hub: String,
    pub repo: String,
    pub config: String,
    pub revision: String,
    /// The branch's commit, from the hub's `X-Repo-Commit` header when it sends one.
    pub commit: Option<String>,
    pub columns: BTreeMap<String, String>,
    pub label_names: Vec<String>,
    /// "parquet features (ClassLabel)" or "heal's registry".
    pub label_names_from: String,
    pub note: String,
    pub files: Vec<FileRecord>,
    pub splits: Vec<SplitSummary>,
    pub skipped: Vec<SkippedSplit>,
    pub fetched_at: String,
    pub heal_version: String,
}

/// One downloaded hub file with the checks it passed.
#[derive(Debug, Clone, Serialize)]
pub struct FileRecord {
    pub path: String,
    pub url: String,
    pub bytes: u64,
    pub sha256: String,
    /// The id the hub listed and the file was checked against: `sha256:<hex>` (LFS) or
    /// `git-blob:<hex>`.
    pub verified: String,
    pub split: String,
    pub rows: usize,
}
