//! A cell's claim: which process is running it, so that concurrent `heal sweep` processes on one
//! folder, Slurm array tasks and reruns (on any number of machines sharing the folder) never run
//! a cell twice at once.
//!
//! Claims of cell NAME are numbered files `SWEEP/claims/NAME/<k>.json`, each holding its
//! [`Claimant`]; the highest number is the cell's claim. A process claims the cell by creating
//! number 0 (none yet) or the number after a claim that is released or whose process is dead.
//! A file appears with its whole content at once (written under a temporary name, then
//! hard-linked), and a link fails when the name exists, so of several processes after one
//! number exactly one gets it. Numbers only grow and the highest is never removed, so a process
//! that looked earlier and asks for a number that someone has since passed sees, on looking
//! again, a higher number than its own, and withdraws before it runs anything: taking over a
//! stale claim is as race-free as a first claim.
//!
//! Whether a claimant is alive: on the same machine (same host name, boot and pid namespace)
//! its pid is checked at once, with the process's start time so that a reused pid does not
//! pass; from another machine, by the heartbeat: the claimant touches its file every
//! [`HEARTBEAT`], and a file untouched for [`STALE_AFTER`] belongs to a dead process.

use crate::error::user;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The folder of claims under a sweep directory.
pub const CLAIMS_DIR: &str = "claims";
/// How often a claimant touches its claim file.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// A claim from another machine untouched for this long is taken to be a dead process's: 20
/// missed heartbeats, enough for a file server that stalls or a node suspended for minutes and
/// for clocks a few minutes apart, and short beside a cell's time on a real model.
pub const STALE_AFTER: Duration = Duration::from_secs(600);
/// How many times a claim is looked at again when other processes change it meanwhile.
const ATTEMPTS: usize = 16;

/// Who claimed a cell (the content of a claim file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claimant {
    pub host: String,
    pub pid: u32,
    /// The process's start in clock ticks after boot (/proc/PID/stat, field 22).
    pub pid_start: Option<u64>,
    /// /proc/sys/kernel/random/boot_id: a rebooted machine's pids are all new.
    pub boot_id: Option<String>,
    /// The pid namespace (/proc/self/ns/pid): containers on one host share its name.
    pub pid_namespace: Option<String>,
    /// Seconds since the Unix epoch when the claim was made.
    pub started: u64,
    /// Written when the cell ended (finished or failed): the next process may claim it.
    #[serde(default)]
    pub released: bool,
}

impl Claimant {
    /// This process.
    fn me() -> &'static Claimant {
        static ME: OnceLock<Claimant> = OnceLock::new();
        ME.get_or_init(|| {
            let read = |p: &str| {
                std::fs::read_to_string(p)
                    .ok()
                    .map(|s| s.trim().to_string())
            };
            let pid = std::process::id();
            Claimant {
                host: read("/proc/sys/kernel/hostname")
                    .or_else(|| std::env::var("HOSTNAME").ok())
                    .unwrap_or_else(|| "unknown".into()),
                pid,
                pid_start: process_start(pid).map(|(start, _)| start),
                boot_id: read("/proc/sys/kernel/random/boot_id"),
                pid_namespace: std::fs::read_link("/proc/self/ns/pid")
                    .ok()
                    .map(|p| p.to_string_lossy().into_owned()),
                started: 0,
                released: false,
            }
        })
    }

    /// Whether this claimant's pid can be checked from here: the same machine and namespace.
    fn is_local(&self) -> bool {
        let me = Claimant::me();
        me.boot_id.is_some()
            && self.host == me.host
            && self.boot_id == me.boot_id
            && self.pid_namespace == me.pid_namespace
    }
}

/// A live claim held by another process.
#[derive(Debug, Clone)]
pub struct Holder {
    /// None: a claim file that cannot be read, taken as live until its heartbeat is stale.
    pub claimant: Option<Claimant>,
    /// Since the claim file was last touched (the claimant's last heartbeat).
    pub heartbeat: Option<Duration>,
    pub file: PathBuf,
}

impl std::fmt::Display for Holder {
    /// `host node7, pid 4242, since 2026-12-01 06:40:01 UTC`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(c) = &self.claimant else {
            return write!(
                f,
                "an unreadable claim {} (taken as live until untouched for {} minutes)",
                self.file.display(),
                STALE_AFTER.as_secs() / 60
            );
        };
        let since = chrono::DateTime::from_timestamp(c.started as i64, 0).map_or_else(
            || "?".into(),
            |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        );
        write!(f, "host {}, pid {}, since {since}", c.host, c.pid)
    }
}

