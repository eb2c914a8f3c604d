//! heal's data cache: the folder where `heal data fetch NAME` puts a named dataset and where
//! `--data NAME` finds it (or fetches it first).

use super::fetch::{self, FetchOptions, HubDataset};
use crate::error::user;
use std::path::{Path, PathBuf};

/// The environment variable naming the data cache when no `--data-dir` is given.
pub const DATA_DIR_ENV: &str = "HEAL_DATA_DIR";
/// The record every fetch writes; a fetch swaps its folder in whole, so a folder with this file
/// is a complete copy.
const FETCHED_MARK: &str = "SOURCE.json";

/// The data cache folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataCache {
    pub dir: PathBuf,
}

impl DataCache {
    /// `--data-dir` when given, else `$HEAL_DATA_DIR`, else `~/.cache/heal/data`.
    pub fn open(data_dir: Option<&Path>) -> anyhow::Result<DataCache> {
        if let Some(dir) = data_dir {
            return Ok(DataCache {
                dir: dir.to_path_buf(),
            });
        }
        let non_empty = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
        if let Some(dir) = non_empty(DATA_DIR_ENV) {
            return Ok(DataCache { dir: dir.into() });
        }
        let home = non_empty("HOME").ok_or_else(|| {
            user(format!(
                "HOME is not set: name heal's data folder with --data-dir DIR or {DATA_DIR_ENV}"
            ))
        })?;
        Ok(DataCache {
            dir: PathBuf::from(home).join(".cache").join("heal").join("data"),
        })
    }

    /// Where the dataset called `name` lives in the cache.
    pub fn folder(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The folder of `d` in the cache, fetched there first (from `HF_ENDPOINT`) when it holds no
    /// complete copy; with `HF_HUB_OFFLINE` set, a missing copy is a user error instead.
    pub fn dataset(&self, d: &HubDataset) -> anyhow::Result<PathBuf> {
        let folder = self.folder(d.name);
        if is_fetched(&folder) {
            log::debug!("{}: {}", d.name, folder.display());
            return Ok(folder);
        }
        if folder.exists() {
            return Err(user(format!(
                "{}: exists but has no {FETCHED_MARK}, so heal did not fetch it: remove it, or run `heal data fetch {} --force`",
                folder.display(),
                d.name
            )));
        }
        if crate::hub::offline() {
            return Err(user(format!(
                "{}: not fetched ({} not found) and HF_HUB_OFFLINE is set: run `heal data fetch {}` where the hub is reachable, with the same --data-dir or {DATA_DIR_ENV}, then run again",
                d.name,
                folder.display(),
                d.name
            )));
        }
        let endpoint = fetch::endpoint_from_env();
        log::info!(
            "{}: not in heal's data folder {}: fetching it from {endpoint}",
            d.name,
            self.dir.display()
        );
        let opts = FetchOptions {
            out: folder.clone(),
            force: false,
            endpoint,
        };
        match fetch::fetch(d, &opts) {
            Ok(_) => Ok(folder),
            // Another process (a sweep cell, say) may have finished the same fetch first.
            Err(_) if is_fetched(&folder) => Ok(folder),
            Err(e) => Err(e),
        }
    }
}

/// Whether `folder` holds a complete copy written by `heal data fetch`.
pub fn is_fetched(folder: &Path) -> bool {
    folder.join(FETCHED_MARK).is_file()
}

/// The file or folder `--data` names: `data` itself when it exists or is no name `heal data
/// fetch` knows, else that dataset's folder in the data cache (see [`DataCache::dataset`]).
pub fn resolve(data: &str, data_dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = Path::new(data);
    match fetch::find(data) {
        Some(d) if !path.exists() => DataCache::open(data_dir)?.dataset(d),
        _ => Ok(path.to_path_buf()),
    }
}
