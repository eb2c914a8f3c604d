//! `--model NAME` as transformers resolves it: an existing folder, the embedded `minilm-l6`,
//! else a hub id (`name` or `org/name` at a revision) found in the HF cache, else downloaded
//! into it. Only the files heal needs are fetched.

use super::cache::{cache_dir, is_commit, RepoCache};
use super::client::{self, Client, DownloadError, GetError};
use super::tree::{self, TreeEntry};
use crate::defaults;
use crate::error::user;
use crate::model::checkpoint::CheckpointFiles;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The revision used when none is given.
pub const DEFAULT_REVISION: &str = "main";

/// Tokenizer files heal (or transformers beside it) reads, fetched when the repository has them.
const TOKENIZER_FILES: [&str; 6] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
];

/// The checkpoint folder `name` means, downloading it into the HF cache when it is a hub id
/// that is not cached (and `HF_HUB_OFFLINE` allows it).
pub fn resolve(name: &str, revision: Option<&str>) -> anyhow::Result<PathBuf> {
    let path = Path::new(name);
    if path.is_dir() {
        return Ok(repo_folder_snapshot(path, revision).unwrap_or_else(|| path.to_path_buf()));
    }
    if name == defaults::MINILM_L6 {
        return defaults::minilm_l6_dir();
    }
    if !is_hub_id(name) {
        // Not a folder and not a hub id: let the checkpoint loader say what is missing.
        return Ok(path.to_path_buf());
    }
    let revision = revision.unwrap_or(DEFAULT_REVISION);
    let cache = cache_dir();
    let repo = RepoCache::model(&cache, name);
    if let Some(snapshot) = cached_snapshot(&repo, revision) {
        return Ok(snapshot);
    }
    if super::offline() {
        return Err(user(format!(
            "{name} (revision {revision}): not a folder here and not in the HF cache ({}), and HF_HUB_OFFLINE is set: run `heal model fetch {name}` where the hub is reachable (with the same HF_HUB_CACHE or HF_HOME), or unset HF_HUB_OFFLINE",
            repo.root.display()
        )));
    }
    fetch(name, Some(revision))
}

/// The config.json `name` means, found without downloading anything: in a folder, in the
/// embedded `minilm-l6`, or in the HF cache's snapshot of a hub id (weights or not). None when
/// it is not here.
pub fn local_config(name: &str, revision: Option<&str>) -> Option<PathBuf> {
    let dir = if Path::new(name).is_dir() || name == defaults::MINILM_L6 {
        resolve(name, revision).ok()?
    } else if is_hub_id(name) {
        let repo = RepoCache::model(&cache_dir(), name);
        repo.snapshot(&repo.commit_for(revision.unwrap_or(DEFAULT_REVISION))?)
    } else {
        return None;
    };
    Some(dir.join("config.json")).filter(|c| c.is_file())
}

/// A cache repository folder given as a path (`.../models--org--name`): its snapshot at
/// `revision` (default main).
fn repo_folder_snapshot(path: &Path, revision: Option<&str>) -> Option<PathBuf> {
    if path.join("config.json").is_file() || !path.join("snapshots").is_dir() {
        return None;
    }
    let repo = RepoCache {
        root: path.to_path_buf(),
    };
    let commit = repo.commit_for(revision.unwrap_or(DEFAULT_REVISION))?;
    Some(repo.snapshot(&commit))
}

/// `name` or `org/name`, each part letters, digits, `-`, `_`, `.`, not starting with `.`; a path
/// that does not exist (`./x`, `/x`, `a/b/c`) is not a hub id.
pub fn is_hub_id(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && !p.starts_with('-')
                && p.len() <= 96
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
}

/// The cached snapshot of `revision` when it holds a loadable checkpoint.
fn cached_snapshot(repo: &RepoCache, revision: &str) -> Option<PathBuf> {
    let snapshot = repo.snapshot(&repo.commit_for(revision)?);
    let files = CheckpointFiles::locate(&snapshot).ok()?;
    files
        .weights
        .iter()
        .all(|w| w.is_file())
        .then_some(snapshot)
}

#[derive(Deserialize)]
struct RevisionInfo {
    sha: String,
}

