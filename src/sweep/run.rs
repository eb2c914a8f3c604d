//! Running cells: skip the finished, run the rest, go on past a failed cell.

use super::{Cell, Plan};
use crate::run_dir::RunDir;

/// Whether a cell's run directory holds a result.json.
pub fn is_finished(cell: &Cell) -> bool {
    RunDir::at(&cell.config.out).is_finished()
}

/// Runs one cell unless it is finished. Returns whether it ran.
pub fn run_cell(cell: &Cell, of: usize) -> anyhow::Result<bool> {
    if is_finished(cell) {
        log::info!(
            "cell {}/{of} {}: finished earlier, skipped",
            cell.index + 1,
            cell.name
        );
        return Ok(false);
    }
    log::info!("cell {}/{of} {}", cell.index + 1, cell.name);
    crate::train::trainer::finetune(&cell.config)?;
    Ok(true)
}

/// Runs every unfinished cell in order. A cell that fails is reported and the sweep goes on;
/// the error at the end names every failed cell.
pub fn run_all(plan: &Plan) -> anyhow::Result<()> {
    let n = plan.cells.len();
    let done = plan.cells.iter().filter(|c| is_finished(c)).count();
    log::info!("{n} cells, {done} finished earlier, {} to run", n - done);
    let mut failed = Vec::new();
    for cell in &plan.cells {
        if let Err(e) = run_cell(cell, n) {
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
