//! `heal sweep` and `heal report` on the tiny fixtures: cells, skipping finished cells, a run
//! killed with SIGKILL and resumed, the report against the cells' own result.json files, a
//! collapsed cell flagged and left out, plan/cell/slurm modes, and bad grids.

mod common;

use common::{heal_bin, heal_ok, tiny_grid};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

fn grid(dir: &Path, lrs: &str, extra_base: &str) -> PathBuf {
    tiny_grid(
        dir,
        &format!("epochs = 4\nbatch-size = 8\ndevice = \"cpu\"\nthreads = 1\n{extra_base}"),
        &format!("corrupt = [\"none\", \"bottom:50%\", \"top:50%\", \"all\"]\nlr = [{lrs}]\nseed = [1, 2]"),
    )
}

fn sweep(grid: &Path, out: &Path) -> std::process::Output {
    heal_ok(&[
        "sweep",
        "--config",
        grid.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

fn result_times(out: &Path) -> Vec<(String, SystemTime)> {
    let mut v: Vec<(String, SystemTime)> = std::fs::read_dir(out.join("cells"))
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let r = e.path().join("result.json");
            r.is_file().then(|| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::metadata(&r).unwrap().modified().unwrap(),
                )
            })
        })
        .collect();
    v.sort();
    v
}

fn best_f1(cell: &Path) -> f64 {
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cell.join("result.json")).unwrap()).unwrap();
    r["best"]["f1_weighted"].as_f64().unwrap()
}

