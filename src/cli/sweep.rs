//! `heal sweep`: run a grid of fine-tuning runs (or plan it, run one cell, or write an sbatch
//! job-array script for Slurm).

use clap::Args;
use heal::error::user;
use heal::progress::duration;
use heal::sweep::{self, Plan, SlurmOptions, SweepStatus};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  heal sweep --config examples/grids/demo.toml --out runs/demo          # run every cell
  heal sweep --config GRID.toml --out SWEEP --plan                      # write SWEEP/plan.json only
  heal sweep --out SWEEP --cell 3                                       # run cell 3 of the plan
  heal sweep --out SWEEP --status                                       # finished, started, left
  heal sweep --config GRID.toml --out SWEEP --slurm --partition gpu --gpus 1 --time 04:00:00
  heal report SWEEP

Cells are run directories SWEEP/cells/<name>/. A cell with a result.json is finished and is
skipped on a rerun; an interrupted cell (no result.json) is run again from its last epoch.

Several processes (on one machine or many sharing the folder, Slurm array tasks, reruns) may
work on one sweep at once: a process claims a cell before running it (SWEEP/claims/<name>/),
and a cell that another live process has claimed is skipped and counted in the summary. The
claim of a killed process is taken over at once on the same machine, and from another machine
once it has gone 10 minutes without its heartbeat (every 30 s). The sweep folder may be moved
or copied: plan.json holds no path into it.")]
pub struct SweepArgs {
    /// The grid (TOML): [base] options shared by every cell (any `heal finetune` option but
    /// out), [grid] lists per axis (model, data, corrupt, method, train, pooling, lr, seed), or
    /// [[dataset]] tables (name, data, eval-data, ...) instead of grid.data. Not needed with
    /// --cell when SWEEP/plan.json exists.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The sweep directory: plan.json, cells/, logs/, report/.
    #[arg(long)]
    pub out: PathBuf,
    /// Only write the manifest of cells (SWEEP/plan.json) and list them.
    #[arg(long)]
    pub plan: bool,
    /// How far the sweep in --out is, from its plan.json and cells (no grid file needed):
    /// finished cells by status, started, left, failed, and an estimate of the time left.
    #[arg(long, conflicts_with_all = ["config", "plan", "cell", "slurm"])]
    pub status: bool,
    /// Run only this cell (0-based index in plan.json), e.g. $SLURM_ARRAY_TASK_ID. A cell that
    /// is finished, or that another live process has claimed (a requeued or repeated task), is
    /// not run: one line says so (by whom) and the exit code is 0.
    #[arg(long)]
    pub cell: Option<usize>,
    /// Replace SWEEP/plan.json with --config's grid when it holds another one (without this, a
    /// different grid into an existing sweep is refused). Cells of the new grid that the old
    /// one had with the same options are kept; the old grid's other cells are moved, folders
    /// and all, to SWEEP/replaced/<time>/cells/ beside the old plan.json (nothing is deleted).
    #[arg(long, requires = "config")]
    pub replan: bool,
    /// Write SWEEP/sweep.sbatch, a Slurm job array with one task per cell, and print how to
    /// submit it.
    #[arg(long)]
    pub slurm: bool,
    /// Slurm partition. [default: the cluster's default]
    #[arg(long)]
    pub partition: Option<String>,
    /// Slurm time limit per cell.
    #[arg(long, default_value = "02:00:00")]
    pub time: String,
    /// CPUs per cell (also libtorch's thread count in the task).
    #[arg(long, default_value_t = 4)]
    pub cpus: u32,
    /// Memory per cell.
    #[arg(long, default_value = "16G")]
    pub mem: String,
    /// GPUs per cell (--gres=gpu:N).
    #[arg(long, default_value_t = 0)]
    pub gpus: u32,
    /// Slurm job name.
    #[arg(long, default_value = "heal-sweep")]
    pub job_name: String,
    /// libtorch threads for the cells run here (overrides the grid).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(args: SweepArgs) -> anyhow::Result<()> {
    if let Some(n) = args.threads {
        heal::threads::check("--threads", n)?;
    }
    if args.status {
        print_status(&args.out, &sweep::status(&args.out)?);
        return Ok(());
    }
    // A file or a run directory at --out is refused before a grid is read (a sweep folder is
    // resumed, never replaced: cells with result.json are skipped).
    heal::fsio::Output::check("--out", &args.out, heal::fsio::Kind::Folder, true)?;
    let mut plan = match (&args.config, args.cell) {
        (Some(grid), _) => Plan::from_grid(grid, &args.out)?,
        (None, Some(_)) => Plan::read(&args.out)?,
        (None, None) => {
            return Err(user(
                "--config GRID.toml is needed (or --cell I with an existing SWEEP/plan.json)",
            ))
        }
    };
    let opts = SlurmOptions {
        partition: args.partition.clone(),
        time: args.time.clone(),
        cpus: args.cpus,
        mem: args.mem.clone(),
        gpus: args.gpus,
        job_name: args.job_name.clone(),
    };
    // Before plan.json is written: a bad Slurm flag leaves the sweep folder as it was.
    if args.slurm {
        opts.check()?;
    }
    if let Some(n) = args.threads {
        for c in &mut plan.cells {
            c.config.threads = Some(n);
        }
    }
    if args.config.is_some() {
        if args.replan {
            let replaced = plan.replace()?;
            if let Some(to) = &replaced.moved_to {
                println!(
                    "plan.json replaced; the old plan and {} superseded cell folder(s) moved to {}",
                    replaced.moved_cells.len(),
                    to.display()
                );
            }
        } else {
            plan.write()?;
        }
    }
    if args.plan {
        let finished = plan.cells.iter().filter(|c| sweep::is_finished(c)).count();
        for c in &plan.cells {
            let mark = if sweep::is_finished(c) {
                "finished"
            } else {
                "to run"
            };
            println!("{:>4}  {:<8}  {}", c.index, mark, c.name);
        }
        println!(
            "{} cells ({} finished); plan: {}",
            plan.cells.len(),
            finished,
            args.out.join(sweep::PLAN_JSON).display()
        );
        println!("{}", sweep::estimate_disk(&plan));
        return Ok(());
    }
    if args.slurm {
        let heal = std::env::current_exe()?;
        let script = sweep::sbatch_script(&plan, &args.out, &heal, &opts)?;
        std::fs::create_dir_all(args.out.join("logs"))?;
        let path = args.out.join("sweep.sbatch");
        heal::fsio::write_atomic(&path, script.as_bytes())?;
        println!("{}", path.display());
        println!(
            "submit: sbatch {}   then, when the array is done: heal report {}",
            path.display(),
            args.out.display()
        );
        return Ok(());
    }
    if let Some(i) = args.cell {
        let n = plan.cells.len();
        let cell = plan.cells.get(i).ok_or_else(|| {
            user(format!(
                "--cell {i}: the plan in {} has cells 0 to {}",
                args.out.display(),
                n.saturating_sub(1)
            ))
        })?;
        if let sweep::CellOutcome::ClaimedElsewhere(h) = sweep::run_cell(&plan, cell)? {
            println!(
                "cell {i} ({}): running elsewhere ({h}); not run here",
                cell.name
            );
        }
        return Ok(());
    }
    let run = sweep::run_all(&plan)?;
    let out = args.out.display();
    if run.claimed_elsewhere.is_empty() {
        println!(
            "sweep finished: {} cells in {out}; next: heal report {out}",
            run.cells
        );
    } else {
        println!(
            "sweep done here: {} cells in {out}, {} run here, {} finished earlier, {} skipped as claimed elsewhere (running in other processes: heal sweep --out {out} --status shows where); when they finish: heal report {out}",
            run.cells,
            run.ran,
            run.finished_earlier,
            run.claimed_elsewhere.len()
        );
    }
    Ok(())
}

