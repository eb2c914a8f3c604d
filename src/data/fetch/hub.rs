//! A thin client of the hub's HTTP API: the parquet branch's listing, and downloads checked
//! against the listed size and hash.

use super::catalogue::HubDataset;
use super::hex;
use super::links::{join_url, next_link};
use super::splits::{canonical_split, legacy_split, SPLITS};
use super::summary::SkippedSplit;
use crate::error::user;
use anyhow::Context;
use indicatif::ProgressBar;
use serde::Deserialize;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::time::Duration;

/// The hub used when `HF_ENDPOINT` is not set (as huggingface_hub).
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// The branch the hub's parquet converter writes.
pub const PARQUET_REVISION: &str = "refs/convert/parquet";
/// [`PARQUET_REVISION`] as it stands in a URL.
const REVISION_IN_URL: &str = "refs%2Fconvert%2Fparquet";

/// `HF_ENDPOINT` without a trailing slash, or the public hub.
pub fn endpoint_from_env() -> String {
    match std::env::var("HF_ENDPOINT") {
        Ok(v) if !v.trim().is_empty() => v.trim().trim_end_matches('/').to_string(),
        _ => DEFAULT_ENDPOINT.to_string(),
    }
}

/// Whether `HF_HUB_OFFLINE` forbids network requests (as huggingface_hub reads it: 1, on, yes
/// or true, in any case).
pub fn offline_from_env() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "on" | "yes" | "true"
        )
    })
}

/// How a listed file is checked after download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Checksum {
    Sha256(String),
    GitBlob(String),
}

/// A parquet file of the conversion branch.
#[derive(Debug, Clone)]
pub(super) struct RemoteFile {
    /// Path in the repository, e.g. `plain_text/train/0000.parquet`.
    pub(super) path: String,
    /// `train`, `validation` or `test`.
    pub(super) split: String,
    pub(super) size: u64,
    pub(super) checksum: Checksum,
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

fn unreachable_hint(name: &str) -> String {
    format!(
        "set HF_ENDPOINT to a reachable hub mirror, or run `heal data fetch {name} --out DIR` where the hub is reachable and give that folder to heal finetune --data"
    )
}

/// A thin client of the hub's HTTP API.
pub(super) struct Hub<'a> {
    pub(super) endpoint: String,
    pub(super) dataset: &'a HubDataset,
    agent: ureq::Agent,
}

impl<'a> Hub<'a> {
    pub(super) fn new(endpoint: &str, dataset: &'a HubDataset) -> Self {
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

    pub(super) fn tree_url(&self) -> String {
        format!(
            "{}/api/datasets/{}/tree/{REVISION_IN_URL}/{}?recursive=true",
            self.endpoint, self.dataset.repo, self.dataset.config
        )
    }

    pub(super) fn resolve_url(&self, path: &str) -> String {
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
    pub(super) fn list(&self) -> anyhow::Result<(Vec<RemoteFile>, Vec<SkippedSplit>)> {
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
    pub(super) fn download(
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
