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

mod catalogue;
mod conversion;
mod hub;

mod splits;
mod summary;

pub use catalogue::{dataset, find, help_table, names, HubDataset, DATASETS};
pub use hub::{endpoint_from_env, DEFAULT_ENDPOINT, PARQUET_REVISION};
pub use summary::{FetchSummary, FileRecord, SkippedSplit, SplitSummary};

use crate::error::user;
use anyhow::Context;
use conversion::{convert_split, parquet_class_names};
use hub::{Checksum, Hub, RemoteFile};
use sha2::{Digest, Sha256};
use splits::SPLITS;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What to fetch and where to put it.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub out: PathBuf,
    pub force: bool,
    /// The hub, e.g. `https://huggingface.co` (see [`endpoint_from_env`]).
    pub endpoint: String,
}

fn sha256_of(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher)?;
    Ok((bytes, crate::hub::client::hex(&hasher.finalize())))
}

/// Fetches `d` into `opts.out`: lists the conversion branch, downloads and verifies every
/// parquet file of the train/validation/test splits, converts them and swaps the finished
/// folder in. An existing output folder is an error unless `opts.force`.
pub fn fetch(d: &HubDataset, opts: &FetchOptions) -> anyhow::Result<FetchSummary> {
    let out = &opts.out;
    if crate::hub::offline() {
        return Err(user(format!(
            "HF_HUB_OFFLINE is set, so heal makes no network request: run `heal data fetch {}` where the hub is reachable, without HF_HUB_OFFLINE",
            d.name
        )));
    }
    if out.file_name().is_none() {
        return Err(user(format!(
            "--out {}: give a folder name, e.g. data/{}",
            out.display(),
            d.name
        )));
    }
    // A file or a run directory at --out is refused; a folder only without --force (this
    // command's --overwrite: the old copy is replaced only once the new one is complete).
    crate::fsio::Output::check("--out", out, crate::fsio::Kind::Folder, true)?;
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
    log::debug!(
        "{}: {} parquet files ({:.1} MB) of {} config {} from {}",
        d.name,
        files.len(),
        total as f64 / 1e6,
        d.repo,
        d.config,
        hub.endpoint()
    );
    let bar = crate::progress::bar(total, crate::progress::Unit::Bytes, "download");
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
                log::warn!(
                    "the parquet files name the classes {}; heal's table says {}: using the files'",
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
        hub: hub.endpoint().to_string(),
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
