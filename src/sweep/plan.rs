//! plan.json: the manifest of a sweep's cells, each with its coordinates and resolved
//! configuration. `heal sweep --cell I` and `heal report` read it.

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
}

impl Plan {
    /// Reads a grid file and lays out its cells under `sweep_dir`. Every cell's options are
    /// checked here, so a bad grid fails before anything runs.
    pub fn from_grid(grid_path: &Path, sweep_dir: &Path) -> anyhow::Result<Plan> {
        let grid: GridFile = fsio::read_toml(grid_path, "grid")?;
        let cells = grid.cells(grid_path, &sweep_dir.join(CELLS_DIR))?;
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
        let mut plan: Plan = serde_json::from_str(&text)
            .map_err(|e| user(format!("{}: not a heal sweep plan ({e})", path.display())))?;
        // A cell's run directory is always SWEEP/cells/<name>: whatever path the plan was
        // written with, a moved or copied sweep (or one read on another machine) finds its
        // own cells.
        for cell in &mut plan.cells {
            cell.config.out = sweep_dir.join(CELLS_DIR).join(&cell.name);
        }
        Ok(plan)
    }
}
