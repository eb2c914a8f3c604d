//! `heal data fetch NAME`: a named dataset from the Hugging Face hub, converted to the project's
//! JSON-lines form (`<split>.jsonl.gz` with `text`, optional `text_pair`, integer `label`, plus
//! `labels.json` and `SOURCE.json`).
//!
//! The files come from the hub's parquet conversion branch (`refs/convert/parquet`), which the
//! hub keeps for every public dataset: `{config}/{split}/NNNN.parquet`. The branch is listed with
//! the tree API, every file is downloaded through its `resolve` URL and checked against the size
//! and hash in the listing (sha256 of LFS files, the git blob id otherwise) before it is read.
//! Everything is written into a temporary folder beside the output and renamed into place at the
//! end, so a failed fetch leaves nothing behind.

use crate::error::user;
use anyhow::Context;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, LargeStringArray, StringArray, StringViewArray};
use arrow_schema::DataType;
use indicatif::{ProgressBar, ProgressStyle};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The hub used when `HF_ENDPOINT` is not set (as huggingface_hub).
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// The branch the hub's parquet converter writes.
pub const PARQUET_REVISION: &str = "refs/convert/parquet";
/// [`PARQUET_REVISION`] as it stands in a URL.
const REVISION_IN_URL: &str = "refs%2Fconvert%2Fparquet";
/// The splits written, in this order; the hub's other splits (e.g. IMDb's `unsupervised`) are
/// skipped.
const SPLITS: [&str; 3] = ["train", "validation", "test"];

/// One entry of the registry: where a dataset lives on the hub and which columns to read.
/// Facts from the dataset cards; label names from the parquet files' `features` win when the
/// files carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubDataset {
    pub name: &'static str,
    pub repo: &'static str,
    pub config: &'static str,
    pub text: &'static str,
    pub text_pair: Option<&'static str>,
    pub label: &'static str,
    pub label_names: &'static [&'static str],
    /// One line for `--help` and SOURCE.json.
    pub about: &'static str,
}

/// Every dataset `heal data fetch` knows.
pub const DATASETS: &[HubDataset] = &[
    HubDataset {
        name: "sst2",
        repo: "stanfordnlp/sst2",
        config: "default",
        text: "sentence",
        text_pair: None,
        label: "label",
        label_names: &["negative", "positive"],
        about: "SST-2 movie-review sentences, 2 classes; test labels are hidden",
    },
    HubDataset {
        name: "imdb",
        repo: "stanfordnlp/imdb",
        config: "plain_text",
        text: "text",
        text_pair: None,
        label: "label",
        label_names: &["neg", "pos"],
        about: "IMDb movie reviews, 2 classes; the unlabelled `unsupervised` split is skipped",
    },
    HubDataset {
        name: "ag_news",
        repo: "fancyzhx/ag_news",
        config: "default",
        text: "text",
        text_pair: None,
        label: "label",
        label_names: &["World", "Sports", "Business", "Sci/Tech"],
        about: "AG News titles and descriptions, 4 topics",
    },
    HubDataset {
        name: "emotion",
        repo: "dair-ai/emotion",
        config: "split",
        text: "text",
        text_pair: None,
        label: "label",
        label_names: &["sadness", "joy", "love", "anger", "fear", "surprise"],
        about: "English tweets, 6 emotions",
    },
    HubDataset {
        name: "dbpedia",
        repo: "fancyzhx/dbpedia_14",
        config: "dbpedia_14",
        text: "content",
        text_pair: None,
        label: "label",
        label_names: &[
            "Company",
            "EducationalInstitution",
            "Artist",
            "Athlete",
            "OfficeHolder",
            "MeanOfTransportation",
            "Building",
            "NaturalPlace",
            "Village",
            "Animal",
            "Plant",
            "Album",
            "Film",
            "WrittenWork",
        ],
        about: "DBpedia-14 abstracts (`content`; titles unused), 14 classes",
    },
    HubDataset {
        name: "twitter-financial-news-topic",
        repo: "zeroshot/twitter-financial-news-topic",
        config: "default",
        text: "text",
        text_pair: None,
        label: "label",
        label_names: &[
            "Analyst Update",
            "Fed | Central Banks",
            "Company | Product News",
            "Treasuries | Corporate Debt",
            "Dividend",
            "Earnings",
            "Energy | Oil",
            "Financials",
            "Currencies",
            "General News | Opinion",
            "Gold | Metals | Materials",
            "IPO",
            "Legal | Regulation",
            "M&A | Investments",
            "Macro",
            "Markets",
            "Politics",
            "Personnel Change",
            "Stock Commentary",
            "Stock Movement",
        ],
        about: "finance tweets, 20 topics",
    },
    HubDataset {
        name: "mrpc",
        repo: "nyu-mll/glue",
        config: "mrpc",
        text: "sentence1",
        text_pair: Some("sentence2"),
        label: "label",
        label_names: &["not_equivalent", "equivalent"],
        about: "MRPC sentence pairs, paraphrase or not",
    },
    HubDataset {
        name: "rte",
        repo: "nyu-mll/glue",
        config: "rte",
        text: "sentence1",
        text_pair: Some("sentence2"),
        label: "label",
        label_names: &["entailment", "not_entailment"],
        about: "RTE sentence pairs, entailment or not; test labels are hidden",
    },
];

