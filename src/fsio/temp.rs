//! The temporary names every write uses beside its target, and the cleaning of those a killed
//! process left.
//!
//! One pattern, in the target's own folder (so that a rename never crosses filesystems):
//!
//! ```text
//! .NAME.heal-tmp-HOST-PID    the new output being written (or, after a swap, the old one
//!                            about to be removed)
//! .NAME.heal-old-HOST-PID    the old output, moved aside by the two-rename fallback of a swap
//! ```
//!
//! HOST and PID name the writing process, so a later write can tell its own leftovers from a
//! live writer's: on the same host, a PID that no longer runs left garbage; another host's
//! names (a shared filesystem) and live processes' are left alone.

use std::path::{Path, PathBuf};

const TMP: &str = "heal-tmp";
const OLD: &str = "heal-old";

/// The machine's name as temporary and event file names carry it: the kernel's, else
/// $HOSTNAME, else "localhost"; never with a path separator.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().replace(['/', '\\'], "-"))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn named(path: &Path, kind: &str) -> PathBuf {
    path.with_file_name(format!(
        ".{}.{kind}-{}-{}",
        file_name(path),
        host_name(),
        std::process::id()
    ))
}

/// This process's temporary name for a new `path`.
pub fn staging(path: &Path) -> PathBuf {
    named(path, TMP)
}

/// An empty folder under this process's temporary name for a new `path` (its missing parents
/// made), after cleaning what killed writes to `path` left: where a folder output is filled
/// before the swap.
pub fn fresh_staging(path: &Path) -> anyhow::Result<PathBuf> {
    clean_leftovers(path);
    let dir = staging(path);
    if dir.symlink_metadata().is_ok() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// This process's name for the old `path` while a two-rename swap replaces it.
pub fn old(path: &Path) -> PathBuf {
    named(path, OLD)
}

/// A leftover beside a target: which kind, and who wrote it.
#[derive(Debug, PartialEq, Eq)]
struct Leftover {
    old: bool,
    host: String,
    pid: u32,
}

/// Parses `entry` (a file name in the target's folder) as a temporary name of `target_name`.
fn parse(entry: &str, target_name: &str) -> Option<Leftover> {
    let rest = entry.strip_prefix('.')?.strip_prefix(target_name)?;
    let (old, rest) = if let Some(r) = rest.strip_prefix(&format!(".{TMP}-")) {
        (false, r)
    } else {
        (true, rest.strip_prefix(&format!(".{OLD}-"))?)
    };
    let (host, pid) = rest.rsplit_once('-')?;
    Some(Leftover {
        old,
        host: host.to_string(),
        pid: pid.parse().ok()?,
    })
}

/// Whether process `pid` runs on this machine.
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // Signal 0 checks only that the process exists (EPERM: it does, but is someone else's).
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn remove(path: &Path) {
    let removed = if path.is_dir() && !path.is_symlink() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    if let Err(e) = removed {
        log::warn!("{}: cannot remove a leftover ({e})", path.display());
    }
}

/// Cleans what dead processes of this host left beside `target`: their new outputs are
/// removed, and an old output that a killed swap left only under its temporary name is put
/// back (when `target` is missing), or removed (when the swap had finished). This process's
/// own names count as dead: nothing of this process is in flight when it starts a write.
pub fn clean_leftovers(target: &Path) {
    let name = file_name(target);
    if name.is_empty() {
        return;
    }
    let folder = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return;
    };
    let host = host_name();
    let own = std::process::id();
    let mut leftovers: Vec<(PathBuf, Leftover)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let l = parse(&e.file_name().to_string_lossy(), &name)?;
            Some((e.path(), l))
        })
        .filter(|(_, l)| l.host == host && (l.pid == own || !alive(l.pid)))
        .collect();
    // The old outputs first: one put back must not be taken for garbage below.
    leftovers.sort_by_key(|(_, l)| !l.old);
    for (path, l) in leftovers {
        let target_there = target.symlink_metadata().is_ok();
        if l.old && !target_there {
            match std::fs::rename(&path, target) {
                Ok(()) => log::warn!(
                    "{}: put back from {} (a killed write had moved it aside)",
                    target.display(),
                    path.display()
                ),
                Err(e) => log::warn!("{}: cannot put back ({e})", path.display()),
            }
        } else {
            remove(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        let p = Path::new("/x/run-a.b");
        let s = staging(p);
        let got = parse(&s.file_name().unwrap().to_string_lossy(), "run-a.b").unwrap();
        assert_eq!(
            got,
            Leftover {
                old: false,
                host: host_name(),
                pid: std::process::id()
            }
        );
        let o = old(p);
        assert!(
            parse(&o.file_name().unwrap().to_string_lossy(), "run-a.b")
                .unwrap()
                .old
        );
        // Another target's names, and names of the target itself, are not its leftovers.
        assert_eq!(parse(".run.heal-tmp-h-1", "run-a.b"), None);
        assert_eq!(parse(".run-a.b.heal-tmp-h-1", "run"), None);
        assert_eq!(parse("run-a.b", "run-a.b"), None);
        assert_eq!(
            parse(".r.heal-tmp-my-host-12", "r"),
            Some(Leftover {
                old: false,
                host: "my-host".into(),
                pid: 12
            })
        );
    }

    #[test]
    fn this_process_is_alive() {
        assert!(alive(std::process::id()));
    }
}
