//! `heal demo`: the healing study on the embedded defaults, from nothing to a report page.
//!
//! The study is an ordinary sweep (examples/grids/demo.toml, embedded here) followed by the
//! ordinary report, so the demo shows exactly what `heal sweep` and `heal report` do and
//! resumes the same way: a rerun skips finished cells.

use crate::error::user;
use crate::fsio::{Kind, Output};
use crate::sweep::report::{self, Protocol};
use crate::sweep::{self, Plan};
use std::path::{Path, PathBuf};

/// The demo's grid: minilm-l6 on bbc-news at 0%, bottom 50%, top 50% and 100% re-initialised.
pub const GRID: &str = include_str!("../examples/grids/demo.toml");

/// The grid file's name inside the demo's sweep directory.
pub const GRID_FILE: &str = "demo.toml";

/// Where the demo writes.
#[derive(Debug, Clone)]
pub struct DemoRequest {
    /// The sweep directory (plan.json, cells/).
    pub out: PathBuf,
    /// The report folder (index.html, index.md, figures/, ...).
    pub report: PathBuf,
    /// libtorch threads for every cell (None: one per core).
    pub threads: Option<usize>,
}

/// What the demo wrote.
#[derive(Debug, Clone)]
pub struct DemoOutcome {
    pub cells: usize,
    pub report: PathBuf,
    /// The report's files, index.html first.
    pub written: Vec<PathBuf>,
    /// The report's markdown (the tables), for the terminal.
    pub markdown: String,
}

/// Runs (or resumes) the demo's sweep, then writes its report.
pub fn run(req: &DemoRequest) -> anyhow::Result<DemoOutcome> {
    if let Some(n) = req.threads {
        crate::threads::check("--threads", n)?;
    }
    Output::check("--out", &req.out, Kind::Folder, true)?;
    let report_out = report_output(&req.report)?;
    let grid = write_grid(&req.out)?;
    let mut plan = Plan::from_grid(&grid, &req.out)?;
    for cell in &mut plan.cells {
        cell.config.threads = req.threads;
    }
    plan.write()?;
    sweep::run_all(&plan)?;
    let report = report::build(&plan, Protocol::Eval)?;
    let mut written = report::write(&report, &report_out)?;
    // index.html first: it is what the demo ends by pointing at.
    written.sort_by_key(|p| p.file_name().is_none_or(|n| n != "index.html"));
    Ok(DemoOutcome {
        cells: plan.cells.len(),
        report: req.report.clone(),
        written,
        markdown: report.markdown,
    })
}

/// The report folder: the demo remakes its report on every run, so it replaces (whole, once the
/// new one is complete) a folder that holds an earlier report (report.md and index.html); a
/// folder holding anything else is refused before the sweep starts.
fn report_output(path: &Path) -> anyhow::Result<Output> {
    let earlier = path.join("report.md").is_file() && path.join("index.html").is_file();
    let holds_files = std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some());
    if holds_files && !earlier {
        return Err(user(format!(
            "--report {}: holds files that are not a heal report: give the demo another --report (it replaces only an earlier report)",
            path.display()
        )));
    }
    Output::check("--report", path, Kind::Folder, true)
}

/// Writes the embedded grid into the sweep directory, unless an earlier demo left the same
/// text there; a different demo.toml there was not written by this version of the demo, so it
/// is left alone and the user told.
fn write_grid(out: &Path) -> anyhow::Result<PathBuf> {
    let path = out.join(GRID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if text == GRID => return Ok(path),
        Ok(_) => {
            return Err(user(format!(
                "{}: holds another grid than the demo's: give the demo another --out (or run that grid with `heal sweep --config {} --out {}`)",
                path.display(),
                path.display(),
                out.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(user(format!("{}: cannot read ({e})", path.display()))),
    }
    std::fs::create_dir_all(out)
        .map_err(|e| user(format!("{}: cannot create ({e})", out.display())))?;
    crate::fsio::write_atomic(&path, GRID.as_bytes())?;
    Ok(path)
}