/// The registry entry called `name`, or a user error listing the valid names.
pub fn dataset(name: &str) -> anyhow::Result<&'static HubDataset> {
    DATASETS.iter().find(|d| d.name == name).ok_or_else(|| {
        user(format!(
            "unknown dataset {name:?}: heal data fetch knows {}",
            names().join(", ")
        ))
    })
}

/// The registry's names, in table order.
pub fn names() -> Vec<&'static str> {
    DATASETS.iter().map(|d| d.name).collect()
}

/// The registry as lines for `--help`.
pub fn help_table() -> String {
    let mut text = String::from("Datasets:\n");
    for d in DATASETS {
        text.push_str(&format!(
            "  {}\n      {}, config {}: {}\n",
            d.name, d.repo, d.config, d.about
        ));
    }
    text
}

/// `HF_ENDPOINT` without a trailing slash, or the public hub.
pub fn endpoint_from_env() -> String {
    match std::env::var("HF_ENDPOINT") {
        Ok(v) if !v.trim().is_empty() => v.trim().trim_end_matches('/').to_string(),
        _ => DEFAULT_ENDPOINT.to_string(),
    }
}

/// What to fetch and where to put it.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub out: PathBuf,
    pub force: bool,
    /// The hub, e.g. `https://huggingface.co` (see [`endpoint_from_env`]).
    pub endpoint: String,
}

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

/// How a listed file is checked after download.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Checksum {
    Sha256(String),
    GitBlob(String),
}

/// A parquet file of the conversion branch.
#[derive(Debug, Clone)]
struct RemoteFile {
    /// Path in the repository, e.g. `plain_text/train/0000.parquet`.
    path: String,
    /// `train`, `validation` or `test`.
    split: String,
    size: u64,
    checksum: Checksum,
}

#[derive(Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    oid: String,
    #[serde(default)]
    lfs: Option<LfsInfo>,
}

#[derive(Deserialize)]
struct LfsInfo {
    oid: String,
    size: u64,
}

/// The split a hub folder name stands for: `valid`/`dev`/`val` are validation; the converter's
/// `partial-<split>` folders (a truncated conversion of a very large split) count as the split.
fn canonical_split(folder: &str) -> Option<&'static str> {
    let folder = folder.strip_prefix("partial-").unwrap_or(folder);
    match folder.to_ascii_lowercase().as_str() {
        "train" => Some("train"),
        "validation" | "valid" | "val" | "dev" => Some("validation"),
        "test" => Some("test"),
        _ => None,
    }
}

/// The split of a file in the converter's older flat layout, `{config}/{dataset}-{split}.parquet`
/// or `{config}/{dataset}-{split}-00000-of-00002.parquet`: the last dash-separated word that
/// names a split.
fn legacy_split(file: &str) -> Option<String> {
    let stem = file.strip_suffix(".parquet")?;
    stem.split('-')
        .rev()
        .find(|w| canonical_split(w).is_some())
        .map(str::to_string)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unreachable_hint(name: &str) -> String {
    format!(
        "set HF_ENDPOINT to a reachable hub mirror, or run `heal data fetch {name} --out DIR` where the hub is reachable and give that folder to heal finetune --data"
    )
}

/// A thin client of the hub's HTTP API.
struct Hub<'a> {
    endpoint: String,
    dataset: &'a HubDataset,
    agent: ureq::Agent,
}