fn print_status(out: &Path, s: &SweepStatus) {
    let f = &s.finished;
    println!("{}: {} cells", out.display(), s.cells);
    println!(
        "finished  {:>4}  (ok {}, collapsed {}, diverged {}, failed {})",
        f.total(),
        f.ok,
        f.collapsed,
        f.diverged,
        f.failed
    );
    let running = s.started.iter().filter(|c| c.running.is_some()).count();
    println!(
        "started   {:>4}  ({running} running, {} killed: a rerun resumes them)",
        s.started.len(),
        s.started.len() - running
    );
    for c in &s.started {
        let since = c.since.map_or("unknown".into(), |d| {
            format!("{} ago", duration(d.as_secs_f64()))
        });
        let state = match &c.running {
            Some(h) => format!("running ({h})"),
            None => "not running".into(),
        };
        println!("  {:>4}  {}  started {since}, {state}", c.index, c.name);
    }
    println!("left      {:>4}", s.left);
    match (s.seconds_left, s.mean_cell_seconds) {
        _ if s.left == 0 && s.started.is_empty() => {
            println!(
                "every cell is finished; next: heal report {}",
                out.display()
            )
        }
        (Some(left), Some(mean)) => println!(
            "time left about {} at one cell at a time ({} per cell, mean of {} finished)",
            duration(left),
            duration(mean),
            f.total() - f.failed
        ),
        _ => println!("time left unknown until a cell finishes"),
    }
    if !s.failed.is_empty() {
        println!("failed cells (rerun the sweep to retry them):");
        for c in &s.failed {
            println!("  {:>4}  {}: {}", c.index, c.name, c.reason);
        }
    }
}