/// Downloads the files heal needs of `name` at `revision` into the HF cache (skipping those
/// already there) and returns the snapshot folder. Online it always asks the hub which commit
/// the revision names now (a branch moves), as huggingface_hub's snapshot_download does; with
/// `HF_HUB_OFFLINE` it returns the cached snapshot or says where it looked.
pub fn fetch(name: &str, revision: Option<&str>) -> anyhow::Result<PathBuf> {
    let revision = revision.unwrap_or(DEFAULT_REVISION);
    if !is_hub_id(name) {
        return Err(user(format!(
            "{name:?}: not a hub id: give `name` or `org/name` (e.g. google-bert/bert-base-uncased)"
        )));
    }
    if super::offline() {
        let repo = RepoCache::model(&cache_dir(), name);
        return cached_snapshot(&repo, revision).ok_or_else(|| {
            user(format!(
                "{name} (revision {revision}): not in the HF cache ({}) and HF_HUB_OFFLINE is set, so nothing can be fetched: unset HF_HUB_OFFLINE, or fetch where the hub is reachable into the same HF_HUB_CACHE",
                repo.root.display()
            ))
        });
    }
    let endpoint = client::endpoint_from_env();
    let client = Client::new(&endpoint, client::token());
    let explain = |e: GetError| explain(e, name, revision, &endpoint);
    let info_url = format!(
        "{endpoint}/api/models/{name}/revision/{}",
        url_segment(revision)
    );
    let (text, _) = client.get_text(&info_url).map_err(explain)?;
    let info: RevisionInfo = serde_json::from_str(&text)
        .ok()
        .filter(|i: &RevisionInfo| is_commit(&i.sha))
        .ok_or_else(|| {
            user(format!(
                "GET {info_url}: not a model revision (no commit sha); is HF_ENDPOINT ({endpoint}) a Hugging Face hub?"
            ))
        })?;
    let commit = info.sha.to_ascii_lowercase();
    let listing = tree::list(
        &client,
        &format!("{endpoint}/api/models/{name}/tree/{commit}?recursive=true"),
        &explain,
    )?;
    let wanted = needed_files(&listing).map_err(|why| {
        user(format!(
            "{name} (revision {revision}, commit {commit}): {why}: heal loads BERT-family checkpoints with config.json and safetensors or pytorch_model.bin weights"
        ))
    })?;
    let cache = cache_dir();
    let repo = RepoCache::model(&cache, name);
    let todo: Vec<&TreeEntry> = wanted
        .into_iter()
        .filter(|e| {
            let (_, sum) = e.checksum();
            !(repo.blob(sum.etag()).is_file() && repo.snapshot(&commit).join(&e.path).is_file())
        })
        .collect();
    let total: u64 = todo.iter().map(|e| e.checksum().0).sum();
    let bar = crate::progress::bar(total, crate::progress::Unit::Bytes, name.to_string());
    for entry in todo {
        let (size, sum) = entry.checksum();
        if sum.etag().is_empty() {
            return Err(user(format!(
                "{name}: the hub's listing gives no hash for {}: cannot verify it",
                entry.path
            )));
        }
        bar.set_message(entry.path.clone());
        let url = format!("{endpoint}/{name}/resolve/{commit}/{}", entry.path);
        let tmp = repo.incomplete(sum.etag())?;
        let got = client.download(&url, size, &sum, &tmp, &bar);
        if let Err(e) = got {
            let _ = std::fs::remove_file(&tmp);
            return Err(download_error(e, name, revision, &endpoint));
        }
        if let Err(e) = repo.store(&commit, &entry.path, sum.etag(), &tmp) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    }
    bar.finish_and_clear();
    repo.write_ref(revision, &commit)?;
    Ok(repo.snapshot(&commit))
}

/// A revision as one URL path segment (`refs/pr/1` -> `refs%2Fpr%2F1`).
fn url_segment(revision: &str) -> String {
    revision.replace('%', "%25").replace('/', "%2F")
}