impl<'a> Hub<'a> {
    fn new(endpoint: &str, dataset: &'a HubDataset) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("heal/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .max_redirects(0)
            .build();
        Hub {
            endpoint: endpoint.to_string(),
            dataset,
            agent: config.into(),
        }
    }

    fn tree_url(&self) -> String {
        format!(
            "{}/api/datasets/{}/tree/{REVISION_IN_URL}/{}?recursive=true",
            self.endpoint, self.dataset.repo, self.dataset.config
        )
    }

    fn resolve_url(&self, path: &str) -> String {
        format!(
            "{}/datasets/{}/resolve/{REVISION_IN_URL}/{path}",
            self.endpoint, self.dataset.repo
        )
    }

    /// GET `url`, following redirects (the hub's resolve URLs redirect to a CDN or, for small
    /// files, to a relative `/api/resolve-cache/...`); a transport failure or a final status
    /// other than 200 is a one-line user error naming the URL. Also returns the first
    /// `X-Repo-Commit` header seen on the way (the hub sends it with the redirect).
    fn get(&self, url: &str) -> anyhow::Result<(ureq::http::Response<ureq::Body>, Option<String>)> {
        let mut current = url.to_string();
        let mut commit = None;
        for _ in 0..=10 {
            let response = self.agent.get(&current).call().map_err(|e| {
                user(format!(
                    "GET {current} failed ({e}): {}",
                    unreachable_hint(self.dataset.name)
                ))
            })?;
            if commit.is_none() {
                commit = response
                    .headers()
                    .get("x-repo-commit")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
            }
            let status = response.status().as_u16();
            if status == 200 {
                return Ok((response, commit));
            }
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        user(format!("GET {current}: HTTP {status} without a Location"))
                    })?;
                current = join_url(&current, location);
                continue;
            }
            let d = self.dataset;
            let why = match status {
                404 => format!(
                    "not found: {} has no parquet conversion of {} config {} (branch {PARQUET_REVISION}); check HF_ENDPOINT (now {})",
                    self.endpoint, d.repo, d.config, self.endpoint
                ),
                401 | 403 => format!(
                    "{} is gated or private on {}; heal sends no token: check HF_ENDPOINT (now {})",
                    d.repo, self.endpoint, self.endpoint
                ),
                _ => unreachable_hint(d.name),
            };
            return Err(user(format!("GET {current}: HTTP {status}: {why}")));
        }
        Err(user(format!("GET {url}: more than 10 redirects")))
    }

    /// Every parquet file of the dataset's config on the conversion branch, following the tree
    /// API's `Link: <...>; rel="next"` pages.
    fn list(&self) -> anyhow::Result<(Vec<RemoteFile>, Vec<SkippedSplit>)> {
        let mut next = Some(self.tree_url());
        let mut entries: Vec<TreeEntry> = Vec::new();
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > 1000 {
                anyhow::bail!("{url}: more than 1000 pages of listing");
            }
            let (mut response, _) = self.get(&url)?;
            next = response
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let body = response
                .body_mut()
                .with_config()
                .limit(256 * 1024 * 1024)
                .read_to_string()
                .map_err(|e| {
                    user(format!(
                        "GET {url} failed while reading ({e}): {}",
                        unreachable_hint(self.dataset.name)
                    ))
                })?;
            let page: Vec<TreeEntry> = serde_json::from_str(&body).map_err(|e| {
                user(format!(
                    "GET {url}: not a tree listing ({e}); is HF_ENDPOINT ({}) a Hugging Face hub?",
                    self.endpoint
                ))
            })?;
            entries.extend(page);
        }
        let prefix = format!("{}/", self.dataset.config);
        let mut files = Vec::new();
        let mut skipped: BTreeMap<String, SkippedSplit> = BTreeMap::new();
        for entry in entries {
            if entry.kind != "file" || !entry.path.ends_with(".parquet") {
                continue;
            }
            let Some(rest) = entry.path.strip_prefix(&prefix) else {
                continue;
            };
            let folder = match rest.split_once('/') {
                Some((folder, _)) => folder.to_string(),
                None => match legacy_split(rest) {
                    Some(split) => split,
                    None => continue,
                },
            };
            let folder = folder.as_str();
            let Some(split) = canonical_split(folder) else {
                skipped.entry(folder.to_string()).or_insert(SkippedSplit {
                    split: folder.to_string(),
                    reason: "not a train, validation or test split".into(),
                });
                continue;
            };
            let (size, checksum) = match &entry.lfs {
                Some(lfs) => (lfs.size, Checksum::Sha256(lfs.oid.to_ascii_lowercase())),
                None => (
                    entry.size,
                    Checksum::GitBlob(entry.oid.to_ascii_lowercase()),
                ),
            };
            let (Checksum::GitBlob(oid) | Checksum::Sha256(oid)) = &checksum;
            if oid.is_empty() {
                return Err(user(format!(
                    "{}: the hub's listing gives no checksum for {}: cannot verify it",
                    self.tree_url(),
                    entry.path
                )));
            }
            files.push(RemoteFile {
                path: entry.path,
                split: split.to_string(),
                size,
                checksum,
            });
        }
        files.sort_by(|a, b| {
            let rank = |s: &str| SPLITS.iter().position(|x| *x == s).unwrap_or(SPLITS.len());
            rank(&a.split)
                .cmp(&rank(&b.split))
                .then_with(|| a.path.cmp(&b.path))
        });
        if files.is_empty() {
            return Err(user(format!(
                "{}: no parquet files for {} config {}; check HF_ENDPOINT (now {})",
                self.tree_url(),
                self.dataset.repo,
                self.dataset.config,
                self.endpoint
            )));
        }
        Ok((files, skipped.into_values().collect()))
    }

    /// Downloads one file to `dest`, checking its size and hash as it streams. Returns the
    /// file's sha256 and the `X-Repo-Commit` header, if any.
    fn download(
        &self,
        file: &RemoteFile,
        dest: &Path,
        bar: &ProgressBar,
    ) -> anyhow::Result<(String, Option<String>)> {
        let url = self.resolve_url(&file.path);
        let (mut response, commit) = self.get(&url)?;
        let out =
            std::fs::File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
        let mut out = BufWriter::new(out);
        let mut sha256 = Sha256::new();
        let mut git = Sha1::new();
        git.update(format!("blob {}\0", file.size).as_bytes());
        let mut reader = response.body_mut().as_reader();
        let mut buf = vec![0u8; 1 << 16];
        let mut total: u64 = 0;
        loop {
            let n = reader.read(&mut buf).map_err(|e| {
                user(format!(
                    "GET {url} failed after {total} bytes ({e}): {}",
                    unreachable_hint(self.dataset.name)
                ))
            })?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > file.size {
                break;
            }
            sha256.update(&buf[..n]);
            git.update(&buf[..n]);
            out.write_all(&buf[..n])
                .with_context(|| format!("writing {}", dest.display()))?;
            bar.inc(n as u64);
        }
        out.flush()
            .with_context(|| format!("writing {}", dest.display()))?;
        if total != file.size {
            let got = if total > file.size {
                format!("more than {}", file.size)
            } else {
                total.to_string()
            };
            return Err(user(format!(
                "{url}: size mismatch: received {got} bytes, the hub lists {}: the download is corrupt or incomplete; run again, or check HF_ENDPOINT (now {})",
                file.size, self.endpoint
            )));
        }
        let sha256 = hex(&sha256.finalize());
        let (kind, got, want) = match &file.checksum {
            Checksum::Sha256(want) => ("sha256", sha256.clone(), want),
            Checksum::GitBlob(want) => ("git blob id", hex(&git.finalize()), want),
        };
        if &got != want {
            return Err(user(format!(
                "{url}: checksum mismatch: {kind} {got}, the hub lists {want}: the download is corrupt; run again, or check HF_ENDPOINT (now {})",
                self.endpoint
            )));
        }
        Ok((sha256, commit))
    }
}

