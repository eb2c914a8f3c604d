//! The output rule every command that writes follows, for its `--out` (or `--report`):
//!
//! 1. Checked before any work: a file where a folder is expected (or the reverse), a parent
//!    that is a file or cannot be written, a file name without an accepted extension are
//!    user errors naming the flag and the path. Missing parent folders are made at write time.
//! 2. An existing non-empty target is refused unless `--overwrite`; a run directory is never
//!    replaced by anything but a run, and a run replaces only a run directory.
//! 3. A folder is written under a temporary name beside the target ([`super::temp`]) and
//!    swapped in only once complete ([`super::swap`]): a failed or killed write leaves the old
//!    output intact, and nothing of the old output stays beside the new.
//! 4. The check and each write first clean what killed writes to the same target left (and
//!    put back an old output that a killed swap left aside).

use super::{swap, temp};
use crate::error::user;
use crate::run_dir::RunDir;
use std::path::{Path, PathBuf};

/// What a command writes at its output path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A folder written as a whole (an embeddings folder, a report, a checkpoint, ...).
    Folder,
    /// A run directory (`heal finetune`).
    Run,
    /// A file whose name ends in one of these extensions (lower case, without the dot).
    File(&'static [&'static str]),
}

/// A checked output path: what [`Output::check`] let through.
#[derive(Clone, Debug)]
pub struct Output {
    flag: &'static str,
    path: PathBuf,
    kind: Kind,
    overwrite: bool,
}

/// Whether `path` is a folder with something in it, or a file.
fn occupied(path: &Path) -> bool {
    match path.symlink_metadata() {
        Err(_) => false,
        Ok(m) if m.is_dir() => std::fs::read_dir(path).map_or(true, |mut d| d.next().is_some()),
        Ok(_) => true,
    }
}

/// The folder `path` is in ("." for a bare name).
fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl Output {
    /// Checks `path`, given by `flag`, as an output of `kind` (rules 1 and 2), before any work.
    pub fn check(
        flag: &'static str,
        path: &Path,
        kind: Kind,
        overwrite: bool,
    ) -> anyhow::Result<Output> {
        let out = Output {
            flag,
            path: path.to_path_buf(),
            kind,
            overwrite,
        };
        // A killed write's repair first: an old output left aside counts as there.
        temp::clean_leftovers(path);
        out.check_kind()?;
        out.check_parent()?;
        if occupied(path) && !overwrite {
            let what = match (kind, RunDir::at(path).is_finished()) {
                (_, true) => "a finished run",
                (Kind::File(_), false) => "a file",
                _ => "files",
            };
            return Err(user(format!(
                "{flag} {}: already holds {what}: choose another {flag}, or pass --overwrite to replace it",
                path.display()
            )));
        }
        Ok(out)
    }

    /// Rule 1 and the kinds of rule 2; checked again just before a swap.
    fn check_kind(&self) -> anyhow::Result<()> {
        let (flag, path) = (self.flag, self.path.display());
        let meta = self.path.symlink_metadata().ok();
        let is_dir = meta.as_ref().is_some_and(|m| m.is_dir());
        match self.kind {
            Kind::File(extensions) => {
                let ext = self
                    .path
                    .extension()
                    .map(|e| e.to_string_lossy().to_ascii_lowercase());
                if !ext.is_some_and(|e| extensions.contains(&e.as_str())) {
                    return Err(user(format!(
                        "{flag} {path}: give a file name ending in .{}",
                        extensions.join(" or .")
                    )));
                }
                if is_dir {
                    return Err(user(format!(
                        "{flag} {path}: is a folder, not a file: give a file name"
                    )));
                }
            }
            Kind::Folder | Kind::Run => {
                if meta.is_some() && !is_dir {
                    return Err(user(format!(
                        "{flag} {path}: is a file, not a folder: give another {flag}"
                    )));
                }
                let is_run = RunDir::is_run(&self.path);
                if self.kind == Kind::Folder && is_run {
                    return Err(user(format!(
                        "{flag} {path}: is a run directory (it holds run.json), which this output would replace: give another {flag}"
                    )));
                }
                // Without --overwrite a full folder is refused as full (below); with it, only
                // a run (run.json, or at least result.json) is replaced by a run.
                let run_like = is_run || RunDir::at(&self.path).is_finished();
                if self.kind == Kind::Run && self.overwrite && !run_like && occupied(&self.path) {
                    return Err(user(format!(
                        "{flag} {path}: holds files but is not a run directory (no run.json): give another {flag} (--overwrite replaces only a run)"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The nearest existing ancestor must be a folder this process can write in.
    fn check_parent(&self) -> anyhow::Result<()> {
        let parent = parent(&self.path);
        let Some(existing) = parent.ancestors().find(|a| {
            let a = if a.as_os_str().is_empty() {
                Path::new(".")
            } else {
                a
            };
            a.symlink_metadata().is_ok()
        }) else {
            return Ok(());
        };
        let existing = if existing.as_os_str().is_empty() {
            Path::new(".")
        } else {
            existing
        };
        let bad = |why: &str| {
            Err(user(format!(
                "{} {}: {} {why}: give another {}",
                self.flag,
                self.path.display(),
                existing.display(),
                self.flag
            )))
        };
        if !existing.is_dir() {
            return bad("is a file, not a folder");
        }
        if !writable(existing) {
            return bad("cannot be written to");
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the target holds something now, so that writing replaces it.
    pub fn occupied(&self) -> bool {
        occupied(&self.path)
    }

    /// Just before writing: makes the target's missing parent folders and cleans what killed
    /// writes to the target left beside it (rule 4).
    pub fn begin(&self) -> anyhow::Result<()> {
        let parent = parent(&self.path);
        std::fs::create_dir_all(&parent).map_err(|e| {
            user(format!(
                "{} {}: cannot create {} ({e})",
                self.flag,
                self.path.display(),
                parent.display()
            ))
        })?;
        temp::clean_leftovers(&self.path);
        Ok(())
    }

    /// A temporary folder beside the target, cleaned of dead writers' leftovers first: fill
    /// it, then [`Staged::commit`] it; dropped uncommitted, it is removed.
    pub fn stage(&self) -> anyhow::Result<Staged> {
        self.begin()?;
        let dir = temp::fresh_staging(&self.path)?;
        Ok(Staged {
            dir,
            output: self.clone(),
            committed: false,
        })
    }

    /// Writes the folder through `fill(temporary folder)` and swaps it in when `fill` is done.
    pub fn write_dir(&self, fill: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let staged = self.stage()?;
        fill(staged.path())?;
        staged.commit()
    }
}

/// Whether this process may create entries in folder `dir`.
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// A new output being written under its temporary name (see [`Output::stage`]).
#[derive(Debug)]
pub struct Staged {
    dir: PathBuf,
    output: Output,
    committed: bool,
}

impl Staged {
    /// The temporary folder to fill.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Swaps the complete new output in for the target. The target's kind is checked again
    /// first: something else may have appeared there while the output was made.
    pub fn commit(mut self) -> anyhow::Result<()> {
        self.output.check_kind()?;
        if self.output.occupied() && !self.output.overwrite {
            return Err(user(format!(
                "{} {}: appeared while this output was made: choose another {}, or pass --overwrite to replace it",
                self.output.flag,
                self.output.path.display(),
                self.output.flag
            )));
        }
        swap::replace(&self.dir, &self.output.path)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