#[test]
fn sweep_runs_every_cell_resumes_after_kill_and_reports_from_the_cells() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid(tmp.path(), "1e-2", "");
    // Uninterrupted reference.
    let full = tmp.path().join("full");
    sweep(&g, &full);
    let finished = result_times(&full);
    assert_eq!(finished.len(), 8, "4 corruption specs x 2 seeds");

    // A rerun runs nothing: every result.json keeps its time.
    let out = sweep(&g, &full);
    assert_eq!(result_times(&full), finished);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(log.matches("finished earlier, skipped").count(), 8, "{log}");

    // Killed with SIGKILL once some (not all) cells are finished, then rerun.
    let killed = tmp.path().join("killed");
    let mut child = Command::new(heal_bin())
        .args(["sweep", "--config", g.to_str().unwrap(), "--out"])
        .arg(&killed)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let n = if killed.join("cells").is_dir() {
            result_times(&killed).len()
        } else {
            0
        };
        if n >= 3 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no cell finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = result_times(&killed);
    assert!(before.len() < 8, "the sweep was killed before its end");
    let out = sweep(&g, &killed);
    let log = String::from_utf8_lossy(&out.stderr);
    let after = result_times(&killed);
    assert_eq!(after.len(), 8);
    for (name, t) in &before {
        assert!(after.contains(&(name.clone(), *t)), "{name} was rerun");
    }
    assert_eq!(
        log.matches("finished earlier, skipped").count(),
        before.len(),
        "{log}"
    );

    // The resumed sweep's report equals the uninterrupted one's (same seeds, same scores).
    heal_ok(&["report", full.to_str().unwrap()]);
    heal_ok(&["report", killed.to_str().unwrap()]);
    let csv_full = std::fs::read_to_string(full.join("report/report.csv")).unwrap();
    let csv_killed = std::fs::read_to_string(killed.join("report/report.csv")).unwrap();
    assert_eq!(csv_full, csv_killed);
    assert!(full.join("report/report.md").is_file());
    // The chart draws the bottom and top series in the palette's first two colours.
    let chart = full.join("report/f1-vs-corruption-tiny-bert.png");
    let counts = common::png_colour_counts(&chart, &common::palette(2));
    assert!(counts.iter().all(|&c| c > 100), "series pixels {counts:?}");
    assert!(full.join("report/f1-vs-corruption-tiny-bert.svg").is_file());

    // Each mean is the mean of the two seeds' result.json best scores.
    let mut rows = csv::Reader::from_reader(csv_full.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let mut seen = 0;
    for row in rows.records() {
        let row = row.unwrap();
        let corrupt = &row[col("corrupt")];
        let f1s: Vec<f64> = [1, 2]
            .iter()
            .map(|s| {
                best_f1(&full.join("cells").join(format!(
                    "tiny-bert_tiny_{}_reinit_full_cls_lr1e-2_s{s}",
                    heal::sweep::slug(corrupt)
                )))
            })
            .collect();
        let ok = row[col("runs_ok")].parse::<usize>().unwrap();
        if ok == 2 {
            let mean: f64 = row[col("mean_f1")].parse().unwrap();
            assert!((mean - (f1s[0] + f1s[1]) / 2.0).abs() < 1e-12, "{corrupt}");
            let sd: f64 = row[col("std_f1")].parse().unwrap();
            let expected = (f1s[0] - f1s[1]).abs() / 2f64.sqrt();
            assert!(
                (sd - expected).abs() < 1e-12,
                "{corrupt}: std {sd} vs {expected}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 1, "no table cell with both seeds ok");
}

#[test]
fn a_collapsed_cell_is_flagged_and_left_out_of_the_mean() {
    let tmp = tempfile::tempdir().unwrap();
    // lr 1e-1 sends tiny-bert to a single predicted class; 1e-2 learns.
    let g = grid(tmp.path(), "1e-2, 1e-1", "");
    let out = tmp.path().join("sweep");
    sweep(&g, &out);
    let report = heal_ok(&["report", out.to_str().unwrap()]);
    let md = String::from_utf8_lossy(&report.stdout).into_owned();
    let mut flagged = Vec::new();
    for entry in std::fs::read_dir(out.join("cells")).unwrap() {
        let dir = entry.unwrap().path();
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap())
                .unwrap();
        if r["status"] != "ok" {
            flagged.push(dir.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(
        flagged.iter().any(|n| n.contains("lr1e-1")),
        "no lr 1e-1 cell collapsed or diverged: {flagged:?}"
    );
    // Every flagged run is listed with its status, and none is in a mean.
    assert!(md.contains("## Flagged runs"), "{md}");
    for name in &flagged {
        assert!(md.contains(name.as_str()), "{name} not listed:\n{md}");
    }
    let csv_text = std::fs::read_to_string(out.join("report/report.csv")).unwrap();
    let mut rows = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let mut means_checked = 0;
    for row in rows.records() {
        let row = row.unwrap();
        let corrupt = heal::sweep::slug(&row[col("corrupt")]);
        let chosen: f64 = match row[col("lr")].parse() {
            Ok(v) => v,
            Err(_) => continue,
        };
        // The mean is over the ok runs at the chosen rate only.
        let mut ok = Vec::new();
        for s in [1, 2] {
            let dir = out.join("cells").join(format!(
                "tiny-bert_tiny_{corrupt}_reinit_full_cls_lr{chosen:e}_s{s}"
            ));
            let r: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap())
                    .unwrap();
            if r["status"] == "ok" {
                ok.push(r["best"]["f1_weighted"].as_f64().unwrap());
            }
        }
        assert_eq!(row[col("runs_ok")].parse::<usize>().unwrap(), ok.len());
        if !ok.is_empty() {
            let mean: f64 = row[col("mean_f1")].parse().unwrap();
            assert!((mean - ok.iter().sum::<f64>() / ok.len() as f64).abs() < 1e-12);
            means_checked += 1;
        }
    }
    // The clean cell learns at 1e-2 (every seed ok), so at least one mean was compared: the
    // check above cannot pass by skipping every row.
    assert!(means_checked >= 1, "no table cell with an ok run");
}

/// The number of epochs in a cell's metrics.jsonl and the epoch with the best validation F1
/// (the earlier one on a tie).
fn chosen_by_validation(cell: &Path) -> (usize, serde_json::Value) {
    let metrics: Vec<serde_json::Value> = std::fs::read_to_string(cell.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let chosen = metrics
        .iter()
        .max_by(|a, b| {
            let (x, y) = (
                a["validation_f1_weighted"].as_f64().unwrap(),
                b["validation_f1_weighted"].as_f64().unwrap(),
            );
            x.total_cmp(&y)
                .then(b["epoch"].as_u64().cmp(&a["epoch"].as_u64()))
        })
        .unwrap()
        .clone();
    (metrics.len(), chosen)
}

#[test]
fn validation_protocol_chooses_on_the_carve_out() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid(tmp.path(), "1e-2", "validation-split = 0.25");
    // On 72 training examples the clean cells need 10 epochs at 1e-2 to learn (at 4 both seeds
    // collapse, and the mean below would have nothing to compare); two levels keep it short.
    let text = std::fs::read_to_string(&g)
        .unwrap()
        .replace("epochs = 4", "epochs = 10")
        .replace(
            r#"corrupt = ["none", "bottom:50%", "top:50%", "all"]"#,
            r#"corrupt = ["none", "all"]"#,
        );
    std::fs::write(&g, text).unwrap();
    let out = tmp.path().join("sweep");
    sweep(&g, &out);
    heal_ok(&["report", out.to_str().unwrap(), "--select", "validation"]);
    let md = std::fs::read_to_string(out.join("report/report.md")).unwrap();
    assert!(md.contains("validation protocol"), "{md}");
    // The clean cell's reported score is the test F1 of the epoch with the best validation F1.
    let cell = out
        .join("cells")
        .join("tiny-bert_tiny_none_reinit_full_cls_lr1e-2_s1");
    let (epochs, _) = chosen_by_validation(&cell);
    assert_eq!(epochs, 10);
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cell.join("run.json")).unwrap()).unwrap();
    // 96 training examples, a quarter held out for validation.
    assert_eq!(run["data"]["train_examples"], 72);
    let csv_text = std::fs::read_to_string(out.join("report/report.csv")).unwrap();
    let mut rows = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let clean = rows
        .records()
        .map(|r| r.unwrap())
        .find(|r| &r[col("corrupt")] == "none")
        .unwrap();
    assert_eq!(&clean[col("protocol")], "validation");
    // The mean is over the seeds whose run ended ok, each at its validation-chosen epoch; the
    // clean cells learn, so the comparison always runs.
    let mut ok = Vec::new();
    for s in [1, 2] {
        let cell = out
            .join("cells")
            .join(format!("tiny-bert_tiny_none_reinit_full_cls_lr1e-2_s{s}"));
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(cell.join("result.json")).unwrap())
                .unwrap();
        if r["status"] == "ok" {
            ok.push(
                chosen_by_validation(&cell).1["f1_weighted"]
                    .as_f64()
                    .unwrap(),
            );
        }
    }
    assert_eq!(ok.len(), 2, "both clean cells end ok");
    assert_eq!(clean[col("runs_ok")].parse::<usize>().unwrap(), ok.len());
    let expected = ok.iter().sum::<f64>() / ok.len() as f64;
    let mean: f64 = clean[col("mean_f1")].parse().unwrap();
    assert!((mean - expected).abs() < 1e-12, "{mean} vs {expected}");
    // Without validation scores, --select validation is a one-line error, exit 2.
    let plain = tmp.path().join("plain");
    let g2 = grid(tmp.path(), "1e-2", "");
    let text = std::fs::read_to_string(&g2)
        .unwrap()
        .replace(
            r#"corrupt = ["none", "bottom:50%", "top:50%", "all"]"#,
            r#"corrupt = ["none"]"#,
        )
        .replace("seed = [1, 2]", "seed = [1]");
    std::fs::write(&g2, text).unwrap();
    sweep(&g2, &plain);
    let out = Command::new(heal_bin())
        .args(["report", plain.to_str().unwrap(), "--select", "validation"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("validation-split"), "{err}");
}

#[test]
fn plan_cell_and_slurm_script() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid(tmp.path(), "1e-2", "");
    let out = tmp.path().join("sweep");
    let plan = heal_ok(&[
        "sweep",
        "--config",
        g.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--plan",
    ]);
    let listing = String::from_utf8_lossy(&plan.stdout);
    assert!(listing.contains("8 cells (0 finished)"), "{listing}");
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).unwrap()).unwrap();
    let cells = p["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 8);
    assert!(!out.join("cells").exists(), "--plan runs nothing");
    // Cell 3 alone, from plan.json (no --config).
    heal_ok(&["sweep", "--out", out.to_str().unwrap(), "--cell", "3"]);
    let name = cells[3]["name"].as_str().unwrap();
    assert!(out.join("cells").join(name).join("result.json").is_file());
    assert_eq!(result_times(&out).len(), 1);
    // A cell index past the plan: exit 2.
    let bad = Command::new(heal_bin())
        .args(["sweep", "--out", out.to_str().unwrap(), "--cell", "8"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    // The sbatch script: one array task per cell, each running its cell of this plan.
    heal_ok(&[
        "sweep",
        "--config",
        g.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--slurm",
        "--partition",
        "debug",
        "--cpus",
        "1",
        "--mem",
        "1G",
        "--time",
        "00:10:00",
    ]);
    let script = std::fs::read_to_string(out.join("sweep.sbatch")).unwrap();
    for line in [
        "#SBATCH --array=0-7",
        "#SBATCH --partition=debug",
        "#SBATCH --cpus-per-task=1",
        "#SBATCH --mem=1G",
        "#SBATCH --time=00:10:00",
        "--cell \"$SLURM_ARRAY_TASK_ID\"",
    ] {
        assert!(script.contains(line), "{line} missing:\n{script}");
    }
    assert!(!script.contains("--gres"), "no GPUs asked for");
}

#[test]
fn bad_grids_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("[grid]\ncorrupt = [\"none\"]\nbogus = 1\n", "bogus"),
        ("[grid]\nlr = []\n", "grid.lr is an empty list"),
        ("[base]\nout = \"x\"\n", "[base] sets `out`"),
        ("[grid]\ncorrupt = [\"sideways:50%\"]\n", "sideways"),
        ("[base]\nepochs = 0\n", "--epochs 0"),
    ];
    for (text, needle) in cases {
        let g = tmp.path().join("bad.toml");
        std::fs::write(&g, text).unwrap();
        let out = Command::new(heal_bin())
            .args(["sweep", "--config", g.to_str().unwrap(), "--out"])
            .arg(tmp.path().join("never"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{needle} not in {err}");
        assert!(
            !tmp.path().join("never").exists(),
            "nothing written for {text}"
        );
    }
}

#[test]
fn report_tables_recovery_ratios_and_flagged_runs_are_the_hand_computed_ones() {
    // A real sweep of six cells (clean, bottom:50%, top:50%; seeds 1 and 2), whose result.json
    // scores and statuses are then set by hand: the report reads the eval protocol's score and
    // status from result.json alone, so its tables follow from these numbers.
    let tmp = tempfile::tempdir().unwrap();
    let g = tiny_grid(
        tmp.path(),
        "epochs = 1\nbatch-size = 16\ndevice = \"cpu\"\nthreads = 1\nanalysis-examples = 0",
        "corrupt = [\"none\", \"bottom:50%\", \"top:50%\"]\nlr = [1e-2]\nseed = [1, 2]",
    );
    let out = tmp.path().join("sweep");
    sweep(&g, &out);
    let set = [
        ("none", 1, "ok", 0.80),
        ("none", 2, "ok", 0.60),
        ("bottom50pct", 1, "ok", 0.42),
        ("bottom50pct", 2, "ok", 0.28),
        ("top50pct", 1, "ok", 0.63),
        ("top50pct", 2, "collapsed", 0.99),
    ];
    for (corrupt, seed, status, f1) in set {
        let path = out
            .join("cells")
            .join(format!(
                "tiny-bert_tiny_{corrupt}_reinit_full_cls_lr1e-2_s{seed}"
            ))
            .join("result.json");
        let mut r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        r["status"] = status.into();
        r["reason"] = if status == "ok" {
            ""
        } else {
            "hand-made reason 7"
        }
        .into();
        r["best"]["f1_weighted"] = f1.into();
        std::fs::write(&path, serde_json::to_string(&r).unwrap()).unwrap();
    }
    heal_ok(&["report", out.to_str().unwrap()]);
    let md = std::fs::read_to_string(out.join("report/report.md")).unwrap();
    // Clean: mean 0.70, sd sqrt(0.02) = 0.1414. bottom: 0.35, sd 0.14 / sqrt 2 = 0.0990.
    // top: the collapsed seed is left out: 0.63 alone, no sd, bold against bottom's 0.35.
    // Recovery: 0.35 / 0.70 = 0.500, 0.63 / 0.70 = 0.900, the clean row 1.000.
    for line in [
        "| tiny-bert | 0% | 70.00 ± 14.14 | 70.00 ± 14.14 |",
        "| tiny-bert | 50% | 35.00 ± 9.90 | **63.00** (1 collapsed left out) |",
        "| tiny-bert | 0% | 1.000 | 1.000 |",
        "| tiny-bert | 50% | 0.500 | 0.900 |",
        "- tiny-bert_tiny_top50pct_reinit_full_cls_lr1e-2_s2: collapsed (hand-made reason 7)",
    ] {
        assert!(md.lines().any(|l| l == line), "missing {line:?} in\n{md}");
    }
    let csv_text = std::fs::read_to_string(out.join("report/report.csv")).unwrap();
    let mut rows = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let mut seen = 0;
    for row in rows.records() {
        let row = row.unwrap();
        let (ratio, mean, flagged): (f64, f64, &str) = match &row[col("corrupt")] {
            "none" => (1.0, 0.70, ""),
            "bottom:50%" => (0.5, 0.35, ""),
            "top:50%" => (0.9, 0.63, "1 collapsed"),
            other => panic!("unexpected row {other}"),
        };
        let got = |c: &str| row[col(c)].parse::<f64>().unwrap();
        assert!((got("recovery_ratio") - ratio).abs() < 1e-12, "{row:?}");
        assert!((got("mean_f1") - mean).abs() < 1e-12, "{row:?}");
        assert_eq!(&row[col("flagged")], flagged);
        seen += 1;
    }
    assert_eq!(seen, 3);
}