/// `location` (absolute, or relative to the host of `base`) as an absolute URL.
fn join_url(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    if location.starts_with('/') {
        format!("{}{location}", &base[..host_end])
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|&i| i >= host_end)
            .unwrap_or(host_end);
        format!("{}/{location}", &base[..dir_end])
    }
}

/// The URL of a `Link` header's `rel="next"` part.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
        let target = target.trim();
        (is_next && target.starts_with('<') && target.ends_with('>'))
            .then(|| target[1..target.len() - 1].to_string())
    })
}

/// ClassLabel names of `column` from the `huggingface` metadata that the datasets library
/// writes into every parquet file (`{"info": {"features": {column: {"_type": "ClassLabel",
/// "names": [...]}}}}`), if the file has them.
fn parquet_class_names(path: &Path, column: &str) -> anyhow::Result<Option<Vec<String>>> {
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
struct Converted {
    rows: usize,
    label_counts: Vec<usize>,
    unlabelled: usize,
    nulls: usize,
    rows_per_file: Vec<usize>,
}

/// Reads the split's parquet files in order and writes `out` (gzip JSON lines).
fn convert_split(
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

fn sha256_of(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher)?;
    Ok((bytes, hex(&hasher.finalize())))
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// Fetches `d` into `opts.out`: lists the conversion branch, downloads and verifies every
/// parquet file of the train/validation/test splits, converts them and swaps the finished
/// folder in. An existing output folder is an error unless `opts.force`.
pub fn fetch(d: &HubDataset, opts: &FetchOptions) -> anyhow::Result<FetchSummary> {
    let out = &opts.out;
    if out.file_name().is_none() {
        return Err(user(format!(
            "--out {}: give a folder name, e.g. data/{}",
            out.display(),
            d.name
        )));
    }
    if out.is_file() {
        return Err(user(format!(
            "{}: is a file; give a folder with --out",
            out.display()
        )));
    }
    if out.exists() && !opts.force {
        return Err(user(format!(
            "{}: already exists; pass --force to replace it (only once the new copy is complete), or choose another --out",
            out.display()
        )));
    }
    let hub = Hub::new(&opts.endpoint, d);
    let (files, mut skipped) = hub.list()?;
    if !files.iter().any(|f| f.split == "train") {
        return Err(user(format!(
            "{}: {} config {} has no train split on {}",
            hub.tree_url(),
            d.repo,
            d.config,
            opts.endpoint
        )));
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Folders made here for the output's parent, innermost first, to remove again on failure.
    let made: Vec<PathBuf> = parent
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .map(Path::to_path_buf)
        .collect();
    if !made.is_empty() {
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut summary = None;
    let result = crate::fsio::write_dir_atomic(out, |tmp| {
        summary = Some(fill(&hub, &files, &mut skipped, tmp)?);
        Ok(())
    });
    if let Err(e) = result {
        for dir in &made {
            let _ = std::fs::remove_dir(dir);
        }
        return Err(e);
    }
    Ok(summary.expect("filled"))
}

/// Downloads, verifies and converts into `tmp`; writes labels.json and SOURCE.json.
fn fill(
    hub: &Hub,
    files: &[RemoteFile],
    skipped: &mut Vec<SkippedSplit>,
    tmp: &Path,
) -> anyhow::Result<FetchSummary> {
    let d = hub.dataset;
    let downloads = tmp.join(".parquet");
    std::fs::create_dir_all(&downloads)?;
    let total: u64 = files.iter().map(|f| f.size).sum();
    println!(
        "{}: {} parquet files ({:.1} MB) of {} config {} from {}",
        d.name,
        files.len(),
        total as f64 / 1e6,
        d.repo,
        d.config,
        hub.endpoint
    );
    let bar = progress_bar(total);
    let mut local = Vec::new();
    let mut records = Vec::new();
    let mut commit = None;
    for (i, f) in files.iter().enumerate() {
        bar.set_message(f.path.clone());
        let dest = downloads.join(format!("{i:05}.parquet"));
        let (sha256, c) = hub.download(f, &dest, &bar)?;
        commit = commit.or(c);
        records.push(FileRecord {
            path: f.path.clone(),
            url: hub.resolve_url(&f.path),
            bytes: f.size,
            sha256,
            verified: match &f.checksum {
                Checksum::Sha256(h) => format!("sha256:{h}"),
                Checksum::GitBlob(h) => format!("git-blob:{h}"),
            },
            split: f.split.clone(),
            rows: 0,
        });
        local.push(dest);
    }
    bar.finish_and_clear();

    // Label names: the files' own ClassLabel names when they carry them, else the registry's.
    let first_train = files
        .iter()
        .position(|f| f.split == "train")
        .expect("train");
    let table: Vec<String> = d.label_names.iter().map(|s| s.to_string()).collect();
    let (label_names, names_from) = match parquet_class_names(&local[first_train], d.label)? {
        Some(names) if !names.is_empty() => {
            if names != table {
                println!(
                    "note: the parquet files name the classes {}; heal's table says {}: using the files'",
                    names.join(", "),
                    table.join(", ")
                );
            }
            (names, "parquet features (ClassLabel)".to_string())
        }
        _ => (table, "heal's registry".to_string()),
    };

    let mut splits = Vec::new();
    for split in SPLITS {
        let idx: Vec<usize> = (0..files.len())
            .filter(|&i| files[i].split == split)
            .collect();
        if idx.is_empty() {
            continue;
        }
        let inputs: Vec<(PathBuf, String)> = idx
            .iter()
            .map(|&i| (local[i].clone(), hub.resolve_url(&files[i].path)))
            .collect();
        let name = format!("{split}.jsonl.gz");
        let out = tmp.join(&name);
        let c = convert_split(d, &inputs, label_names.len(), &names_from, &out)?;
        for (&i, rows) in idx.iter().zip(&c.rows_per_file) {
            records[i].rows = *rows;
        }
        if c.rows == 0 {
            std::fs::remove_file(&out)?;
            let reason = if c.unlabelled > 0 {
                format!(
                    "no labels: label -1 on all {} rows (the labels are hidden)",
                    c.unlabelled
                )
            } else {
                "no rows".to_string()
            };
            if split == "train" {
                return Err(user(format!(
                    "{} config {}: the train split has {reason}",
                    d.repo, d.config
                )));
            }
            skipped.push(SkippedSplit {
                split: split.to_string(),
                reason,
            });
            continue;
        }
        let (bytes, sha256) = sha256_of(&out)?;
        splits.push(SplitSummary {
            split: split.to_string(),
            file: name,
            rows: c.rows,
            label_counts: c.label_counts,
            bytes,
            sha256,
            unlabelled_rows_dropped: c.unlabelled,
            null_rows_dropped: c.nulls,
            sources: idx.iter().map(|&i| files[i].path.clone()).collect(),
        });
    }
    std::fs::remove_dir_all(&downloads)?;

    let mut columns = BTreeMap::new();
    columns.insert("text".to_string(), d.text.to_string());
    if let Some(pair) = d.text_pair {
        columns.insert("text_pair".to_string(), pair.to_string());
    }
    columns.insert("label".to_string(), d.label.to_string());
    let summary = FetchSummary {
        name: d.name.to_string(),
        hub: hub.endpoint.clone(),
        repo: d.repo.to_string(),
        config: d.config.to_string(),
        revision: PARQUET_REVISION.to_string(),
        commit,
        columns,
        label_names: label_names.clone(),
        label_names_from: names_from,
        note: d.about.to_string(),
        files: records,
        splits,
        skipped: skipped.clone(),
        fetched_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        heal_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    crate::fsio::write_json(&tmp.join("labels.json"), &label_names)?;
    crate::fsio::write_json(&tmp.join("SOURCE.json"), &summary)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header() {
        let h = r#"<https://hub/api/datasets/x/tree/main?cursor=abc>; rel="next""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://hub/api/datasets/x/tree/main?cursor=abc")
        );
        assert_eq!(next_link(r#"<https://hub/a>; rel="prev""#), None);
    }

    #[test]
    fn redirects() {
        assert_eq!(
            join_url(
                "https://hub/datasets/x/resolve/r/a.parquet",
                "https://cdn/y?sig=1"
            ),
            "https://cdn/y?sig=1"
        );
        assert_eq!(
            join_url(
                "http://127.0.0.1:8/datasets/x/resolve/r/a.parquet",
                "/api/resolve-cache/z"
            ),
            "http://127.0.0.1:8/api/resolve-cache/z"
        );
        assert_eq!(join_url("http://h/a/b", "c"), "http://h/a/c");
    }

    #[test]
    fn split_names() {
        assert_eq!(canonical_split("train"), Some("train"));
        assert_eq!(canonical_split("valid"), Some("validation"));
        assert_eq!(canonical_split("dev"), Some("validation"));
        assert_eq!(canonical_split("partial-train"), Some("train"));
        assert_eq!(canonical_split("unsupervised"), None);
        assert_eq!(
            legacy_split("ag_news-train.parquet").as_deref(),
            Some("train")
        );
        assert_eq!(
            legacy_split("duorc-validation-00000-of-00002.parquet").as_deref(),
            Some("validation")
        );
        assert_eq!(legacy_split("index.duckdb"), None);
    }

    #[test]
    fn registry_is_consistent() {
        for d in DATASETS {
            assert_eq!(dataset(d.name).unwrap(), d);
            assert!(!d.label_names.is_empty());
        }
        let err = dataset("nope").unwrap_err().to_string();
        assert!(err.contains("sst2") && err.contains("rte"), "{err}");
    }
}
