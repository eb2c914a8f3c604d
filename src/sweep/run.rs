//! Running cells: skip the finished and those another process has claimed, run the rest under
//! this process's claim, go on past a failed cell.

use super::claim::{self, Acquired, Holder};
use super::{Cell, Plan};
use crate::progress::duration;
use crate::run_dir::RunDir;
use std::time::Instant;

/// Whether a cell's run directory holds a result.json.
pub fn is_finished(cell: &Cell) -> bool {
    RunDir::at(&cell.config.out).is_finished()
}

/// What became of a cell.
#[derive(Debug)]
pub enum CellOutcome {
    /// Run here (to a result.json, ok or not).
    Ran,
    /// Finished earlier (here or by another process): skipped.
    Finished,
    /// Another live process holds its claim (running it now): skipped.
    ClaimedElsewhere(Holder),
}

/// What [`run_all`] did.
#[derive(Debug, Default)]
pub struct SweepRun {
    pub cells: usize,
    pub ran: usize,
    pub finished_earlier: usize,
    /// The cells skipped because another live process was running them.
    pub claimed_elsewhere: Vec<(String, Holder)>,
}

/// Runs cell `cell` of `plan` unless it is finished or another process holds its claim.
pub fn run_cell(plan: &Plan, cell: &Cell) -> anyhow::Result<CellOutcome> {
    run_one(plan, cell, "")
}

/// [`run_cell`], with `note` (the sweep's times) after the cell's name in its log line.
fn run_one(plan: &Plan, cell: &Cell, note: &str) -> anyhow::Result<CellOutcome> {
    let (i, of) = (cell.index + 1, plan.cells.len());
    let finished = || {
        log::info!("cell {i}/{of} {}: finished earlier, skipped", cell.name);
        Ok(CellOutcome::Finished)
    };
    if is_finished(cell) {
        return finished();
    }
    let _claim = match claim::acquire(&plan.dir, &cell.name)? {
        Acquired::Mine(c) => c,
        Acquired::Elsewhere(holder) => {
            log::info!(
                "cell {i}/{of} {}: claimed by another process ({holder}), skipped",
                cell.name
            );
            return Ok(CellOutcome::ClaimedElsewhere(holder));
        }
    };
    // Another process may have finished it between the look above and the claim.
    if is_finished(cell) {
        return finished();
    }
    log::info!("cell {i}/{of} {}{note}", cell.name);
    // A cell killed mid-run continues from its last finished epoch. The claim is released
    // when `_claim` drops: at the end of the cell, ok, failed or on an error.
    if RunDir::at(&cell.config.out).resume_state().exists() {
        crate::train::trainer::resume(&cell.config)?;
    } else {
        crate::train::trainer::restart(&cell.config)?;
    }
    Ok(CellOutcome::Ran)
}

/// Runs every unfinished, unclaimed cell in order. A cell that fails is reported and the sweep
/// goes on; the error at the end names every failed cell.
pub fn run_all(plan: &Plan) -> anyhow::Result<SweepRun> {
    let n = plan.cells.len();
    let done = plan.cells.iter().filter(|c| is_finished(c)).count();
    log::info!("{n} cells, {done} finished earlier, {} to run", n - done);
    let started = Instant::now();
    let mut ran = CellTimes::default();
    let mut summary = SweepRun {
        cells: n,
        ..Default::default()
    };
    let mut failed = Vec::new();
    for (i, cell) in plan.cells.iter().enumerate() {
        // Counted afresh: other processes may be finishing cells of the same plan.
        let to_run = plan.cells[i..].iter().filter(|c| !is_finished(c)).count();
        let note = ran.note(started, to_run);
        let cell_started = Instant::now();
        match run_one(plan, cell, &note) {
            Ok(CellOutcome::Ran) => {
                ran.add(cell_started.elapsed().as_secs_f64());
                summary.ran += 1;
            }
            Ok(CellOutcome::Finished) => summary.finished_earlier += 1,
            Ok(CellOutcome::ClaimedElsewhere(h)) => {
                summary.claimed_elsewhere.push((cell.name.clone(), h))
            }
            Err(e) => {
                log::error!("cell {}/{n} {}: {e:#}", cell.index + 1, cell.name);
                if crate::error::find_user_error(&e).is_some() {
                    // Bad input (a missing data file, say) is shared by other cells: stop here.
                    return Err(e);
                }
                failed.push(cell.name.clone());
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {n} cells failed: {} (see their logs above; rerun the sweep to retry them)",
            failed.len(),
            failed.join(", ")
        );
    }
    Ok(summary)
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
