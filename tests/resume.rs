//! `heal finetune --resume RUN` and resumed sweep cells: a run killed with SIGKILL in epoch 2
//! of 3 and resumed ends with the same metrics.jsonl and result.json (timings aside) as the
//! same run uninterrupted; runs that cannot be resumed are one-line errors.

mod common;

use common::{fixtures, heal_bin, heal_ok, tiny_grid};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Same seed, thread count and options for every run here: damaged, so that a resume that
/// damaged the restored weights again would show; a best checkpoint, so that the best
/// weights are part of the state.
const OPTIONS: &[&str] = &[
    "--epochs",
    "3",
    "--batch-size",
    "8",
    "--lr",
    "3e-3",
    "--threads",
    "1",
    "--corrupt",
    "bottom:50%",
    "--save-checkpoint",
];

/// `heal finetune` on the tiny data into `out`, not waited for; `delay_ms` between steps.
fn spawn_finetune(out: &Path, extra: &[&str], delay_ms: u64) -> std::process::Child {
    let data = fixtures().join("tiny-data");
    Command::new(heal_bin())
        .args(["finetune", "--model"])
        .arg(fixtures().join("tiny-bert"))
        .arg("--data")
        .arg(data.join("train.jsonl"))
        .arg("--eval-data")
        .arg(data.join("test.jsonl"))
        .arg("--out")
        .arg(out)
        .args(["--device", "cpu"])
        .args(OPTIONS)
        .args(extra)
        .env("HEAL_TEST_STEP_DELAY_MS", delay_ms.to_string())
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("heal runs")
}

/// Waits until the run in `dir` has finished epoch 1 and saved its state, then kills `child`
/// with SIGKILL (in epoch 2: each step sleeps, so epoch 2 lasts long enough).
fn kill_in_epoch_2(mut child: std::process::Child, dir: &Path) {
    let start = Instant::now();
    loop {
        let lines = std::fs::read_to_string(dir.join("metrics.jsonl"))
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines == 1 && dir.join("resume/state.json").is_file() {
            break;
        }
        assert!(lines < 2, "epoch 2 finished before the kill");
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "epoch 1 never finished"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!dir.join("result.json").exists(), "killed before the end");
}

/// A JSON document without the fields that measure time.
fn without_timings(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        for key in [
            "train_seconds",
            "eval_seconds",
            "train_examples_per_second",
            "wall_seconds",
        ] {
            o.remove(key);
        }
    }
    v
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| without_timings(serde_json::from_str(l).unwrap()))
        .collect()
}

/// metrics.jsonl, result.json, the best checkpoint and the analysis artefacts of `b` equal
/// `a`'s; no state is left.
fn assert_same_run(a: &Path, b: &Path) {
    let (ma, mb) = (
        json_lines(&a.join("metrics.jsonl")),
        json_lines(&b.join("metrics.jsonl")),
    );
    assert_eq!(ma.len(), 3);
    for (i, (x, y)) in ma.iter().zip(&mb).enumerate() {
        assert_eq!(x, y, "metrics.jsonl line {}", i + 1);
    }
    assert_eq!(ma.len(), mb.len());
    let result = |d: &Path| {
        let text = std::fs::read_to_string(d.join("result.json")).unwrap();
        without_timings(serde_json::from_str(&text).unwrap())
    };
    assert_eq!(result(a), result(b));
    let weights = |d: &Path| std::fs::read(d.join("checkpoint/model.safetensors")).unwrap();
    assert!(weights(a) == weights(b), "best checkpoints differ");
    // The analysis artefacts too: a resumed run makes its start again while it prepares.
    let (ra, rb) = (heal::run_dir::RunDir::at(a), heal::run_dir::RunDir::at(b));
    for (fa, fb) in [
        (ra.analysis_vectors(), rb.analysis_vectors()),
        (ra.analysis_weights(), rb.analysis_weights()),
    ] {
        let same = std::fs::read(&fa).unwrap() == std::fs::read(&fb).unwrap();
        assert!(same, "{} differs", fa.display());
    }
    assert!(!b.join("resume").exists(), "the resume state is removed");
}

/// Runs `heal ARGS`, expecting exit code 2 and one line on stderr containing `what`.
fn fails_with(args: &[&str], what: &str) {
    let out = Command::new(heal_bin()).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
    assert!(err.contains(what), "{args:?}: {err}");
}

#[test]
fn a_run_killed_in_epoch_2_resumes_to_the_uninterrupted_result() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let status = spawn_finetune(&a, &[], 0).wait().unwrap();
    assert!(status.success());
    assert!(!a.join("resume").exists(), "a finished run keeps no state");

    let b = tmp.path().join("b");
    kill_in_epoch_2(spawn_finetune(&b, &[], 40), &b);
    let out = heal_ok(&["finetune", "--resume", b.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("run directory:"));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("resuming after epoch 1"), "{log}");
    assert_same_run(&a, &b);

    // Finished runs, libtorch's optimiser and other options are refused.
    fails_with(
        &["finetune", "--resume", a.to_str().unwrap()],
        "already finished",
    );
    let c = tmp.path().join("c");
    let status = spawn_finetune(&c, &["--fused-optimizer", "false"], 0)
        .wait()
        .unwrap();
    assert!(status.success());
    std::fs::remove_file(c.join("result.json")).unwrap();
    fails_with(
        &["finetune", "--resume", c.to_str().unwrap()],
        "--fused-optimizer false",
    );
    fails_with(
        &["finetune", "--resume", b.to_str().unwrap(), "--lr", "1e-3"],
        "only --threads",
    );
}

/// A one-cell grid with the options above.
fn grid(dir: &Path) -> PathBuf {
    tiny_grid(
        dir,
        "epochs = 3\nbatch-size = 8\nlr = 3e-3\ndevice = \"cpu\"\nthreads = 1\nsave-checkpoint = \"best\"",
        "corrupt = [\"bottom:50%\"]\nseed = [1]",
    )
}

fn the_cell(sweep: &Path) -> PathBuf {
    let cells: Vec<PathBuf> = std::fs::read_dir(sweep.join("cells"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cells.len(), 1);
    cells[0].clone()
}

#[test]
fn a_sweep_cell_killed_in_epoch_2_resumes_to_the_uninterrupted_result() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid(tmp.path());
    let sweep = |out: &Path| {
        heal_ok(&[
            "sweep",
            "--config",
            g.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let full = tmp.path().join("full");
    sweep(&full);

    let killed = tmp.path().join("killed");
    let child = Command::new(heal_bin())
        .args(["sweep", "--config", g.to_str().unwrap(), "--out"])
        .arg(&killed)
        .env("HEAL_TEST_STEP_DELAY_MS", "40")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !killed.join("cells").is_dir()
        || std::fs::read_dir(killed.join("cells")).unwrap().count() == 0
    {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no cell started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    kill_in_epoch_2(child, &the_cell(&killed));
    sweep(&killed);
    assert_same_run(&the_cell(&full), &the_cell(&killed));
}
