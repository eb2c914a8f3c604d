//! Experiment grids: the cross product of models, datasets, corruption specs, methods,
//! `--train` modes, poolings, learning rates and seeds, each cell one run directory under
//! `SWEEP_DIR/cells/<name>/`.
//!
//! A cell is finished when its result.json exists (the trainer writes it last, atomically), so
//! a rerun skips finished cells and redoes any cell that was interrupted, whatever killed it.
//! `plan.json` is the manifest of cells: `heal sweep --cell I` (one Slurm array task) runs
//! cell I of it, `heal sweep --status` and `heal report` read it. Any number of processes, on
//! any number of machines sharing the folder, may run one plan at once: each cell is run under
//! a claim (`claim.rs`), so no cell runs twice at the same time.

mod claim;
mod disk;
mod grid;
mod models;
mod plan;
mod replan;
pub mod report;
mod run;
mod slurm;
mod status;

pub use claim::{Claimant, Holder, CLAIMS_DIR, HEARTBEAT, STALE_AFTER};
pub use disk::{estimate_disk, DiskEstimate, ModelShape};
pub use grid::{Axes, DatasetEntry, GridFile};
pub use plan::{Cell, Plan, CELLS_DIR, PLAN_JSON};
pub use replan::{Replaced, REPLACED_DIR};
pub use run::{is_finished, run_all, run_cell, CellOutcome, SweepRun};
pub use slurm::{sbatch_script, SlurmOptions};
pub use status::{status, FailedCell, StartedCell, StatusCounts, SweepStatus};

use std::path::Path;

/// A short name for a model: the embedded name, or a checkpoint folder's last component.
pub(crate) fn model_name(model: &str) -> String {
    Path::new(model)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| model.to_string())
}

/// A short name for a data argument: the embedded name, a folder's name, or a file's stem.
pub(crate) fn dataset_name(data: &str) -> String {
    let p = Path::new(data);
    let name = if p.is_dir() {
        p.file_name()
    } else {
        p.file_stem()
    }
    .map(|s| s.to_string_lossy().into_owned())
    .unwrap_or_else(|| data.to_string());
    name.trim_end_matches(".jsonl").to_string()
}

/// Keeps letters, digits, '.', '-'; '%' becomes "pct", ',' becomes '+', the rest goes.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            c if c.is_ascii_alphanumeric() || c == '.' || c == '-' => out.push(c),
            '%' => out.push_str("pct"),
            ',' => out.push('+'),
            _ => {}
        }
    }
    if out.is_empty() {
        "x".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs_are_path_safe() {
        assert_eq!(slug("bottom:50%"), "bottom50pct");
        assert_eq!(slug("layers:1-3,7"), "layers1-3+7");
        assert_eq!(slug("noise:0.5"), "noise0.5");
        assert_eq!(slug("../x/y"), "..xy");
    }
}
