//! `heal sweep --out S --status`: where a sweep stands, read from S/plan.json and the cells'
//! folders alone (no grid file): finished cells by status, started ones, the ones left, and the
//! time left estimated from the finished cells' wall times. A started cell is running when a
//! live process holds its claim (which host, which pid), else it was killed.

use super::{claim, Holder, Plan, CELLS_DIR};
use crate::run_dir::{RunDir, Status};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Where a sweep stands.
#[derive(Debug, Clone)]
pub struct SweepStatus {
    pub cells: usize,
    /// Cells with a result.json, by status.
    pub finished: StatusCounts,
    /// Cells with a folder or a live claim but no result.json: running, or killed (a rerun
    /// resumes them from their last finished epoch, or redoes them).
    pub started: Vec<StartedCell>,
    /// Cells without a folder.
    pub left: usize,
    /// The failed cells (status failed, or a result.json that cannot be read) and why.
    pub failed: Vec<FailedCell>,
    /// The finished cells' mean wall time (failed cells left out), when any finished.
    pub mean_cell_seconds: Option<f64>,
    /// The work left at one cell at a time: the mean cell time for every cell left, and what
    /// remains of it for every started cell.
    pub seconds_left: Option<f64>,
}

/// Finished cells per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub ok: usize,
    pub collapsed: usize,
    pub diverged: usize,
    pub failed: usize,
}

impl StatusCounts {
    pub fn total(&self) -> usize {
        self.ok + self.collapsed + self.diverged + self.failed
    }
}

#[derive(Debug, Clone)]
pub struct StartedCell {
    pub index: usize,
    pub name: String,
    /// Since run.json was written (the run's start), else since the folder was made.
    pub since: Option<Duration>,
    /// The live process running it; None: not running (killed).
    pub running: Option<Holder>,
}

#[derive(Debug, Clone)]
pub struct FailedCell {
    pub index: usize,
    pub name: String,
    pub reason: String,
}

/// Reads `sweep_dir`/plan.json and every cell's folder.
pub fn status(sweep_dir: &Path) -> anyhow::Result<SweepStatus> {
    let plan = Plan::read(sweep_dir)?;
    let now = SystemTime::now();
    let mut finished = StatusCounts::default();
    let mut started = Vec::new();
    let mut left = 0;
    let mut failed = Vec::new();
    let mut wall = Vec::new();
    for cell in &plan.cells {
        // From the folder given, not the plan's `out`, which is relative to where it was made.
        let run = RunDir::at(sweep_dir.join(CELLS_DIR).join(&cell.name));
        if run.is_finished() {
            let result = match run.read_result() {
                Ok(r) => r,
                Err(e) => {
                    finished.failed += 1;
                    failed.push(FailedCell {
                        index: cell.index,
                        name: cell.name.clone(),
                        reason: format!("{e:#}"),
                    });
                    continue;
                }
            };
            match result.status {
                Status::Ok => finished.ok += 1,
                Status::Collapsed => finished.collapsed += 1,
                Status::Diverged => finished.diverged += 1,
                Status::Failed => finished.failed += 1,
            }
            if result.status == Status::Failed {
                failed.push(FailedCell {
                    index: cell.index,
                    name: cell.name.clone(),
                    reason: result.reason,
                });
            } else {
                wall.push(result.wall_seconds);
            }
            continue;
        }
        let running = claim::holder(sweep_dir, &cell.name);
        if run.path.is_dir() || running.is_some() {
            let written = std::fs::metadata(run.run_json())
                .or_else(|_| std::fs::metadata(&run.path))
                .and_then(|m| m.modified());
            started.push(StartedCell {
                index: cell.index,
                name: cell.name.clone(),
                since: written.ok().and_then(|t| now.duration_since(t).ok()),
                running,
            });
        } else {
            left += 1;
        }
    }
    let mean = (!wall.is_empty()).then(|| wall.iter().sum::<f64>() / wall.len() as f64);
    let seconds_left = mean.map(|m| {
        let started_left: f64 = started
            .iter()
            .map(|c| (m - c.since.map_or(0.0, |d| d.as_secs_f64())).max(0.0))
            .sum();
        m * left as f64 + started_left
    });
    Ok(SweepStatus {
        cells: plan.cells.len(),
        finished,
        started,
        left,
        failed,
        mean_cell_seconds: mean,
        seconds_left,
    })
}
