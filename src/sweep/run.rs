//! Running cells: skip the finished, run the rest, go on past a failed cell.

use super::{Cell, Plan};
use crate::progress::duration;
use crate::run_dir::RunDir;
use std::time::Instant;

/// Whether a cell's run directory holds a result.json.
pub fn is_finished(cell: &Cell) -> bool {
    RunDir::at(&cell.config.out).is_finished()
}

/// Runs one cell unless it is finished. Returns whether it ran.
pub fn run_cell(cell: &Cell, of: usize) -> anyhow::Result<bool> {
    run_one(cell, of, "")
}

/// [`run_cell`], with `note` (the sweep's times) after the cell's name in its log line.
fn run_one(cell: &Cell, of: usize, note: &str) -> anyhow::Result<bool> {
    if is_finished(cell) {
        log::info!(
            "cell {}/{of} {}: finished earlier, skipped",
            cell.index + 1,
            cell.name
        );
        return Ok(false);
    }
    log::info!("cell {}/{of} {}{note}", cell.index + 1, cell.name);
    // A cell killed mid-run continues from its last finished epoch.
    if RunDir::at(&cell.config.out).resume_state().exists() {
        crate::train::trainer::resume(&cell.config)?;
    } else {
        crate::train::trainer::restart(&cell.config)?;
    }
    Ok(true)
}

/// Runs every unfinished cell in order. A cell that fails is reported and the sweep goes on;
/// the error at the end names every failed cell.
pub fn run_all(plan: &Plan) -> anyhow::Result<()> {
    let n = plan.cells.len();
    let done = plan.cells.iter().filter(|c| is_finished(c)).count();
    log::info!("{n} cells, {done} finished earlier, {} to run", n - done);
    let started = Instant::now();
    let mut ran = CellTimes::default();
    let mut failed = Vec::new();
    for (i, cell) in plan.cells.iter().enumerate() {
        // Counted afresh: other processes may be finishing cells of the same plan.
        let to_run = plan.cells[i..].iter().filter(|c| !is_finished(c)).count();
        let note = ran.note(started, to_run);
        let cell_started = Instant::now();
        let outcome = run_one(cell, n, &note);
        if let Ok(true) = outcome {
            ran.add(cell_started.elapsed().as_secs_f64());
        }
        if let Err(e) = outcome {
            log::error!("cell {}/{n} {}: {e:#}", cell.index + 1, cell.name);
            if crate::error::find_user_error(&e).is_some() {
                // Bad input (a missing data file, say) is shared by other cells: stop here.
                return Err(e);
            }
            failed.push(cell.name.clone());
        }
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {n} cells failed: {} (see their logs above; rerun the sweep to retry them)",
            failed.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// The wall times of the cells this process ran to the end, for the estimate of the time left.
#[derive(Default)]
struct CellTimes {
    seconds: f64,
    count: usize,
}

impl CellTimes {
    fn add(&mut self, seconds: f64) {
        self.seconds += seconds;
        self.count += 1;
    }

    /// `  (elapsed 4m 10s, about 12m 30s left: 6 cells at 2m 05s each)`, counting the cell about
    /// to start among the `to_run`; only the elapsed time before any cell has finished here.
    fn note(&self, started: Instant, to_run: usize) -> String {
        let elapsed = duration(started.elapsed().as_secs_f64());
        if self.count == 0 {
            return format!("  (elapsed {elapsed})");
        }
        let mean = self.seconds / self.count as f64;
        format!(
            "  (elapsed {elapsed}, about {} left: {to_run} cell{} at {} each)",
            duration(mean * to_run as f64),
            if to_run == 1 { "" } else { "s" },
            duration(mean)
        )
    }
}
