//! A sweep folder's grid changed: what differs between the plan.json there and a new plan, and
//! `heal sweep --replan`, which replaces the plan and moves the old grid's cells that the new
//! one does not have as they were (another name, other options) out of cells/, so that no
//! finished cell of one grid is ever counted as a cell of another.

use super::{claim, Cell, Plan, CELLS_DIR, PLAN_JSON};
use crate::error::user;
use std::path::PathBuf;

/// The folder under a sweep where `--replan` moves the old plan and its superseded cells.
pub const REPLACED_DIR: &str = "replaced";

/// A cell's configuration as plans are compared: every option but its run directory (which
/// follows the folder) and --threads (which each process may set for itself).
fn options(cell: &Cell) -> serde_json::Value {
    let mut v = serde_json::to_value(&cell.config).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.remove("out");
        map.remove("threads");
    }
    v
}

/// The first option in which two cells of one name differ, as `epochs 4 -> 5`.
fn first_change(old: &Cell, new: &Cell) -> Option<String> {
    let (a, b) = (options(old), options(new));
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return (a != b).then(|| "its options".into());
    };
    let null = serde_json::Value::Null;
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().find_map(|k| {
        let (x, y) = (a.get(k).unwrap_or(&null), b.get(k).unwrap_or(&null));
        (x != y).then(|| format!("{k} {x} -> {y}"))
    })
}

/// The old cells the new plan does not have as they are: gone from the grid, or the same name
/// with other options.
fn superseded<'a>(old: &'a Plan, new: &Plan) -> Vec<&'a Cell> {
    old.cells
        .iter()
        .filter(|o| {
            !new.cells
                .iter()
                .any(|n| n.name == o.name && options(n) == options(o))
        })
        .collect()
}

/// How `new` differs from `old`, in a few words; None when they are the same plan (the same
/// cells with the same options in the same order; the grid file's path may differ).
pub fn difference(old: &Plan, new: &Plan) -> Option<String> {
    let has = |p: &Plan, name: &str| p.cells.iter().any(|c| c.name == name);
    let added: Vec<&str> = new
        .cells
        .iter()
        .filter(|c| !has(old, &c.name))
        .map(|c| c.name.as_str())
        .collect();
    let removed: Vec<&str> = old
        .cells
        .iter()
        .filter(|c| !has(new, &c.name))
        .map(|c| c.name.as_str())
        .collect();
    let changed: Vec<(&str, String)> = old
        .cells
        .iter()
        .filter_map(|o| {
            let n = new.cells.iter().find(|n| n.name == o.name)?;
            Some((o.name.as_str(), first_change(o, n)?))
        })
        .collect();
    let mut parts = Vec::new();
    let few = |names: &[&str]| {
        let shown: Vec<&str> = names.iter().take(2).copied().collect();
        let more = names.len().saturating_sub(2);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!("{}{more}", shown.join(", "))
    };
    if !added.is_empty() {
        parts.push(format!(
            "{} cell(s) only in the new grid: {}",
            added.len(),
            few(&added)
        ));
    }
    if !removed.is_empty() {
        parts.push(format!(
            "{} cell(s) only in the old one: {}",
            removed.len(),
            few(&removed)
        ));
    }
    if let Some((name, change)) = changed.first() {
        let more = if changed.len() > 1 {
            format!(
                " (and {} more cell(s) with other options)",
                changed.len() - 1
            )
        } else {
            String::new()
        };
        parts.push(format!("cell {name}: {change}{more}"));
    }
    if parts.is_empty() {
        let order = |p: &Plan| p.cells.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        if order(old) == order(new) {
            return None;
        }
        parts.push("the same cells in another order (--cell numbers would change)".into());
    }
    Some(parts.join("; "))
}

/// What [`Plan::replace`] did.
#[derive(Debug, Clone, Default)]
pub struct Replaced {
    /// Where the old plan.json and the superseded cells' folders went (None: no plan before).
    pub moved_to: Option<PathBuf>,
    /// The superseded cells whose folders were moved.
    pub moved_cells: Vec<String>,
}

impl Plan {
    /// `--replan`: writes this plan over the one in its folder. The old grid's cells this plan
    /// does not have as they are (another name, other options) are moved, folder and all, to
    /// SWEEP/replaced/<time>/cells/ beside the old plan.json; refused while a live process
    /// holds one of them.
    pub fn replace(&self) -> anyhow::Result<Replaced> {
        let Some(old) = self.existing()? else {
            self.store()?;
            return Ok(Replaced::default());
        };
        let gone = superseded(&old, self);
        for cell in &gone {
            if let Some(h) = claim::holder(&self.dir, &cell.name) {
                return Err(user(format!(
                    "--replan: cell {} of the old plan is running ({h}): wait for it or stop that process, then rerun",
                    cell.name
                )));
            }
        }
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let to = self.dir.join(REPLACED_DIR).join(stamp);
        let io = |what: &PathBuf, e: std::io::Error| {
            user(format!("{}: cannot move aside ({e})", what.display()))
        };
        std::fs::create_dir_all(to.join(CELLS_DIR)).map_err(|e| io(&to, e))?;
        let mut moved_cells = Vec::new();
        for cell in gone {
            let from = self.dir.join(CELLS_DIR).join(&cell.name);
            if from.exists() {
                std::fs::rename(&from, to.join(CELLS_DIR).join(&cell.name))
                    .map_err(|e| io(&from, e))?;
                moved_cells.push(cell.name.clone());
            }
        }
        let plan_json = self.dir.join(PLAN_JSON);
        std::fs::copy(&plan_json, to.join(PLAN_JSON)).map_err(|e| io(&plan_json, e))?;
        self.store()?;
        Ok(Replaced {
            moved_to: Some(to),
            moved_cells,
        })
    }
}
