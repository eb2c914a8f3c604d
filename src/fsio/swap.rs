//! The swap: a complete new output, written under its temporary name, takes the target's place,
//! and the old output goes. A reader (or a kill) sees the old output or the new one, never a mix.

use super::temp;
use anyhow::Context;
use std::path::Path;

/// Exchanges two paths in one step (Linux's renameat2 with RENAME_EXCHANGE). Err with the OS
/// error where the filesystem (or the kernel) cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (a, b) = (c(a)?, c(b)?);
    // The raw system call: glibc before 2.28 has no wrapper.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// Whether an exchange failed because the filesystem or kernel has none (then two renames do).
fn unsupported(e: &std::io::Error) -> bool {
    #[cfg(target_os = "linux")]
    if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) {
        return true;
    }
    e.kind() == std::io::ErrorKind::Unsupported
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    if path.is_dir() && !path.is_symlink() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

/// Moves `staged` (complete) to `target`, replacing whatever is there. A folder is exchanged
/// with the old one in one step, or, where the filesystem refuses, moved in by two renames
/// whose window [`temp::clean_leftovers`] repairs after a kill; the old output is removed last
/// (a failure to remove it only leaves a leftover for the next write to clean).
pub fn replace(staged: &Path, target: &Path) -> anyhow::Result<()> {
    let moving = || format!("moving {} into place", target.display());
    let Ok(meta) = target.symlink_metadata() else {
        return std::fs::rename(staged, target).with_context(moving);
    };
    if !meta.is_dir() {
        // A file is replaced by one rename already.
        return std::fs::rename(staged, target).with_context(moving);
    }
    let old = match exchange(staged, target) {
        Ok(()) => staged.to_path_buf(),
        Err(e) if unsupported(&e) => {
            let old = temp::old(target);
            std::fs::rename(target, &old).with_context(moving)?;
            std::fs::rename(staged, target).with_context(moving)?;
            old
        }
        Err(e) => return Err(e).with_context(moving),
    };
    if let Err(e) = remove_any(&old) {
        log::warn!(
            "{}: cannot remove the replaced output ({e}); the next write there removes it",
            old.display()
        );
    }
    Ok(())
}
