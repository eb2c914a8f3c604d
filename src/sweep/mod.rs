//! Experiment grids: the cross product of models, datasets, corruption specs, methods,
//! `--train` modes, poolings, learning rates and seeds, each cell one run directory under
//! `SWEEP_DIR/cells/<name>/`.
//!
//! A cell is finished when its result.json exists (the trainer writes it last, atomically), so
//! a rerun skips finished cells and redoes any cell that was interrupted, whatever killed it.
//! `plan.json` is the manifest of cells: `heal sweep --cell I` (one Slurm array task) runs
//! cell I of it, and `heal report` reads it.

pub mod report;

use crate::cli::finetune::FinetuneOptions;
use crate::error::user;
use crate::fsio;
use crate::model::head::Pooling;
use crate::run_dir::RESULT_JSON;
use crate::train::FinetuneConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const PLAN_JSON: &str = "plan.json";
pub const CELLS_DIR: &str = "cells";

/// GRID.toml.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GridFile {
    /// Options every cell shares (any `heal finetune` option but `out`).
    #[serde(default)]
    pub base: FinetuneOptions,
    /// The axes; a missing axis takes its value from `base` (or the default).
    #[serde(default)]
    pub grid: Axes,
    /// Named datasets with their own evaluation files (instead of `grid.data`).
    #[serde(default)]
    pub dataset: Vec<DatasetEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Axes {
    pub model: Option<Vec<String>>,
    pub data: Option<Vec<String>>,
    pub corrupt: Option<Vec<String>>,
    pub method: Option<Vec<String>>,
    pub train: Option<Vec<String>>,
    pub pooling: Option<Vec<Pooling>>,
    pub lr: Option<Vec<f64>>,
    pub seed: Option<Vec<u64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DatasetEntry {
    /// The column name in tables and the cell names.
    pub name: String,
    pub data: String,
    pub eval_data: Option<PathBuf>,
    pub eval_split: Option<f64>,
    pub max_train_examples: Option<usize>,
}

/// One cell: its coordinates on every axis and the resolved configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    pub index: usize,
    pub name: String,
    pub model: String,
    pub dataset: String,
    pub corrupt: String,
    pub method: String,
    pub train: String,
    pub pooling: String,
    pub lr: f64,
    pub seed: u64,
    pub config: FinetuneConfig,
}

/// plan.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// The grid file the plan came from.
    pub grid: PathBuf,
    pub cells: Vec<Cell>,
}

