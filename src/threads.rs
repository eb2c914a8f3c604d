//! `--threads` (and a TOML `threads` key): how many threads libtorch may use. libtorch panics
//! on 0 and crashes on absurd counts, so every entry point checks the count against this
//! machine before anything starts.

use crate::error::user;

/// The most threads heal hands libtorch: four per core, room for hyper-threads and for
/// oversubscribing on purpose, far below what makes libtorch's pool fail.
pub fn most() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) * 4
}

/// Checks a thread count given as `flag` (`--threads`, or a file's `threads` key).
pub fn check(flag: &str, n: usize) -> anyhow::Result<()> {
    let most = most();
    if (1..=most).contains(&n) {
        Ok(())
    } else {
        Err(user(format!(
            "{flag} {n}: give a thread count from 1 to {most} (4 per core on this machine)"
        )))
    }
}

/// Sets libtorch's intra-op thread count after [`check`]ing it.
pub fn set(flag: &str, n: usize) -> anyhow::Result<()> {
    check(flag, n)?;
    // Within 1..=most, which is far below i32::MAX.
    tch::set_num_threads(n as i32);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_one_to_four_per_core() {
        assert!(check("--threads", 0).is_err());
        assert!(check("--threads", 1).is_ok());
        assert!(check("--threads", most()).is_ok());
        let err = check("--threads", most() + 1).unwrap_err().to_string();
        assert!(err.starts_with("--threads "), "{err}");
        assert!(err.contains(&format!("from 1 to {}", most())), "{err}");
    }
}
