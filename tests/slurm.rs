//! A real Slurm: `.ci/slurm-up` starts a single-node cluster from Debian's packages, the sweep's
//! generated sbatch script is submitted as is, the array runs every cell, and `heal report`
//! reads what the tasks wrote: the same artefacts and the same study as a local run of the grid.
//!
//! `.ci/run` runs this only when `.ci/slurm-up` succeeds; otherwise it skips it by name and
//! prints the reason ("SKIPPED ... slurm unavailable: ..."), so an unavailable Slurm is never
//! counted as a pass. Run alone: `cargo test --release --test slurm`.

mod common;

use common::{fixtures, heal_ok};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn slurm_job_array_runs_the_sweep() {
    let up = Command::new("bash")
        .arg(repo().join(".ci/slurm-up"))
        .output()
        .expect("bash runs");
    assert!(
        up.status.success(),
        "Slurm did not start: {}",
        String::from_utf8_lossy(&up.stderr).trim()
    );
    let tmp = tempfile::tempdir().unwrap();
    let data = fixtures().join("tiny-data");
    let grid = tmp.path().join("grid.toml");
    std::fs::write(
        &grid,
        format!(
            "[base]\nepochs = 1\nbatch-size = 16\ndevice = \"cpu\"\n\n[grid]\nmodel = [\"{}\"]\ncorrupt = [\"none\", \"top:50%\", \"all\"]\nlr = [1e-3]\n\n[[dataset]]\nname = \"tiny\"\ndata = \"{}\"\neval-data = \"{}\"\n",
            fixtures().join("tiny-bert").display(),
            data.join("train.jsonl").display(),
            data.join("test.jsonl").display()
        ),
    )
    .unwrap();
    let sweep = tmp.path().join("sweep");
    heal_ok(&[
        "sweep",
        "--config",
        grid.to_str().unwrap(),
        "--out",
        sweep.to_str().unwrap(),
        "--slurm",
        "--partition",
        "debug",
        "--cpus",
        "1",
        "--mem",
        "2G",
        "--time",
        "00:10:00",
    ]);
    let script = sweep.join("sweep.sbatch");
    let submit = Command::new("sbatch")
        .arg("--parsable")
        .arg(&script)
        .output()
        .expect("sbatch runs");
    assert!(
        submit.status.success(),
        "sbatch: {}",
        String::from_utf8_lossy(&submit.stderr)
    );
    let job = String::from_utf8_lossy(&submit.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // squeue lists only unfinished tasks of the array.
    let start = Instant::now();
    loop {
        let q = Command::new("squeue")
            .args(["-h", "-j", &job, "-o", "%i"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&q.stdout).trim().is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "array {job} not done in 10 minutes"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    // A finished state is not proof a task ran: check every cell's result and task log.
    for i in 0..3 {
        let log = sweep.join("logs").join(format!("{job}_{i}.out"));
        assert!(log.is_file(), "no log {}", log.display());
    }
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sweep.join("plan.json")).unwrap()).unwrap();
    for cell in plan["cells"].as_array().unwrap() {
        let dir = sweep.join("cells").join(cell["name"].as_str().unwrap());
        assert!(
            dir.join("result.json").is_file(),
            "{} has no result.json; task log: {}",
            dir.display(),
            std::fs::read_to_string(
                sweep
                    .join("logs")
                    .join(format!("{job}_{}.out", cell["index"]))
            )
            .unwrap_or_default()
        );
    }
    let report = heal_ok(&["report", sweep.to_str().unwrap()]);
    let md = String::from_utf8_lossy(&report.stdout);
    assert!(md.contains("3 cells (3 finished, 0 unfinished)"), "{md}");

    // The same grid run here, one process, on the task's thread count: every array task wrote
    // the same analysis artefacts into its cell, and the study built from the tasks' cells is
    // the study built from the local ones (runs.csv aside: it holds wall times).
    let local = tmp.path().join("local");
    heal_ok(&[
        "sweep",
        "--config",
        grid.to_str().unwrap(),
        "--out",
        local.to_str().unwrap(),
        "--threads",
        "1",
    ]);
    heal_ok(&["report", local.to_str().unwrap()]);
    for cell in plan["cells"].as_array().unwrap() {
        let name = cell["name"].as_str().unwrap();
        for file in ["analysis/vectors.safetensors", "analysis/weights.json"] {
            let a = std::fs::read(sweep.join("cells").join(name).join(file))
                .unwrap_or_else(|e| panic!("{name}/{file} from the array task: {e}"));
            let b = std::fs::read(local.join("cells").join(name).join(file)).unwrap();
            assert!(
                a == b,
                "{name}/{file}: the array task's differs from a local run's"
            );
        }
    }
    let study = |root: &Path| -> Vec<(String, Vec<u8>)> {
        let report = root.join("report");
        let mut files: Vec<(String, Vec<u8>)> = ["index.md", "index.html", "claims.json"]
            .iter()
            .map(|f| (f.to_string(), std::fs::read(report.join(f)).unwrap()))
            .collect();
        let mut figures: Vec<_> = std::fs::read_dir(report.join("figures"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        figures.sort();
        for p in figures {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            files.push((name, std::fs::read(&p).unwrap()));
        }
        files
    };
    let (from_slurm, from_local) = (study(&sweep), study(&local));
    assert!(from_slurm.len() > 3, "the study drew no figures");
    assert_eq!(
        from_slurm.iter().map(|f| &f.0).collect::<Vec<_>>(),
        from_local.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((name, a), (_, b)) in from_slurm.iter().zip(&from_local) {
        assert!(
            a == b,
            "report {name}: the array's differs from the local sweep's"
        );
    }
}