/// config.json, the weights (single safetensors, else the safetensors index and its shards,
/// else pytorch_model.bin) and the tokenizer files the listing has.
fn needed_files(listing: &[TreeEntry]) -> Result<Vec<&TreeEntry>, String> {
    let file = |path: &str| listing.iter().find(|e| e.kind == "file" && e.path == path);
    let config = file("config.json").ok_or("the repository has no config.json")?;
    let mut out = vec![config];
    if let Some(single) = file("model.safetensors") {
        out.push(single);
    } else if let Some(index) = file("model.safetensors.index.json") {
        out.push(index);
        // The shards are named model-0000i-of-0000n.safetensors; the index names the same.
        out.extend(listing.iter().filter(|e| {
            e.kind == "file"
                && e.path.starts_with("model-")
                && e.path.ends_with(".safetensors")
                && !e.path.contains('/')
        }));
    } else if let Some(bin) = file("pytorch_model.bin") {
        out.push(bin);
    } else {
        return Err(
            "the repository has no model.safetensors, model.safetensors.index.json or pytorch_model.bin"
                .into(),
        );
    }
    out.extend(TOKENIZER_FILES.iter().filter_map(|f| file(f)));
    Ok(out)
}

/// A failed hub request as one line: what failed and what to do.
fn explain(e: GetError, name: &str, revision: &str, endpoint: &str) -> anyhow::Error {
    match e {
        GetError::Transport { url, message } => user(format!(
            "GET {url} failed ({message}): the hub {endpoint} is not reachable; set HF_ENDPOINT to a reachable hub or mirror, or fetch {name} where the hub is reachable and run here with HF_HUB_OFFLINE=1"
        )),
        GetError::TooManyRedirects { url } => user(format!("GET {url}: more than 10 redirects")),
        GetError::Status { url, status, code } => {
            let why = match (status, code.as_deref()) {
                (_, Some("GatedRepo")) | (403, _) => format!(
                    "{name} is gated: accept its terms on the hub and set HF_TOKEN (or log in with `hf auth login`) to a token with access"
                ),
                (_, Some("RevisionNotFound")) => format!(
                    "{name} has no revision {revision:?}: give an existing branch, tag or commit with --revision"
                ),
                (_, Some("RepoNotFound")) | (401 | 404, _) => format!(
                    "no model {name} on {endpoint}: check the name; for a private model set HF_TOKEN to a token with access"
                ),
                _ => format!("the hub {endpoint} answered HTTP {status}; try again later"),
            };
            user(format!("GET {url}: HTTP {status}: {why}"))
        }
    }
}

fn download_error(e: DownloadError, name: &str, revision: &str, endpoint: &str) -> anyhow::Error {
    match e {
        DownloadError::Get(e) => explain(e, name, revision, endpoint),
        DownloadError::Io { url, message } => {
            user(format!("GET {url} failed: {message}: run again"))
        }
        DownloadError::Size { url, got, want } => user(format!(
            "{url}: size mismatch: received {got} bytes, the hub lists {want}: the download is corrupt or incomplete and was not kept; run again"
        )),
        DownloadError::Checksum {
            url,
            kind,
            got,
            want,
        } => user(format!(
            "{url}: checksum mismatch: {kind} {got}, the hub lists {want}: the download is corrupt and was not kept; run again"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_and_paths() {
        for id in [
            "bert-base-uncased",
            "google-bert/bert-base-uncased",
            "org/x.y_z-1",
        ] {
            assert!(is_hub_id(id), "{id}");
        }
        for not in [
            "./x",
            "/abs/path",
            "a/b/c",
            "",
            "org/",
            ".hidden",
            "a b",
            "../x",
        ] {
            assert!(!is_hub_id(not), "{not}");
        }
    }

    #[test]
    fn sharded_safetensors_are_fetched_with_their_index() {
        let entry = |path: &str| TreeEntry {
            kind: "file".into(),
            path: path.into(),
            size: 1,
            oid: "ab".into(),
            lfs: None,
        };
        let listing = vec![
            entry("config.json"),
            entry("model.safetensors.index.json"),
            entry("model-00001-of-00002.safetensors"),
            entry("model-00002-of-00002.safetensors"),
            entry("pytorch_model.bin"),
            entry("vocab.txt"),
            entry("README.md"),
        ];
        let got: Vec<&str> = needed_files(&listing)
            .unwrap()
            .iter()
            .map(|e| e.path.as_str())
            .collect();
        assert_eq!(
            got,
            [
                "config.json",
                "model.safetensors.index.json",
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
                "vocab.txt"
            ]
        );
        assert!(needed_files(&listing[4..]).is_err(), "no config.json");
    }
}
