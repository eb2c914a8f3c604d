//! A thin client of the hub's HTTP API: the parquet branch's listing, and downloads checked
//! against the listed size and hash.

use super::catalogue::HubDataset;
use super::splits::{canonical_split, legacy_split, SPLITS};
use super::summary::SkippedSplit;
use crate::error::user;
use crate::hub::client::{self, Client, DownloadError, GetError};
use crate::hub::tree;
use crate::progress::Progress;
use std::collections::BTreeMap;
use std::path::Path;

pub use crate::hub::client::Checksum;
pub use crate::hub::{endpoint_from_env, DEFAULT_ENDPOINT};
/// The branch the hub's parquet converter writes.
pub const PARQUET_REVISION: &str = "refs/convert/parquet";
/// [`PARQUET_REVISION`] as it stands in a URL.
const REVISION_IN_URL: &str = "refs%2Fconvert%2Fparquet";

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

fn unreachable_hint(name: &str) -> String {
    format!(
        "set HF_ENDPOINT to a reachable hub mirror, or run `heal data fetch {name} --out DIR` where the hub is reachable and give that folder to heal finetune --data"
    )
}

/// The dataset side of the hub: the conversion branch's listing and its files.
pub(super) struct Hub<'a> {
    pub(super) dataset: &'a HubDataset,
    client: Client,
}

impl<'a> Hub<'a> {
    pub(super) fn new(endpoint: &str, dataset: &'a HubDataset) -> Self {
        Hub {
            dataset,
            client: Client::new(endpoint, client::token()),
        }
    }

    /// The hub this client talks to.
    pub(super) fn endpoint(&self) -> &str {
        &self.client.endpoint
    }

    pub(super) fn tree_url(&self) -> String {
        format!(
            "{}/api/datasets/{}/tree/{REVISION_IN_URL}/{}?recursive=true",
            self.endpoint(),
            self.dataset.repo,
            self.dataset.config
        )
    }

    pub(super) fn resolve_url(&self, path: &str) -> String {
        format!(
            "{}/datasets/{}/resolve/{REVISION_IN_URL}/{path}",
            self.endpoint(),
            self.dataset.repo
        )
    }

    /// A failed GET as one line naming the URL and what to do.
    fn explain(&self, e: GetError) -> anyhow::Error {
        match e {
            GetError::Transport { url, message } => user(format!(
                "GET {url} failed ({message}): {}",
                unreachable_hint(self.dataset.name)
            )),
            GetError::TooManyRedirects { url } => {
                user(format!("GET {url}: more than 10 redirects"))
            }
            GetError::Status { url, status, .. } => {
                let d = self.dataset;
                let why = match status {
                    404 => format!(
                        "not found: {} has no parquet conversion of {} config {} (branch {PARQUET_REVISION}); check HF_ENDPOINT (now {})",
                        self.endpoint(), d.repo, d.config, self.endpoint()
                    ),
                    401 | 403 => format!(
                        "{} is gated or private on {}: set HF_TOKEN to a token with access (check HF_ENDPOINT, now {})",
                        d.repo, self.endpoint(), self.endpoint()
                    ),
                    _ => unreachable_hint(d.name),
                };
                user(format!("GET {url}: HTTP {status}: {why}"))
            }
        }
    }

    /// Every parquet file of the dataset's config on the conversion branch, following the tree
    /// API's `Link: <...>; rel="next"` pages.
    pub(super) fn list(&self) -> anyhow::Result<(Vec<RemoteFile>, Vec<SkippedSplit>)> {
        let entries = tree::list(&self.client, &self.tree_url(), &|e| self.explain(e))?;
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
            let (size, checksum) = entry.checksum();
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
                self.endpoint()
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
        bar: &Progress,
    ) -> anyhow::Result<(String, Option<String>)> {
        let url = self.resolve_url(&file.path);
        self.client
            .download(&url, file.size, &file.checksum, dest, bar)
            .map_err(|e| match e {
                DownloadError::Get(e) => self.explain(e),
                DownloadError::Io { url, message } => user(format!(
                    "GET {url} failed: {message}: {}",
                    unreachable_hint(self.dataset.name)
                )),
                DownloadError::Size { url, got, want } => user(format!(
                    "{url}: size mismatch: received {got} bytes, the hub lists {want}: the download is corrupt or incomplete; run again, or check HF_ENDPOINT (now {})",
                    self.endpoint()
                )),
                DownloadError::Checksum { url, kind, got, want } => user(format!(
                    "{url}: checksum mismatch: {kind} {got}, the hub lists {want}: the download is corrupt; run again, or check HF_ENDPOINT (now {})",
                    self.endpoint()
                )),
            })
    }
}