/// The outcome of [`acquire`].
pub enum Acquired {
    /// This process holds the cell's claim until the [`Claim`] is dropped.
    Mine(Claim),
    /// Another live process does.
    Elsewhere(Holder),
}

/// A claim held by this process: a heartbeat thread keeps it fresh; dropping it (when the cell
/// ends, by success, failure, error or panic) stops the heartbeat and marks the claim released.
pub struct Claim {
    path: PathBuf,
    claimant: Claimant,
    stop: Option<mpsc::Sender<()>>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
        // Our number stays (numbers only grow); its content says the cell is free again. A
        // file gone means another process misjudged us and took over: nothing to release.
        if self.path.is_file() {
            let released = Claimant {
                released: true,
                ..self.claimant.clone()
            };
            let tmp = temp_path(&self.path);
            let done = write_file(&tmp, &released).and_then(|_| std::fs::rename(&tmp, &self.path));
            if let Err(e) = done {
                let _ = std::fs::remove_file(&tmp);
                log::warn!("{}: cannot release the claim ({e})", self.path.display());
            }
        }
    }
}

/// The folder of cell `cell`'s claims.
fn claims_of(sweep_dir: &Path, cell: &str) -> PathBuf {
    sweep_dir.join(CLAIMS_DIR).join(cell)
}

fn numbered(dir: &Path, k: u64) -> PathBuf {
    dir.join(format!("{k}.json"))
}

/// A name no other process or thread uses, beside `path`.
fn temp_path(path: &Path) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let me = Claimant::me();
    path.with_file_name(format!(".tmp-{}-{}-{nanos}", me.host, me.pid))
}

fn write_file(path: &Path, c: &Claimant) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(&serde_json::to_vec_pretty(c).unwrap_or_default())?;
    f.sync_all()
}

/// The claim numbers in `dir`, ascending (missing folder: none).
fn numbers(dir: &Path) -> std::io::Result<Vec<u64>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(k) = name.strip_suffix(".json").and_then(|s| s.parse().ok()) {
            out.push(k);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// A claim file's claimant (None when unreadable: being written without hard links) and age.
/// Err(NotFound) when it has gone.
fn read_claim(path: &Path) -> std::io::Result<(Option<Claimant>, Option<Duration>)> {
    let text = std::fs::read(path)?;
    let age = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .map(|t| SystemTime::now().duration_since(t).unwrap_or_default());
    Ok((serde_json::from_slice(&text).ok(), age))
}

/// `pid`'s start time and whether it has ended (a zombie), from /proc; None when there is no
/// such process (or no /proc).
fn process_start(pid: u32) -> Option<(u64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: field 3 is
    // the state, field 22 the start time.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ended = matches!(fields.first(), Some(&"Z") | Some(&"X"));
    Some((fields.get(19)?.parse().ok()?, ended))
}

/// Whether the claim in a file is held by a live process.
fn is_live(claimant: &Option<Claimant>, age: Option<Duration>) -> bool {
    match claimant {
        Some(c) if c.released => false,
        Some(c) if c.is_local() => match process_start(c.pid) {
            Some((start, ended)) => !ended && c.pid_start.is_none_or(|s| s == start),
            None => false,
        },
        // Another machine's, or a file still being written: the heartbeat decides.
        _ => age.is_none_or(|a| a < STALE_AFTER),
    }
}

/// The live claim on `cell`, if any (reads only; for `--status`).
pub fn holder(sweep_dir: &Path, cell: &str) -> Option<Holder> {
    let dir = claims_of(sweep_dir, cell);
    let file = numbered(&dir, *numbers(&dir).ok()?.last()?);
    let (claimant, age) = read_claim(&file).ok()?;
    is_live(&claimant, age).then_some(Holder {
        claimant,
        heartbeat: age,
        file,
    })
}

/// Creates claim file number `k` in `dir` with `c`, whole or not at all. Ok(false) when the
/// number is taken.
fn create(dir: &Path, k: u64, c: &Claimant) -> std::io::Result<bool> {
    let path = numbered(dir, k);
    let tmp = temp_path(&path);
    write_file(&tmp, c)?;
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        // A file system without hard links: create the name exclusively, then fill it (a
        // reader meanwhile finds it unreadable and fresh, so live).
        Err(_) => match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(&serde_json::to_vec_pretty(c).unwrap_or_default())?;
                f.sync_all()?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        },
    }
}

