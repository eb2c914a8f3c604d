//! The study report (`heal report`) on a tiny 3-seed sweep: claims.json against an independent
//! numpy/scipy computation on the cells' result.json files, runs.csv read by pandas, index.html
//! linking only files that exist, and the same report byte for byte once every checkpoint and
//! every file the report does not need is deleted.

mod common;

use common::{fixtures, heal_ok, tiny_grid, venv_python};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const SEEDS: usize = 3;
const SPECS: [&str; 4] = ["none", "bottom:50%", "top:50%", "all"];

/// Six epochs at 3e-3: on tiny-bert, two epochs leave most cells collapsed onto one class, and
/// the claims need ok runs on every seed.
fn grid(dir: &Path) -> PathBuf {
    tiny_grid(
        dir,
        "epochs = 6\nbatch-size = 8\ndevice = \"cpu\"\nthreads = 1\nsave-checkpoint = \"best,corrupted\"\ndump-embeddings = \"best\"",
        "corrupt = [\"none\", \"bottom:50%\", \"top:50%\", \"all\"]\nlr = [3e-3]\nseed = [1, 2, 3]",
    )
}

/// Every file under `dir`, relative, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

/// Numbers equal to 1e-9, everything else exactly; `at` names the place for the message.
fn assert_json_close(heal: &serde_json::Value, reference: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (heal, reference) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            assert!((a - b).abs() <= 1e-9, "{at}: heal {a}, reference {b}");
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{at}: lengths differ");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_json_close(x, y, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            let (ka, kb): (Vec<_>, Vec<_>) = (a.keys().collect(), b.keys().collect());
            assert_eq!(ka, kb, "{at}: keys differ");
            for (k, x) in a {
                assert_json_close(x, &b[k], &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(heal, reference, "{at}"),
    }
}

/// The relative targets of every `src="..."` and `href="..."` in `html`.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').unwrap();
            out.push(rest[..end].replace("&amp;", "&"));
            rest = &rest[end..];
        }
    }
    out
}

