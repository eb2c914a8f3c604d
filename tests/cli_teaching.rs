//! A CLI that teaches and shows progress: HF Trainer flag names answered with heal's, shell
//! completions, the start-here paragraph of `heal --help`, plain progress lines when stderr is
//! not a terminal, the run summary's header, and `heal sweep --status` on a tiny sweep.

mod common;

use common::{fixtures, heal_bin, heal_ok};
use std::path::Path;
use std::process::{Command, Output};

fn heal(args: &[&str]) -> Output {
    Command::new(heal_bin())
        .args(args)
        .output()
        .expect("heal runs")
}

#[test]
fn hf_trainer_flag_names_point_to_heals_flag() {
    let cases = [
        ("--num-train-epochs", "--epochs"),
        ("--per-device-train-batch-size", "--batch-size"),
        ("--per-device-eval-batch-size", "--eval-batch-size"),
        ("--learning-rate", "--lr"),
        ("--output-dir", "--out"),
        ("--warmup-ratio", "--warmup"),
        ("--max-seq-length", "--max-len"),
        ("--model-name-or-path", "--model"),
    ];
    for (hf, ours) in cases {
        for args in [
            vec!["finetune", hf, "7"],
            vec!["finetune", "--epochs", "1", &format!("{hf}=7")],
        ] {
            let out = heal(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
            let expected =
                format!("error: {hf} is HF Trainer's name: heal's flag is {ours} (e.g. {ours} 7)");
            assert_eq!(err.trim(), expected, "{args:?}");
        }
    }
    // The snake_case spelling HF's argument parser also takes.
    let out = heal(&["finetune", "--num_train_epochs", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("heal's flag is --epochs (e.g. --epochs 2)")
    );
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = heal_ok(&["completions", shell]);
        let script = String::from_utf8_lossy(&out.stdout);
        for word in ["finetune", "sweep", "report", "completions", "epochs"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("heal.bash");
    std::fs::write(&path, heal_ok(&["completions", "bash"]).stdout).unwrap();
    let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let help = String::from_utf8_lossy(&heal_ok(&["completions", "--help"]).stdout).into_owned();
    assert!(help.contains("heal completions bash >"), "{help}");
}

#[test]
fn help_starts_a_new_user_off() {
    let help = String::from_utf8_lossy(&heal_ok(&["--help"]).stdout).into_owned();
    for line in [
        "Start here:",
        "heal demo",
        "heal finetune --model X --data Y",
        "heal sweep --config GRID --out S",
        "heal report S",
        "README.md",
        "heal completions",
    ] {
        assert!(help.contains(line), "{line} missing:\n{help}");
    }
}

#[test]
fn progress_lines_outside_a_terminal_and_the_summary_header() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fixtures().join("tiny-data");
    let out = Command::new(heal_bin())
        .args(["finetune", "--model"])
        .arg(fixtures().join("tiny-bert"))
        .arg("--data")
        .arg(data.join("train.jsonl"))
        .arg("--eval-data")
        .arg(data.join("test.jsonl"))
        .arg("--out")
        .arg(tmp.path().join("run"))
        .args(["--device", "cpu", "--epochs", "1", "--batch-size", "8"])
        .env("HEAL_PROGRESS_SECONDS", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The test's stderr is a pipe: no bar is drawn, plain lines are written instead.
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("epoch 1/1  ") && l.contains(" ex  "))
        .collect();
    assert!(!lines.is_empty(), "no progress line:\n{stderr}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("/96 ex") && l.contains("left ")),
        "{stderr}"
    );
    assert!(lines.iter().all(|l| l.contains("elapsed ")), "{stderr}");
    // "1 epoch", and the max-len used: tiny-bert has 64 positions, below the default 128.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(1 epoch, "), "{stdout}");
    assert!(stdout.contains("max-len 64)"), "{stdout}");
    // Without HEAL_PROGRESS_SECONDS a line comes every 30 s: none in this short run.
    let quiet = Command::new(heal_bin())
        .args(["finetune", "--model"])
        .arg(fixtures().join("tiny-bert"))
        .arg("--data")
        .arg(data.join("train.jsonl"))
        .arg("--eval-data")
        .arg(data.join("test.jsonl"))
        .arg("--out")
        .arg(tmp.path().join("quiet"))
        .args(["--device", "cpu", "--epochs", "2", "--batch-size", "8"])
        .env_remove("HEAL_PROGRESS_SECONDS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(quiet.status.success(), "{stderr}");
    assert!(!stderr.contains(" left "), "{stderr}");
    assert!(String::from_utf8_lossy(&quiet.stdout).contains("(2 epochs, "));
}

fn grid(dir: &Path) -> std::path::PathBuf {
    let data = fixtures().join("tiny-data");
    let text = format!(
        r#"
[base]
epochs = 1
batch-size = 8
device = "cpu"
threads = 1
data = "{train}"
eval-data = "{test}"

[grid]
model = ["{model}"]
corrupt = ["none", "bottom:50%", "top:50%", "all"]
lr = [1e-2]
seed = [1, 2]
"#,
        model = fixtures().join("tiny-bert").display(),
        train = data.join("train.jsonl").display(),
        test = data.join("test.jsonl").display(),
    );
    let path = dir.join("grid.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn sweep_status_counts_cells_from_the_plan_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid(tmp.path());
    let sweep = tmp.path().join("sweep");
    let s = sweep.to_str().unwrap();
    heal_ok(&[
        "sweep",
        "--config",
        g.to_str().unwrap(),
        "--out",
        s,
        "--plan",
    ]);
    // The grid file is not needed from here on.
    std::fs::remove_file(&g).unwrap();
    let status = || {
        String::from_utf8_lossy(&heal_ok(&["sweep", "--out", s, "--status"]).stdout).into_owned()
    };
    let before = status();
    assert!(before.contains(": 8 cells"), "{before}");
    assert!(before.contains("left         8"), "{before}");
    assert!(before.contains("time left unknown"), "{before}");

    heal_ok(&["sweep", "--out", s, "--cell", "0"]);
    heal_ok(&["sweep", "--out", s, "--cell", "1"]);
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sweep.join("plan.json")).unwrap()).unwrap();
    let cell_dir = |i: usize| {
        sweep
            .join("cells")
            .join(plan["cells"][i]["name"].as_str().unwrap())
    };
    let statuses: Vec<String> = [0, 1]
        .iter()
        .map(|&i| {
            let r: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(cell_dir(i).join("result.json")).unwrap(),
            )
            .unwrap();
            r["status"].as_str().unwrap().to_string()
        })
        .collect();
    // Cell 2 started (run.json written, no result.json), cell 3 failed.
    std::fs::create_dir_all(cell_dir(2)).unwrap();
    std::fs::copy(cell_dir(0).join("run.json"), cell_dir(2).join("run.json")).unwrap();
    std::fs::create_dir_all(cell_dir(3)).unwrap();
    let mut failed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cell_dir(0).join("result.json")).unwrap())
            .unwrap();
    failed["status"] = "failed".into();
    failed["reason"] = "training stopped by a libtorch error: out of memory".into();
    std::fs::write(cell_dir(3).join("result.json"), failed.to_string()).unwrap();

    let after = status();
    let count = |s: &str| statuses.iter().filter(|x| *x == s).count();
    let finished = format!(
        "finished     3  (ok {}, collapsed {}, diverged {}, failed 1)",
        count("ok"),
        count("collapsed"),
        count("diverged")
    );
    assert!(after.contains(&finished), "{finished} not in:\n{after}");
    assert!(after.contains("started      1"), "{after}");
    assert!(
        after.contains(plan["cells"][2]["name"].as_str().unwrap()),
        "{after}"
    );
    assert!(after.contains("left         4"), "{after}");
    assert!(after.contains("at one cell at a time"), "{after}");
    assert!(after.contains("mean of 2 finished"), "{after}");
    assert!(after.contains("failed cells"), "{after}");
    assert!(after.contains("out of memory"), "{after}");

    // The library's struct says the same.
    let st = heal::sweep::status(&sweep).unwrap();
    assert_eq!(st.cells, 8);
    assert_eq!(st.finished.total(), 3);
    assert_eq!(st.finished.failed, 1);
    assert_eq!(st.started.len(), 1);
    assert_eq!(st.started[0].index, 2);
    assert_eq!(st.left, 4);
    assert_eq!(st.failed.len(), 1);
    assert_eq!(st.failed[0].index, 3);
    let mean = st.mean_cell_seconds.unwrap();
    let left = st.seconds_left.unwrap();
    assert!(left >= mean * 4.0 && left <= mean * 5.0, "{left} vs {mean}");

    // Without a plan: one line saying how to make one.
    let none = heal(&[
        "sweep",
        "--out",
        tmp.path().join("nothing").to_str().unwrap(),
        "--status",
    ]);
    assert_eq!(none.status.code(), Some(2));
    let err = String::from_utf8_lossy(&none.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("plan.json"), "{err}");
}
