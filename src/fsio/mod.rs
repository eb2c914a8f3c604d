//! Writing files and folders so that a reader (or a kill) never sees half of one: a temporary
//! name beside the target, then a rename or a swap. `output.rs` is the rule each command's
//! `--out` follows, `temp.rs` the temporary names (and the cleaning of killed writes'), `swap.rs`
//! the replacement of a folder as a whole.

pub mod output;
pub mod swap;
pub mod temp;

pub use output::{Kind, Output};

use crate::error::user;
use anyhow::Context;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = temp::staging(path);
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// Pretty JSON, atomically.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Fills a folder through `fill(tmp_dir)` and then swaps it in at `dir` as a whole (an
/// existing `dir` is replaced only after the new one is complete). For folders a command makes
/// inside its own output (a run's checkpoint/, resume/, embeddings); a command's `--out`
/// itself goes through [`Output`].
pub fn write_dir_atomic(
    dir: &Path,
    fill: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    // Replacing is for a folder of the same kind. A file, or a run directory (another
    // command's results, checkpoints and all), is never swapped out for this folder.
    if dir.exists() && !dir.is_dir() {
        return Err(user(format!(
            "{}: is a file, not a folder: give another output path",
            dir.display()
        )));
    }
    if crate::run_dir::RunDir::is_run(dir) {
        return Err(user(format!(
            "{}: is a run directory (it holds run.json), which this output would replace: give another output path",
            dir.display()
        )));
    }
    let tmp = temp::fresh_staging(dir)?;
    if let Err(e) = fill(&tmp).and_then(|()| swap::replace(&tmp, dir)) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Reads a TOML file (`what` names it in errors: "config", "grid") into `T`. Every failure is
/// one line naming the file and, for a parse error, the line.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| user(format!("{}: cannot read the {what} ({e})", path.display())))?;
    toml::from_str(&text).map_err(|e| {
        let msg = e.message().replace('\n', " ");
        match e.span() {
            Some(s) => user(format!(
                "{}: line {}: {msg}",
                path.display(),
                text[..s.start].matches('\n').count() + 1
            )),
            None => user(format!("{}: {msg}", path.display())),
        }
    })
}
