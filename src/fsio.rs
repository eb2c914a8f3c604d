//! Atomic file writes: a temporary name in the same folder, then a rename, so that a reader
//! (or a crash) never sees half a file.

use crate::error::user;
use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};

fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = temp_name(path);
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

/// Fills a folder through `fill(tmp_dir)` and then swaps it in at `dir` in one rename
/// (an existing `dir` is replaced only after the new one is complete).
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
    let tmp = temp_name(dir);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dir.exists() {
        let old = temp_name(&dir.with_file_name(format!(
            "{}-old",
            dir.file_name().unwrap_or_default().to_string_lossy()
        )));
        std::fs::rename(dir, &old)?;
        std::fs::rename(&tmp, dir)?;
        std::fs::remove_dir_all(&old)?;
    } else {
        std::fs::rename(&tmp, dir)
            .with_context(|| format!("moving {} into place", dir.display()))?;
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