/// Claims cell `cell` of the sweep in `sweep_dir` for this process, unless another live process
/// holds it.
pub fn acquire(sweep_dir: &Path, cell: &str) -> anyhow::Result<Acquired> {
    let dir = claims_of(sweep_dir, cell);
    let io = |e: std::io::Error| user(format!("{}: cannot claim the cell ({e})", dir.display()));
    std::fs::create_dir_all(&dir).map_err(io)?;
    let me = Claimant {
        started: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        ..Claimant::me().clone()
    };
    for attempt in 0..ATTEMPTS {
        let next = match numbers(&dir).map_err(io)?.last() {
            None => 0,
            Some(&k) => match read_claim(&numbered(&dir, k)) {
                // Released, or its process is dead: ours to take over.
                Ok((claimant, age)) if !is_live(&claimant, age) => k + 1,
                // Unreadable and fresh: being written (without hard links); look again, a
                // few times, before taking it as held.
                Ok((None, _)) if attempt < 3 => {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                Ok((claimant, age)) => {
                    return Ok(Acquired::Elsewhere(Holder {
                        claimant,
                        heartbeat: age,
                        file: numbered(&dir, k),
                    }))
                }
                // Replaced under us: look again.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(e)),
            },
        };
        if !create(&dir, next, &me).map_err(io)? {
            continue;
        }
        // A claim numbered above ours means we looked before someone else took the cell:
        // withdraw before running anything.
        let now = numbers(&dir).map_err(io)?;
        if now.last() != Some(&next) {
            let _ = std::fs::remove_file(numbered(&dir, next));
            continue;
        }
        for &k in now.iter().filter(|&&k| k < next) {
            let _ = std::fs::remove_file(numbered(&dir, k));
        }
        return Ok(Acquired::Mine(Claim::start(numbered(&dir, next), me)));
    }
    Err(anyhow::anyhow!(
        "{}: the cell's claim kept changing while this process tried to take it; rerun",
        dir.display()
    ))
}

impl Claim {
    /// Starts the heartbeat on the claim file at `path`.
    fn start(path: PathBuf, claimant: Claimant) -> Claim {
        let (stop, stopped) = mpsc::channel::<()>();
        let file = path.clone();
        let heartbeat = std::thread::Builder::new()
            .name("claim-heartbeat".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT) {
                    let touched = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&file)
                        .and_then(|f| f.set_modified(SystemTime::now()));
                    if let Err(e) = touched {
                        log::warn!("{}: cannot refresh the claim ({e})", file.display());
                    }
                }
            })
            .ok();
        Claim {
            path,
            claimant,
            stop: Some(stop),
            heartbeat,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_at_a_time_then_released_for_the_next() {
        let tmp = tempfile::tempdir().unwrap();
        let Acquired::Mine(first) = acquire(tmp.path(), "c").unwrap() else {
            panic!("a cell without claims is free")
        };
        // This process is alive: its own claim is respected.
        assert!(matches!(
            acquire(tmp.path(), "c").unwrap(),
            Acquired::Elsewhere(_)
        ));
        assert!(holder(tmp.path(), "c").is_some());
        drop(first);
        assert!(holder(tmp.path(), "c").is_none());
        let Acquired::Mine(_second) = acquire(tmp.path(), "c").unwrap() else {
            panic!("a released claim is free")
        };
        // The second claim is number 1 and the released number 0 is gone.
        let dir = claims_of(tmp.path(), "c");
        assert_eq!(numbers(&dir).unwrap(), vec![1]);
    }

    #[test]
    fn a_dead_local_pid_or_a_reused_one_is_stale() {
        let me = Claimant::me().clone();
        let start = me.pid_start.expect("/proc on Linux");
        let live = Some(me.clone());
        assert!(is_live(&live, Some(Duration::ZERO)));
        let reused = Some(Claimant {
            pid_start: Some(start + 1),
            ..me.clone()
        });
        assert!(!is_live(&reused, Some(Duration::ZERO)));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let dead = Some(Claimant {
            pid: dead_pid,
            ..me.clone()
        });
        assert!(!is_live(&dead, Some(Duration::ZERO)));
        let released = Some(Claimant {
            released: true,
            ..me.clone()
        });
        assert!(!is_live(&released, Some(Duration::ZERO)));
        let remote = Some(Claimant {
            host: "elsewhere".into(),
            ..me
        });
        assert!(is_live(&remote, Some(STALE_AFTER / 2)));
        assert!(!is_live(&remote, Some(STALE_AFTER * 2)));
    }
}
