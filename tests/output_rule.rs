//! The output rule (src/fsio/output.rs) as users meet it: an output is checked before any
//! work, a full target is refused unless --overwrite, and --overwrite replaces a run as a whole
//! and only once the new one is complete, even when the rerun is killed at any moment
//! (issue 17, item 1; findings 3, 9 and part of 10).

mod common;

use common::{finetune_tiny, fixtures, heal_bin};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Every file under `dir` by relative path, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                files.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    files
}

/// The folder's entries whose names start with a dot (temporary names, hidden leftovers).
fn hidden(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// `heal finetune` on the tiny data, not waited for.
fn finetune_cmd(out: &Path, extra: &[&str]) -> Command {
    let data = fixtures().join("tiny-data");
    let mut cmd = Command::new(heal_bin());
    cmd.args(["finetune", "--model"])
        .arg(fixtures().join("tiny-bert"))
        .arg("--data")
        .arg(data.join("train.jsonl"))
        .arg("--eval-data")
        .arg(data.join("test.jsonl"))
        .arg("--out")
        .arg(out)
        .args(["--device", "cpu", "--threads", "1"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Runs heal; returns the exit code and stderr.
fn heal(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(heal_bin()).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One line on stderr, exit code 2.
fn assert_user_error(got: &(Option<i32>, String), says: &str) {
    assert_eq!(got.0, Some(2), "{}", got.1);
    assert_eq!(got.1.trim_end().lines().count(), 1, "one line: {}", got.1);
    assert!(got.1.contains(says), "{says:?} in {}", got.1);
    assert!(!got.1.contains("panicked"), "{}", got.1);
}

/// The options of the reruns: no --save-checkpoint (the old run has checkpoint/), another
/// seed and another epoch count.
const NEW: &[&str] = &["--overwrite", "--epochs", "2", "--seed", "5"];

/// What a complete run with [`NEW`]'s options holds, by relative path (the event file by prefix).
fn is_complete_new_run(files: &BTreeMap<String, Vec<u8>>) -> Result<(), String> {
    let mut names: Vec<String> = files
        .keys()
        .map(|k| {
            if k.starts_with("events.out.tfevents.") {
                "events.out.tfevents.*".to_string()
            } else {
                k.clone()
            }
        })
        .collect();
    names.sort();
    let expected = [
        "analysis/vectors.safetensors",
        "analysis/weights.json",
        "events.out.tfevents.*",
        "metrics.jsonl",
        "result.json",
        "run.json",
    ];
    if names != expected {
        return Err(format!("files {names:?}, expected {expected:?}"));
    }
    let run: serde_json::Value = serde_json::from_slice(&files["run.json"]).unwrap();
    let (seed, epochs) = (&run["config"]["seed"], &run["config"]["epochs"]);
    if seed != 5 || epochs != 2 {
        return Err(format!("run.json has seed {seed}, epochs {epochs}"));
    }
    let metrics = String::from_utf8_lossy(&files["metrics.jsonl"])
        .lines()
        .count();
    if metrics != 2 {
        return Err(format!("metrics.jsonl has {metrics} epochs"));
    }
    Ok(())
}

/// Puts `files` back at `dir` exactly (nothing else there).
fn restore(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap();
    }
    for (rel, bytes) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// Finding 3 and the "Done means": kill -9 at spread moments of `heal finetune
/// --overwrite` on an existing run leaves the old run intact or the new one complete, never a
/// mix; a clean rerun then leaves no temporary sibling behind.
#[test]
fn overwrite_replaces_a_run_whole_even_when_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    finetune_tiny(
        &fixtures().join("tiny-bert"),
        &run,
        &["--epochs", "1", "--save-checkpoint", "--threads", "1"],
    );
    let old = snapshot(&run);
    assert!(old.contains_key("checkpoint/model.safetensors"));

    // How long an undisturbed rerun takes (stretched by a pause after each optimiser step),
    // so that the kills spread over all of it, its first moments and its last included.
    let full = {
        let started = Instant::now();
        let out = finetune_cmd(&run, NEW)
            .env("HEAL_TEST_STEP_DELAY_MS", "100")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        started.elapsed()
    };
    // The rerun replaced the old run whole: no checkpoint/ of the old one beside it.
    is_complete_new_run(&snapshot(&run)).unwrap();
    restore(&run, &old);

    let mut kept_old = 0;
    let mut became_new = 0;
    // Fractions of the undisturbed run's time; None: the moment the new run.json appears at
    // the target (just after the swap, the process still cleaning up), whatever the load.
    let moments = [
        Some(0.0),
        Some(0.05),
        Some(0.15),
        Some(0.3),
        Some(0.45),
        Some(0.6),
        Some(0.75),
        Some(0.85),
        Some(0.92),
        Some(0.96),
        Some(0.99),
        Some(1.05),
        None,
    ];
    for moment in moments {
        let mut child = finetune_cmd(&run, NEW)
            .env("HEAL_TEST_STEP_DELAY_MS", "100")
            .spawn()
            .unwrap();
        match moment {
            Some(fraction) => std::thread::sleep(full.mul_f64(fraction)),
            None => {
                let swapped =
                    || std::fs::read(run.join("run.json")).is_ok_and(|b| b != old["run.json"]);
                while !swapped() && child.try_wait().unwrap().is_none() {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
            }
        }
        let fraction = moment.unwrap_or(f64::NAN);
        let _ = child.kill(); // SIGKILL; a no-op once the run has ended
        child.wait().unwrap();
        let now = snapshot(&run);
        if now == old {
            kept_old += 1;
        } else {
            if let Err(e) = is_complete_new_run(&now) {
                panic!("killed at {fraction} of the run: neither the old run nor a complete new one: {e}");
            }
            became_new += 1;
            restore(&run, &old);
        }
    }
    assert!(kept_old >= 3, "{kept_old} kills kept the old run");
    assert!(became_new >= 1, "no kill landed after the swap");

    // The next write cleans every leftover of the killed writers.
    let out = finetune_cmd(&run, NEW).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    is_complete_new_run(&snapshot(&run)).unwrap();
    assert_eq!(
        hidden(tmp.path()),
        Vec::<String>::new(),
        "leftovers beside the run"
    );
}

/// Finding 3: a killed two-rename swap (the fallback where renameat2 cannot exchange) leaves
/// the old run only under its temporary name; the next write to the target puts it back
/// before anything else, and removes a dead writer's half-written new run.
#[test]
fn a_killed_swap_is_repaired_by_the_next_write() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    finetune_tiny(
        &fixtures().join("tiny-bert"),
        &run,
        &["--epochs", "1", "--threads", "1"],
    );
    let old = snapshot(&run);
    // A pid that ran on this host and is gone: a child that has exited.
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let aside = tmp.path().join(format!(".run.heal-old-{host}-{pid}"));
    let half = tmp.path().join(format!(".run.heal-tmp-{host}-{pid}"));
    std::fs::rename(&run, &aside).unwrap();
    std::fs::create_dir(&half).unwrap();
    std::fs::write(half.join("run.json"), "{").unwrap();
    // Another host's temporary folder (a shared filesystem) is not this host's to judge.
    let other = tmp.path().join(".run.heal-tmp-elsewhere-1");
    std::fs::create_dir(&other).unwrap();

    // Without --overwrite the rerun is refused up front, and the check has put the old run
    // back, whole, and removed the dead writer's half-written folder.
    let refused = finetune_cmd(&run, &["--epochs", "1"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(snapshot(&run), old);
    assert!(!aside.exists() && !half.exists());
    assert!(other.exists(), "another host's folder was removed");
    let out = finetune_cmd(&run, NEW).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    is_complete_new_run(&snapshot(&run)).unwrap();
}

/// The same repair for another command: `heal embed --out` puts back the old output that a
/// killed swap left aside, then replaces it whole with --overwrite.
#[test]
fn an_old_output_left_aside_is_put_back() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("emb");
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let aside = tmp.path().join(format!(".emb.heal-old-{host}-{pid}"));
    std::fs::create_dir(&aside).unwrap();
    std::fs::write(aside.join("manifest.json"), "old").unwrap();
    let data = fixtures().join("tiny-data");
    let out = Command::new(heal_bin())
        .arg("embed")
        .arg(fixtures().join("tiny-bert"))
        .arg("--data")
        .arg(data.join("train.jsonl"))
        .arg("--eval-data")
        .arg(data.join("test.jsonl"))
        .arg("--out")
        .arg(&target)
        .args(["--device", "cpu", "--overwrite"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Put back, then replaced by the new output as a whole.
    assert!(!aside.exists());
    assert!(target.join("embeddings.safetensors").is_file());
    assert_ne!(std::fs::read(target.join("manifest.json")).unwrap(), b"old");
    assert_eq!(hidden(tmp.path()), Vec::<String>::new());
}

/// A run with embeddings for t-SNE and curves.
fn run_with_embeddings(dir: &Path) -> PathBuf {
    let run = dir.join("run");
    finetune_tiny(
        &fixtures().join("tiny-bert"),
        &run,
        &[
            "--epochs",
            "1",
            "--dump-embeddings",
            "best",
            "--threads",
            "1",
        ],
    );
    run
}

/// Finding 9: t-SNE's and curves' --out is checked before any work: a folder, or a name
/// without .png, is one line and exit 2 with nothing written (t-SNE wrote its CSV and JSON
/// first, then failed with exit 1); an existing PNG needs --overwrite.
#[test]
fn figure_outputs_are_checked_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_with_embeddings(tmp.path());
    let run_s = run.to_str().unwrap();
    let figs = tmp.path().join("figs");
    std::fs::create_dir(&figs).unwrap();
    let folder = figs.join("map.png");
    std::fs::create_dir(&folder).unwrap();
    let at = |name: &str| figs.join(name).to_str().unwrap().to_string();
    let quick = ["--perplexity", "5", "--iterations", "250"];

    let folder_s = folder.to_str().unwrap();
    let mut args = vec!["tsne", run_s, "--out", folder_s];
    args.extend(quick);
    assert_user_error(&heal(&args), "is a folder, not a file");
    let plain = at("map");
    let mut args = vec!["tsne", run_s, "--out", &plain];
    args.extend(quick);
    assert_user_error(&heal(&args), "ending in .png");
    assert_user_error(&heal(&["curves", run_s, "--out", folder_s]), "is a folder");
    assert_user_error(&heal(&["curves", run_s, "--out", &plain]), "ending in .png");
    let mut names: Vec<String> = std::fs::read_dir(&figs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["map.png"], "written beside the refused outputs");
    assert_eq!(snapshot(&folder).len(), 0);

    // An existing PNG is replaced only with --overwrite.
    let png = at("curves.png");
    assert_eq!(heal(&["curves", run_s, "--out", &png]).0, Some(0));
    let first = std::fs::read(&png).unwrap();
    assert_user_error(&heal(&["curves", run_s, "--out", &png]), "--overwrite");
    assert_eq!(std::fs::read(&png).unwrap(), first);
    assert_eq!(
        heal(&["curves", run_s, "--out", &png, "--overwrite"]).0,
        Some(0)
    );
    let tsne = at("tsne.png");
    let mut args = vec!["tsne", run_s, "--out", &tsne];
    args.extend(quick);
    assert_eq!(heal(&args).0, Some(0));
    assert_user_error(&heal(&args), "--overwrite");
    args.push("--overwrite");
    assert_eq!(heal(&args).0, Some(0));
    assert_eq!(hidden(&figs), Vec::<String>::new(), "temporary files left");
}

/// Finding 10 (part): the demo refuses a --report folder that holds something else before
/// its sweep starts, naming --report, never a flag it does not take (--overwrite).
#[test]
fn demo_refuses_a_foreign_report_folder_naming_its_own_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("notes");
    std::fs::create_dir(&report).unwrap();
    std::fs::write(report.join("todo.txt"), "mine").unwrap();
    let out = tmp.path().join("demo");
    let got = heal(&[
        "demo",
        "--out",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_user_error(&got, "--report");
    assert!(!got.1.contains("--overwrite"), "{}", got.1);
    assert!(!out.exists(), "the sweep started");
    assert_eq!(std::fs::read(report.join("todo.txt")).unwrap(), b"mine");
}

/// Finding 10 (part): a write error names the path once and its cause once (the cause was
/// printed twice for figures, the path twice for checkpoints).
#[test]
fn a_write_error_names_the_path_once() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    finetune_tiny(
        &fixtures().join("tiny-bert"),
        &run,
        &["--epochs", "1", "--threads", "1"],
    );
    // sysfs refuses new files even to root: an io error injected at the write.
    let (code, stderr) = heal(&["curves", run.to_str().unwrap(), "--out", "/sys/heal-x.png"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.matches("/sys/heal-x.png").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");

    let missing = tmp.path().join("no-such-folder").join("model.safetensors");
    let t = tch::Tensor::zeros([2], (tch::Kind::Float, tch::Device::Cpu));
    let err =
        heal::model::checkpoint::write_named_safetensors(&[("w".into(), t)], &missing).unwrap_err();
    let text = format!("{err:#}");
    assert_eq!(text.matches(missing.to_str().unwrap()).count(), 1, "{text}");
}