#[test]
fn study_report_of_a_tiny_three_seed_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid(tmp.path());
    let sweep = tmp.path().join("sweep");
    heal_ok(&[
        "sweep",
        "--config",
        g.to_str().unwrap(),
        "--out",
        sweep.to_str().unwrap(),
    ]);
    heal_ok(&["report", sweep.to_str().unwrap()]);
    let report = sweep.join("report");

    // claims.json equals numpy/scipy on the cells' result.json files.
    let out = Command::new(venv_python())
        .arg(fixtures().join("study_claims.py"))
        .arg(&sweep)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "study_claims.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let claims: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("claims.json")).unwrap())
            .unwrap();
    assert_json_close(&claims, &reference, "claims");
    let level = &claims["sections"][0]["bottom_below_top"]["levels"][0];
    assert_eq!(level["level"], "50%");
    assert_eq!(level["seeds"].as_array().unwrap().len(), SEEDS, "{level}");

    // runs.csv opens in pandas: one row per cell, the axes, status, epochs and scores.
    let out = Command::new(venv_python())
        .arg("-c")
        .arg(
            "import sys, pandas as pd; d = pd.read_csv(sys.argv[1]); \
             print(len(d)); print(' '.join(d.columns)); \
             print(d.f1_weighted.dtype, d.possibly_undertrained.dtype, d.seed.dtype)",
        )
        .arg(report.join("runs.csv"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines[0], (SPECS.len() * SEEDS).to_string(), "{printed}");
    for col in [
        "cell",
        "model",
        "dataset",
        "corrupt",
        "method",
        "train",
        "pooling",
        "lr",
        "seed",
        "status",
        "reason",
        "best_epoch",
        "epochs_run",
        "possibly_undertrained",
        "f1_weighted",
        "f1_macro",
        "accuracy",
        "train_seconds",
        "total_seconds",
    ] {
        assert!(
            lines[1].split(' ').any(|c| c == col),
            "{col} missing: {printed}"
        );
    }
    assert_eq!(lines[2], "float64 bool int64", "{printed}");

    // index.html links only files that exist, and anchors that exist; no script.
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(!html.contains("<script"), "no JavaScript");
    let targets = links(&html);
    assert!(targets
        .iter()
        .any(|t| t.starts_with("figures/") && t.ends_with(".png")));
    for t in &targets {
        assert!(!t.contains("://"), "external resource {t}");
        match t.strip_prefix('#') {
            Some(id) => assert!(html.contains(&format!("id=\"{id}\"")), "no anchor {t}"),
            None => assert!(report.join(t).is_file(), "{t} does not exist"),
        }
    }
    assert!(report.join("index.md").is_file());
    for figure in [
        "f1",
        "tsne",
        "cka",
        "separation",
        "weights-none",
        "weights-bottom50pct",
    ] {
        let name = format!("figures/tiny-bert-tiny-reinit-full-cls-{figure}.png");
        assert!(targets.contains(&name), "{name} not on the page");
    }
    for needle in ["Figure 1", "Weight magnitudes", "CKA", "claims"] {
        assert!(html.contains(needle), "{needle} missing from index.html");
    }
    let md = std::fs::read_to_string(report.join("index.md")).unwrap();
    assert!(
        !md.contains(tmp.path().to_str().unwrap()),
        "an absolute path in index.md"
    );

    // Delete every checkpoint and every file the report does not need: the same report.
    let first = tmp.path().join("first-report");
    std::fs::rename(&report, &first).unwrap();
    let keep = ["run.json", "result.json", "metrics.jsonl", "analysis"];
    let mut deleted = 0;
    for cell in std::fs::read_dir(sweep.join("cells")).unwrap() {
        let cell = cell.unwrap().path();
        assert!(
            cell.join("analysis").is_dir(),
            "{} has no artefacts",
            cell.display()
        );
        for e in std::fs::read_dir(&cell).unwrap() {
            let p = e.unwrap().path();
            if keep.iter().any(|k| p.file_name().unwrap() == *k) {
                continue;
            }
            if p.is_dir() {
                std::fs::remove_dir_all(&p).unwrap();
            } else {
                std::fs::remove_file(&p).unwrap();
            }
            deleted += 1;
        }
    }
    for e in std::fs::read_dir(&sweep).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap() != "plan.json" && p.file_name().unwrap() != "cells" {
            // claims/ (who ran each cell) is a folder; the report reads neither.
            if p.is_dir() {
                std::fs::remove_dir_all(&p).unwrap();
            } else {
                std::fs::remove_file(&p).unwrap();
            }
        }
    }
    assert!(
        deleted >= SPECS.len() * SEEDS * 3,
        "checkpoints and embeddings deleted"
    );
    heal_ok(&["report", sweep.to_str().unwrap()]);
    let (a, b) = (files(&first), files(&report));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the same files"
    );
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{} differs", name.display());
    }

    // A cell without artefacts is listed, and its figures say so.
    let clean = "tiny-bert_tiny_none_reinit_full_cls_lr3e-3_s1";
    std::fs::remove_dir_all(sweep.join("cells").join(clean).join("analysis")).unwrap();
    // The report folder exists now: replacing it is asked for (issue 17's output rule).
    heal_ok(&["report", sweep.to_str().unwrap(), "--overwrite"]);
    let md = std::fs::read_to_string(report.join("index.md")).unwrap();
    let listed = md.split("**Without analysis artefacts**").nth(1).unwrap();
    assert!(listed.contains(clean), "{md}");
    assert!(
        md.contains(&format!("no artefacts ({clean} has no analysis/)")),
        "{md}"
    );
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    for t in links(&html).iter().filter(|t| !t.starts_with('#')) {
        assert!(report.join(t).is_file(), "{t} does not exist");
    }
}
