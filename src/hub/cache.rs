//! The HF cache, laid out as huggingface_hub lays it out, so that transformers and heal share
//! one copy of every model:
//!
//! ```text
//! $HF_HUB_CACHE (else $HF_HOME/hub, else ~/.cache/huggingface/hub)/
//!   models--org--name/
//!     blobs/<etag>                 file contents, named by sha256 (LFS) or git blob id
//!     refs/<revision>              the commit a branch or tag pointed to when fetched
//!     snapshots/<commit>/<path>    relative symlinks into ../../blobs
//! ```

use crate::error::user;
use std::path::{Path, PathBuf};

/// `$HF_HOME`, else `~/.cache/huggingface`.
pub fn hf_home() -> PathBuf {
    match std::env::var_os("HF_HOME") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => super::home().join(".cache").join("huggingface"),
    }
}

/// `$HF_HUB_CACHE`, else `$HF_HOME/hub`.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("HF_HUB_CACHE") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => hf_home().join("hub"),
    }
}

/// Whether `text` is a full commit hash (40 hex digits), which names a snapshot directly.
pub fn is_commit(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One model repository's folder in the cache.
#[derive(Debug, Clone)]
pub struct RepoCache {
    pub root: PathBuf,
}

impl RepoCache {
    /// `models--org--name` under `cache`.
    pub fn model(cache: &Path, repo: &str) -> Self {
        RepoCache {
            root: cache.join(format!("models--{}", repo.replace('/', "--"))),
        }
    }

    /// The commit a revision names: the content of refs/<revision>, or the revision itself
    /// when it is a commit hash whose snapshot exists.
    pub fn commit_for(&self, revision: &str) -> Option<String> {
        if is_commit(revision) && self.snapshot(revision).is_dir() {
            return Some(revision.to_ascii_lowercase());
        }
        let text = std::fs::read_to_string(self.root.join("refs").join(revision)).ok()?;
        let commit = text.trim().to_string();
        is_commit(&commit).then_some(commit)
    }

    pub fn snapshot(&self, commit: &str) -> PathBuf {
        self.root.join("snapshots").join(commit)
    }

    pub fn blob(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(etag)
    }

    /// A download's temporary file, beside the blobs (same file system, so the rename that
    /// completes it is atomic). The `.incomplete` suffix is huggingface_hub's, so either tool
    /// can tell it from a blob.
    pub fn incomplete(&self, etag: &str) -> anyhow::Result<PathBuf> {
        let blobs = self.root.join("blobs");
        std::fs::create_dir_all(&blobs)
            .map_err(|e| user(format!("{}: cannot create ({e})", blobs.display())))?;
        Ok(blobs.join(format!("{etag}.{}.incomplete", std::process::id())))
    }

    /// Moves a checked download into blobs/<etag> and links snapshots/<commit>/<path> to it.
    /// The link is made last, so a snapshot entry always points at a complete blob.
    pub fn store(&self, commit: &str, path: &str, etag: &str, done: &Path) -> anyhow::Result<()> {
        let blob = self.blob(etag);
        std::fs::rename(done, &blob)
            .map_err(|e| user(format!("{}: cannot store ({e})", blob.display())))?;
        let link = self.snapshot(commit).join(path);
        let parent = link.parent().expect("a snapshot entry has a folder");
        std::fs::create_dir_all(parent)
            .map_err(|e| user(format!("{}: cannot create ({e})", parent.display())))?;
        // snapshots/<commit>/a/b.json -> ../../../blobs/<etag>: one ".." per folder level.
        let depth = path.split('/').count() + 1;
        let target = PathBuf::from("../".repeat(depth)).join("blobs").join(etag);
        let tmp = parent.join(format!(
            ".{}.{}.link",
            link.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp)
            .and_then(|()| std::fs::rename(&tmp, &link))
            .map_err(|e| user(format!("{}: cannot link ({e})", link.display())))
    }

    /// Records that `revision` pointed at `commit` (not for a revision that is a commit).
    pub fn write_ref(&self, revision: &str, commit: &str) -> anyhow::Result<()> {
        if is_commit(revision) {
            return Ok(());
        }
        let path = self.root.join("refs").join(revision);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| user(format!("{}: cannot create ({e})", parent.display())))?;
        }
        crate::fsio::write_atomic(&path, commit.as_bytes())
    }
}