impl Plan {
    /// Reads a grid file and lays out its cells under `sweep_dir`. Every cell's options are
    /// checked here, so a bad grid fails before anything runs.
    pub fn from_grid(grid_path: &Path, sweep_dir: &Path) -> anyhow::Result<Plan> {
        let grid: GridFile = fsio::read_toml(grid_path, "grid")?;
        if grid.base.out.is_some() {
            return Err(user(format!(
                "{}: [base] sets `out`, but every cell's run directory is SWEEP_DIR/cells/<name>: remove it and pass --out SWEEP_DIR",
                grid_path.display()
            )));
        }
        let b = &grid.base;
        let one = |v: Option<String>, default: &str| vec![v.unwrap_or_else(|| default.into())];
        let datasets: Vec<DatasetEntry> = match (&grid.grid.data, grid.dataset.is_empty()) {
            (Some(_), false) => {
                return Err(user(format!(
                    "{}: both grid.data and [[dataset]] are given: use one",
                    grid_path.display()
                )))
            }
            (Some(list), true) => list
                .iter()
                .map(|d| DatasetEntry {
                    name: dataset_name(d),
                    data: d.clone(),
                    eval_data: b.eval_data.clone(),
                    eval_split: b.eval_split,
                    max_train_examples: b.max_train_examples,
                })
                .collect(),
            (None, true) => {
                let d = b
                    .data
                    .clone()
                    .unwrap_or_else(|| crate::defaults::BBC_NEWS.into());
                vec![DatasetEntry {
                    name: dataset_name(&d),
                    data: d,
                    eval_data: b.eval_data.clone(),
                    eval_split: b.eval_split,
                    max_train_examples: b.max_train_examples,
                }]
            }
            (None, false) => grid.dataset.clone(),
        };
        let axes = &grid.grid;
        let models = axes
            .model
            .clone()
            .unwrap_or_else(|| one(b.model.clone(), crate::defaults::MINILM_L6));
        let corrupts = axes
            .corrupt
            .clone()
            .unwrap_or_else(|| one(b.corrupt.clone(), "none"));
        let methods = axes
            .method
            .clone()
            .unwrap_or_else(|| one(b.method.clone(), "reinit"));
        let trains = axes
            .train
            .clone()
            .unwrap_or_else(|| one(b.train.clone(), "full"));
        let poolings = axes
            .pooling
            .clone()
            .unwrap_or_else(|| vec![b.pooling.unwrap_or_default()]);
        let lrs = axes
            .lr
            .clone()
            .unwrap_or_else(|| vec![b.lr.unwrap_or(5e-5)]);
        let seeds = axes
            .seed
            .clone()
            .unwrap_or_else(|| vec![b.seed.unwrap_or(42)]);
        for (axis, n) in [
            ("model", models.len()),
            ("data", datasets.len()),
            ("corrupt", corrupts.len()),
            ("method", methods.len()),
            ("train", trains.len()),
            ("pooling", poolings.len()),
            ("lr", lrs.len()),
            ("seed", seeds.len()),
        ] {
            if n == 0 {
                return Err(user(format!(
                    "{}: grid.{axis} is an empty list: give at least one value or leave it out",
                    grid_path.display()
                )));
            }
        }
        let mut cells = Vec::new();
        for model in &models {
            for ds in &datasets {
                for corrupt in &corrupts {
                    for method in &methods {
                        for train in &trains {
                            for pooling in &poolings {
                                for &lr in &lrs {
                                    for &seed in &seeds {
                                        let pooling_name = format!("{pooling:?}").to_lowercase();
                                        let name = [
                                            slug(&model_name(model)),
                                            slug(&ds.name),
                                            slug(corrupt),
                                            slug(method),
                                            slug(train),
                                            pooling_name.clone(),
                                            format!("lr{lr:e}"),
                                            format!("s{seed}"),
                                        ]
                                        .join("_");
                                        let options = FinetuneOptions {
                                            model: Some(model.clone()),
                                            data: Some(ds.data.clone()),
                                            eval_data: ds.eval_data.clone(),
                                            eval_split: ds.eval_split,
                                            max_train_examples: ds.max_train_examples,
                                            corrupt: Some(corrupt.clone()),
                                            method: Some(method.clone()),
                                            train: Some(train.clone()),
                                            pooling: Some(*pooling),
                                            lr: Some(lr),
                                            seed: Some(seed),
                                            out: Some(sweep_dir.join(CELLS_DIR).join(&name)),
                                            overwrite: Some(true),
                                            ..Default::default()
                                        }
                                        .over(grid.base.clone());
                                        let config = options.resolve().map_err(|e| {
                                            user(format!(
                                                "{}: cell {name}: {e:#}",
                                                grid_path.display()
                                            ))
                                        })?;
                                        cells.push(Cell {
                                            index: cells.len(),
                                            name,
                                            model: model_name(model),
                                            dataset: ds.name.clone(),
                                            corrupt: corrupt.clone(),
                                            method: method.clone(),
                                            train: train.clone(),
                                            pooling: pooling_name,
                                            lr,
                                            seed,
                                            config,
                                        });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let mut names: Vec<&str> = cells.iter().map(|c| c.name.as_str()).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(user(format!(
                "{}: two cells would share the run directory {}: make the axis values distinct",
                grid_path.display(),
                w[0]
            )));
        }
        Ok(Plan {
            grid: grid_path.to_path_buf(),
            cells,
        })
    }

    pub fn write(&self, sweep_dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(sweep_dir).map_err(|e| {
            user(format!(
                "{}: cannot create the sweep directory ({e})",
                sweep_dir.display()
            ))
        })?;
        fsio::write_json(&sweep_dir.join(PLAN_JSON), self)
    }

    pub fn read(sweep_dir: &Path) -> anyhow::Result<Plan> {
        let path = sweep_dir.join(PLAN_JSON);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            user(format!(
                "{}: cannot read ({e}): run `heal sweep --config GRID.toml --out {} --plan` first",
                path.display(),
                sweep_dir.display()
            ))
        })?;
        serde_json::from_str(&text)
            .map_err(|e| user(format!("{}: not a heal sweep plan ({e})", path.display())))
    }
}

/// Whether a cell's run directory holds a result.json.
pub fn is_finished(cell: &Cell) -> bool {
    cell.config.out.join(RESULT_JSON).is_file()
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

/// Settings of the generated sbatch script.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub time: String,
    pub cpus: u32,
    pub mem: String,
    pub gpus: u32,
    pub job_name: String,
}

/// An sbatch job-array script: one array task per cell, each `heal sweep --cell I`.
pub fn sbatch_script(
    plan: &Plan,
    sweep_dir: &Path,
    heal: &Path,
    opts: &SlurmOptions,
) -> anyhow::Result<String> {
    let abs = |p: &Path| -> anyhow::Result<PathBuf> {
        Ok(if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir()?.join(p)
        })
    };
    let sweep = abs(sweep_dir)?;
    let cwd = std::env::current_dir()?;
    let mut s = String::new();
    s.push_str("#!/bin/bash\n");
    s.push_str(&format!(
        "# heal sweep: {} cells of {}, one array task per cell.\n# Submit: sbatch {}\n# Then: heal report {}\n",
        plan.cells.len(),
        plan.grid.display(),
        sweep.join("sweep.sbatch").display(),
        sweep.display()
    ));
    s.push_str(&format!("#SBATCH --job-name={}\n", opts.job_name));
    s.push_str(&format!(
        "#SBATCH --array=0-{}\n",
        plan.cells.len().saturating_sub(1)
    ));
    s.push_str(&format!(
        "#SBATCH --output={}/logs/%A_%a.out\n",
        sweep.display()
    ));
    if let Some(p) = &opts.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    s.push_str(&format!("#SBATCH --time={}\n", opts.time));
    s.push_str(&format!("#SBATCH --cpus-per-task={}\n", opts.cpus));
    s.push_str(&format!("#SBATCH --mem={}\n", opts.mem));
    if opts.gpus > 0 {
        s.push_str(&format!("#SBATCH --gres=gpu:{}\n", opts.gpus));
    }
    s.push_str("set -euo pipefail\n");
    s.push_str(&format!("cd {}\n", shell_quote(&cwd.display().to_string())));
    s.push_str(&format!(
        "export OMP_NUM_THREADS=${{SLURM_CPUS_PER_TASK:-{}}}\n",
        opts.cpus
    ));
    s.push_str(&format!(
        "exec {} sweep --out {} --cell \"$SLURM_ARRAY_TASK_ID\" --threads \"$OMP_NUM_THREADS\"\n",
        shell_quote(&abs(heal)?.display().to_string()),
        shell_quote(&sweep.display().to_string())
    ));
    Ok(s)
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A short name for a model: the embedded name, or a checkpoint folder's last component.
fn model_name(model: &str) -> String {
    Path::new(model)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| model.to_string())
}

/// A short name for a data argument: the embedded name, a folder's name, or a file's stem.
fn dataset_name(data: &str) -> String {
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
