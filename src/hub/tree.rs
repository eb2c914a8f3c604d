//! The hub's tree API: a repository's files at a revision with their sizes and hashes, over as
//! many pages as the `Link` header names.

use super::client::{Checksum, Client, GetError};
use super::links::next_link;
use crate::error::user;
use serde::Deserialize;

/// One entry of a tree listing.
#[derive(Debug, Clone, Deserialize)]
pub struct TreeEntry {
    /// `file` or `directory`.
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
    #[serde(default)]
    pub size: u64,
    /// The git blob id.
    #[serde(default)]
    pub oid: String,
    /// Present for files stored in LFS.
    #[serde(default)]
    pub lfs: Option<LfsInfo>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LfsInfo {
    /// The sha256 of the content.
    pub oid: String,
    pub size: u64,
}

impl TreeEntry {
    /// The file's size and the hash it is checked against (empty when the hub listed none).
    pub fn checksum(&self) -> (u64, Checksum) {
        match &self.lfs {
            Some(lfs) => (lfs.size, Checksum::Sha256(lfs.oid.to_ascii_lowercase())),
            None => (self.size, Checksum::GitBlob(self.oid.to_ascii_lowercase())),
        }
    }
}

/// Every entry from `first_url` on, following `rel="next"` pages; `explain` words a failed GET.
pub fn list(
    client: &Client,
    first_url: &str,
    explain: &dyn Fn(GetError) -> anyhow::Error,
) -> anyhow::Result<Vec<TreeEntry>> {
    let mut next = Some(first_url.to_string());
    let mut entries = Vec::new();
    let mut pages = 0;
    while let Some(url) = next.take() {
        pages += 1;
        if pages > 1000 {
            anyhow::bail!("{url}: more than 1000 pages of listing");
        }
        let (body, link) = client.get_text(&url).map_err(explain)?;
        next = link.as_deref().and_then(next_link);
        let page: Vec<TreeEntry> = serde_json::from_str(&body).map_err(|e| {
            user(format!(
                "GET {url}: not a tree listing ({e}); is HF_ENDPOINT ({}) a Hugging Face hub?",
                client.endpoint
            ))
        })?;
        entries.extend(page);
    }
    Ok(entries)
}
