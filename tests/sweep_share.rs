//! Sweeps that several processes and machines share (issue 17, item 3): plan.json relative to
//! its folder (moved and copied sweeps are their own), per-cell claims (two concurrent sweeps
//! run each cell once; a killed claimant's cell is taken over; another host's claim is
//! respected while its heartbeat is fresh), a different grid refused unless --replan, and a grid
//! checked against its model's depth before any cell runs.

mod common;

use common::{heal_bin, heal_ok, tiny_grid};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// tiny-bert on the tiny data, one epoch a cell unless `epochs` says otherwise; `axes` beside
/// the model axis.
fn grid(dir: &Path, epochs: usize, axes: &str) -> PathBuf {
    tiny_grid(
        dir,
        &format!("epochs = {epochs}\nbatch-size = 8\ndevice = \"cpu\"\nthreads = 1"),
        axes,
    )
}

fn heal(args: &[&str]) -> Output {
    Command::new(heal_bin()).args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn cell_names(sweep: &Path) -> Vec<String> {
    json(&sweep.join("plan.json"))["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn status(sweep: &Path) -> String {
    String::from_utf8_lossy(&heal_ok(&["sweep", "--out", s(sweep), "--status"]).stdout).into_owned()
}

/// A bad input: exit 2, one line on stderr.
fn refused(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    err
}

/// The cells a sweep process started, from its log lines `cell I/N NAME  (elapsed ...)`.
fn started_cells(log: &str) -> BTreeSet<String> {
    log.lines()
        .filter(|l| l.contains("(elapsed"))
        .filter_map(|l| {
            let rest = &l[l.find("] cell ")? + 7..];
            rest.split_whitespace().nth(1).map(str::to_string)
        })
        .collect()
}

#[test]
fn plan_paths_are_relative_so_moved_and_copied_sweeps_are_their_own() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid(tmp.path(), 1, "corrupt = [\"none\", \"all\"]");
    let first = tmp.path().join("first");
    heal_ok(&["sweep", "--config", s(&g), "--out", s(&first)]);
    let names = cell_names(&first);
    // plan.json names no path into the sweep folder: each run directory is cells/<name>.
    let plan = json(&first.join("plan.json"));
    for (cell, name) in plan["cells"].as_array().unwrap().iter().zip(&names) {
        assert_eq!(cell["config"]["out"], format!("cells/{name}"));
    }
    let text = std::fs::read_to_string(first.join("plan.json")).unwrap();
    assert!(!text.contains(s(&first)), "{text}");

    // Moved: every finished cell is found.
    let moved = tmp.path().join("moved");
    std::fs::rename(&first, &moved).unwrap();
    let st = status(&moved);
    assert!(st.contains("finished     2"), "{st}");
    // Copied, one cell removed from the copy: the copy reports its own cells.
    let copy = tmp.path().join("copy");
    let cp = Command::new("cp")
        .arg("-r")
        .arg(&moved)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(cp.success());
    std::fs::remove_dir_all(copy.join("cells").join(&names[1])).unwrap();
    let st = status(&copy);
    assert!(st.contains("finished     1"), "{st}");
    assert!(st.contains("left         1"), "{st}");
    assert!(status(&moved).contains("finished     2"));
    // --cell in the copy writes inside the copy only.
    let result = moved.join("cells").join(&names[1]).join("result.json");
    let before = std::fs::metadata(&result).unwrap().modified().unwrap();
    heal_ok(&["sweep", "--out", s(&copy), "--cell", "1"]);
    assert!(copy
        .join("cells")
        .join(&names[1])
        .join("result.json")
        .is_file());
    assert_eq!(
        std::fs::metadata(&result).unwrap().modified().unwrap(),
        before
    );
    assert!(!first.exists(), "nothing written where the sweep was made");

    // A plan.json of an earlier version, with absolute paths elsewhere, still reads: its cells
    // are this folder's.
    let old = tmp.path().join("old");
    std::fs::rename(&copy, &old).unwrap();
    let mut plan = json(&old.join("plan.json"));
    for c in plan["cells"].as_array_mut().unwrap() {
        let name = c["name"].as_str().unwrap().to_string();
        c["config"]["out"] = format!("/nonexistent/elsewhere/cells/{name}").into();
    }
    std::fs::write(old.join("plan.json"), plan.to_string()).unwrap();
    std::fs::remove_dir_all(old.join("cells").join(&names[0])).unwrap();
    assert!(status(&old).contains("finished     1"));
    heal_ok(&["sweep", "--out", s(&old), "--cell", "0"]);
    assert!(old
        .join("cells")
        .join(&names[0])
        .join("result.json")
        .is_file());
    assert!(!Path::new("/nonexistent").exists());
}

#[test]
fn a_grid_that_does_not_fit_its_model_fails_before_any_cell() {
    let tmp = tempfile::tempdir().unwrap();
    // tiny-bert has 2 layers: the third setting cannot be applied to it.
    for (axes, setting) in [
        (
            "corrupt = [\"none\", \"all\", \"layers:9\"]",
            "corrupt = \"layers:9\"",
        ),
        (
            "train = [\"full\", \"layers:top:3\"]",
            "train = \"layers:top:3\"",
        ),
    ] {
        let g = grid(tmp.path(), 1, axes);
        let out = tmp.path().join("sweep");
        let err = refused(&heal(&["sweep", "--config", s(&g), "--out", s(&out)]));
        assert!(err.contains(s(&g)), "{err}");
        assert!(err.contains(setting), "{err}");
        assert!(err.contains("2 layers") || err.contains("has 2"), "{err}");
        assert!(!out.exists(), "nothing written: {err}");
    }
}

#[test]
fn a_different_grid_is_refused_unless_replanned() {
    let tmp = tempfile::tempdir().unwrap();
    let g1 = grid(tmp.path(), 1, "corrupt = [\"none\", \"all\"]");
    let out = tmp.path().join("sweep");
    heal_ok(&["sweep", "--config", s(&g1), "--out", s(&out), "--plan"]);
    heal_ok(&["sweep", "--out", s(&out), "--cell", "0"]);
    let names = cell_names(&out);
    let plan_before = std::fs::read(out.join("plan.json")).unwrap();
    // The same grid again is the same sweep.
    heal_ok(&["sweep", "--config", s(&g1), "--out", s(&out), "--plan"]);

    // Two epochs a cell: another grid, refused, naming plan.json and what differs.
    let dir2 = tmp.path().join("g2");
    std::fs::create_dir(&dir2).unwrap();
    let g2 = grid(&dir2, 2, "corrupt = [\"none\", \"all\"]");
    for mode in ["--plan", "--slurm"] {
        let err = refused(&heal(&[
            "sweep",
            "--config",
            s(&g2),
            "--out",
            s(&out),
            mode,
        ]));
        assert!(err.contains(s(&out.join("plan.json"))), "{err}");
        assert!(err.contains("epochs 1 -> 2"), "{err}");
        assert!(err.contains("--replan"), "{err}");
    }
    let err = refused(&heal(&[
        "sweep",
        "--config",
        s(&g2),
        "--out",
        s(&out),
        "--cell",
        "1",
    ]));
    assert!(err.contains("epochs 1 -> 2"), "{err}");
    assert_eq!(std::fs::read(out.join("plan.json")).unwrap(), plan_before);
    assert!(!out.join("cells").join(&names[1]).exists());

    // --replan: the new plan is written, the old one and its finished cell are moved aside.
    let replanned = heal_ok(&[
        "sweep",
        "--config",
        s(&g2),
        "--out",
        s(&out),
        "--plan",
        "--replan",
    ]);
    let said = String::from_utf8_lossy(&replanned.stdout);
    assert!(said.contains("1 superseded cell folder(s)"), "{said}");
    let replaced: Vec<PathBuf> = std::fs::read_dir(out.join("replaced"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(replaced.len(), 1);
    assert_eq!(
        std::fs::read(replaced[0].join("plan.json")).unwrap(),
        plan_before
    );
    assert!(replaced[0]
        .join("cells")
        .join(&names[0])
        .join("result.json")
        .is_file());
    assert!(!out.join("cells").join(&names[0]).exists());
    assert_eq!(
        json(&out.join("plan.json"))["cells"][0]["config"]["epochs"],
        2
    );
}

/// Starts `heal sweep --config G --out OUT` with every optimiser step slowed by `delay_ms`.
fn spawn_sweep(g: &Path, out: &Path, delay_ms: u64) -> std::process::Child {
    Command::new(heal_bin())
        .args(["sweep", "--config", s(g), "--out", s(out)])
        .env("HEAL_TEST_STEP_DELAY_MS", delay_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The claim files of a cell.
fn claim_files(sweep: &Path, cell: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(sweep.join("claims").join(cell))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn two_concurrent_sweeps_run_each_cell_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid(
        tmp.path(),
        2,
        "corrupt = [\"none\", \"all\"]\nseed = [1, 2]",
    );
    let out = tmp.path().join("sweep");
    heal_ok(&["sweep", "--config", s(&g), "--out", s(&out), "--plan"]);
    // About 2 s a cell (12 steps an epoch, 2 epochs), so the two processes overlap.
    let a = spawn_sweep(&g, &out, 80);
    let b = spawn_sweep(&g, &out, 80);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (log_a, log_b) = (
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr),
    );
    assert!(a.status.success() && b.status.success(), "{log_a}\n{log_b}");
    let (ran_a, ran_b) = (started_cells(&log_a), started_cells(&log_b));
    let all: BTreeSet<String> = cell_names(&out).into_iter().collect();
    assert_eq!(all.len(), 4);
    assert!(ran_a.is_disjoint(&ran_b), "{ran_a:?} and {ran_b:?}");
    assert_eq!(
        ran_a.union(&ran_b).cloned().collect::<BTreeSet<_>>(),
        all,
        "{log_a}\n{log_b}"
    );
    // Each process ran some. Whether a process meets the other's claim, or only its finished
    // cell, depends on how the two interleave; at least one meets a claim (they start
    // together on cell 1), and every process that skipped a claimed cell says so at the end.
    let mut met_a_claim = 0;
    for (ran, out_text, log) in [(&ran_a, &a.stdout, &log_a), (&ran_b, &b.stdout, &log_b)] {
        assert!(!ran.is_empty(), "{log}");
        let said = String::from_utf8_lossy(out_text);
        let skipped = log.contains("claimed by another process (host ");
        assert_eq!(
            said.contains("skipped as claimed elsewhere"),
            skipped,
            "{said}\n{log}"
        );
        met_a_claim += skipped as usize;
    }
    assert!(met_a_claim >= 1, "{log_a}\n{log_b}");
    for name in &all {
        let cell = out.join("cells").join(name);
        let epochs = std::fs::read_to_string(cell.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count();
        assert_eq!(epochs, 2, "{name}");
        assert!(json(&cell.join("result.json"))["status"].is_string());
        // Claimed once, and released.
        assert_eq!(claim_files(&out, name), vec!["0.json"]);
        let claim = json(&out.join("claims").join(name).join("0.json"));
        assert_eq!(claim["released"], true);
    }
}

#[test]
fn a_killed_claimant_is_taken_over_at_once_on_the_same_machine() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid(tmp.path(), 2, "corrupt = [\"none\", \"all\"]");
    let out = tmp.path().join("sweep");
    heal_ok(&["sweep", "--config", s(&g), "--out", s(&out), "--plan"]);
    let names = cell_names(&out);
    let mut child = spawn_sweep(&g, &out, 100);
    let run_json = out.join("cells").join(&names[0]).join("run.json");
    let start = Instant::now();
    while !run_json.is_file() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "cell 0 never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // While it runs, --status names the process.
    let st = status(&out);
    assert!(
        st.contains("running (host ") && st.contains(&format!("pid {}", child.id())),
        "{st}"
    );
    child.kill().unwrap(); // SIGKILL, mid-cell
    child.wait().unwrap();
    let claim = json(&out.join("claims").join(&names[0]).join("0.json"));
    assert_eq!(claim["released"], false);
    assert!(status(&out).contains("not running"));

    let rerun = heal_ok(&["sweep", "--config", s(&g), "--out", s(&out)]);
    let log = String::from_utf8_lossy(&rerun.stderr);
    assert!(!log.contains("claimed by another process"), "{log}");
    assert!(started_cells(&log).contains(&names[0]), "{log}");
    for name in &names {
        assert!(out.join("cells").join(name).join("result.json").is_file());
    }
    // The dead process's claim 0 was replaced by the rerun's claim 1.
    assert_eq!(claim_files(&out, &names[0]), vec!["1.json"]);
}

/// A claim by process 4242 on host `host`, made an hour ago, touched `age` ago.
fn foreign_claim(sweep: &Path, cell: &str, host: &str, age: Duration) {
    let dir = sweep.join("claims").join(cell);
    std::fs::create_dir_all(&dir).unwrap();
    let started = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    let claim = serde_json::json!({"host": host, "pid": 4242, "pid_start": 1,
        "boot_id": "another-boot", "pid_namespace": "pid:[1]", "started": started,
        "released": false});
    let path = dir.join("0.json");
    std::fs::write(&path, claim.to_string()).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
}

#[test]
fn another_hosts_claim_is_respected_while_fresh_and_taken_over_when_stale() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid(tmp.path(), 1, "corrupt = [\"none\", \"all\"]");
    let out = tmp.path().join("sweep");
    heal_ok(&["sweep", "--config", s(&g), "--out", s(&out), "--plan"]);
    let names = cell_names(&out);
    // Touched a minute ago: its heartbeat is fresh, the cell is running on node-7.
    foreign_claim(&out, &names[0], "node-7", Duration::from_secs(60));
    let one = heal_ok(&["sweep", "--out", s(&out), "--cell", "0"]);
    let said = String::from_utf8_lossy(&one.stdout);
    assert!(
        said.contains("running elsewhere (host node-7, pid 4242"),
        "{said}"
    );
    let all = heal_ok(&["sweep", "--config", s(&g), "--out", s(&out)]);
    let said = String::from_utf8_lossy(&all.stdout);
    assert!(said.contains("1 skipped as claimed elsewhere"), "{said}");
    assert!(!out.join("cells").join(&names[0]).exists());
    assert!(out
        .join("cells")
        .join(&names[1])
        .join("result.json")
        .is_file());
    let st = status(&out);
    assert!(st.contains("running (host node-7, pid 4242"), "{st}");

    // Untouched for 11 minutes: node-7 is gone, the cell is taken over.
    foreign_claim(&out, &names[0], "node-7", Duration::from_secs(11 * 60));
    let all = heal_ok(&["sweep", "--config", s(&g), "--out", s(&out)]);
    let said = String::from_utf8_lossy(&all.stdout);
    assert!(said.contains("sweep finished: 2 cells"), "{said}");
    assert!(out
        .join("cells")
        .join(&names[0])
        .join("result.json")
        .is_file());
    assert_eq!(claim_files(&out, &names[0]), vec!["1.json"]);
}
