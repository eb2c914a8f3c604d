//! plan.json: the manifest of a sweep's cells, each with its coordinates and resolved
//! configuration. `heal sweep --cell I` and `heal report` read it.
//!
//! Every path in it that points into the sweep is relative to the sweep folder (a cell's run
//! directory is `cells/<name>`), so a moved or copied sweep, or one read on another machine,
//! finds its own cells; plans written with other paths are rebased on reading.

use super::grid::GridFile;
use crate::error::user;
use crate::fsio;
use crate::model::head::Pooling;
use crate::train::FinetuneConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const PLAN_JSON: &str = "plan.json";
pub const CELLS_DIR: &str = "cells";

/// One cell: its names on the model and dataset axes and the resolved configuration, which
/// holds every other coordinate (corruption, method, train mode, pooling, lr, seed) typed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    pub index: usize,
    /// The run directory's name under SWEEP/cells/.
    pub name: String,
    /// The model's short name (the embedded name or the checkpoint folder's name).
    pub model: String,
    /// The dataset's name (a [[dataset]] table's name, or the data argument's short name).
    pub dataset: String,
    pub config: FinetuneConfig,
}

impl Cell {
    /// The pooling's name as the cell names and tables write it.
    pub fn pooling_name(&self) -> &'static str {
        match self.config.pooling {
            Pooling::Cls => "cls",
            Pooling::Mean => "mean",
        }
    }
}

/// plan.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// The grid file the plan came from.
    pub grid: PathBuf,
    pub cells: Vec<Cell>,
    /// The sweep folder the plan was made for or read from (not stored: it is wherever
    /// plan.json is); every cell's `config.out` is under it.
    #[serde(skip)]
    pub dir: PathBuf,
}

impl Plan {
    /// Reads a grid file and lays out its cells under `sweep_dir`. Every cell's options are
    /// checked here, and against its model's config.json when that is here, so a bad grid
    /// fails before anything runs.
    pub fn from_grid(grid_path: &Path, sweep_dir: &Path) -> anyhow::Result<Plan> {
        let grid: GridFile = fsio::read_toml(grid_path, "grid")?;
        let cells = grid.cells(grid_path, &sweep_dir.join(CELLS_DIR))?;
        super::models::check(&cells, grid_path)?;
        Ok(Plan {
            grid: grid_path.to_path_buf(),
            cells,
            dir: sweep_dir.to_path_buf(),
        })
    }

    /// Writes `dir`/plan.json, unless one is there already: the same plan is kept as it is, and
    /// another grid's is refused (a UserError saying what differs; [`Plan::replace`] is the
    /// way to change a sweep's grid).
    pub fn write(&self) -> anyhow::Result<()> {
        if let Some(old) = self.existing()? {
            return match super::replan::difference(&old, self) {
                None => Ok(()),
                Some(what) => Err(user(format!(
                    "{}: holds another grid's plan ({what}): pass --replan to replace it (the old grid's cells that differ are moved to {}/), or give another --out",
                    self.dir.join(PLAN_JSON).display(),
                    self.dir.join(super::replan::REPLACED_DIR).display()
                ))),
            };
        }
        self.store()
    }

    /// The plan.json already in `dir`, if any.
    pub(super) fn existing(&self) -> anyhow::Result<Option<Plan>> {
        Ok(if self.dir.join(PLAN_JSON).exists() {
            Some(Plan::read(&self.dir)?)
        } else {
            None
        })
    }

    /// Writes plan.json as it is, with the cells' paths relative to the sweep folder.
    pub(super) fn store(&self) -> anyhow::Result<()> {
        let dir = &self.dir;
        std::fs::create_dir_all(dir).map_err(|e| {
            user(format!(
                "{}: cannot create the sweep directory ({e})",
                dir.display()
            ))
        })?;
        let mut stored = self.clone();
        for cell in &mut stored.cells {
            cell.config.out = Path::new(CELLS_DIR).join(&cell.name);
        }
        fsio::write_json(&dir.join(PLAN_JSON), &stored)
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
        let mut plan: Plan = serde_json::from_str(&text)
            .map_err(|e| user(format!("{}: not a heal sweep plan ({e})", path.display())))?;
        // A cell's run directory is always SWEEP/cells/<name>: whatever path the plan was
        // written with, a moved or copied sweep (or one read on another machine) finds its
        // own cells.
        for cell in &mut plan.cells {
            cell.config.out = sweep_dir.join(CELLS_DIR).join(&cell.name);
        }
        plan.dir = sweep_dir.to_path_buf();
        Ok(plan)
    }
}
