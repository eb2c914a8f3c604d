//! GRID.toml: options every cell shares ([base]), lists per axis ([grid]) or named datasets
//! ([[dataset]]), expanded into cells as a cartesian product.

use super::plan::Cell;
use super::{dataset_name, model_name, slug};
use crate::error::user;
use crate::model::head::Pooling;
use crate::train::options::defaults;
use crate::train::FinetuneOptions;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The most cells one grid lays out (a paper's table is a few hundred).
pub const MAX_CELLS: usize = 100_000;

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

/// The values of every axis, each a non-empty list, in the order cells are laid out
/// (model slowest, seed fastest).
struct AxisValues {
    models: Vec<String>,
    datasets: Vec<DatasetEntry>,
    corrupts: Vec<String>,
    methods: Vec<String>,
    trains: Vec<String>,
    poolings: Vec<Pooling>,
    lrs: Vec<f64>,
    seeds: Vec<u64>,
}

impl AxisValues {
    fn lens(&self) -> [(&'static str, usize); 8] {
        [
            ("model", self.models.len()),
            ("data", self.datasets.len()),
            ("corrupt", self.corrupts.len()),
            ("method", self.methods.len()),
            ("train", self.trains.len()),
            ("pooling", self.poolings.len()),
            ("lr", self.lrs.len()),
            ("seed", self.seeds.len()),
        ]
    }
}

/// The coordinates of product index `index` over axes of these lengths, the last axis
/// varying fastest (as nested loops with the first axis outermost would visit them).
fn coordinates(mut index: usize, lens: &[usize; 8]) -> [usize; 8] {
    let mut at = [0; 8];
    for (slot, &len) in at.iter_mut().zip(lens).rev() {
        *slot = index % len;
        index /= len;
    }
    at
}

impl GridFile {
    fn datasets(&self, grid_path: &Path) -> anyhow::Result<Vec<DatasetEntry>> {
        let b = &self.base;
        let entry = |d: &String| DatasetEntry {
            name: dataset_name(d),
            data: d.clone(),
            eval_data: b.eval_data.clone(),
            eval_split: b.eval_split,
            max_train_examples: b.max_train_examples,
        };
        match (&self.grid.data, self.dataset.is_empty()) {
            (Some(_), false) => Err(user(format!(
                "{}: both grid.data and [[dataset]] are given: use one",
                grid_path.display()
            ))),
            (Some(list), true) => Ok(list.iter().map(entry).collect()),
            (None, true) => Ok(vec![entry(
                &b.data
                    .clone()
                    .unwrap_or_else(|| crate::defaults::BBC_NEWS.into()),
            )]),
            (None, false) => Ok(self.dataset.clone()),
        }
    }

    fn axis_values(&self, grid_path: &Path) -> anyhow::Result<AxisValues> {
        let (b, axes) = (&self.base, &self.grid);
        let one =
            |v: &Option<String>, default: &str| vec![v.clone().unwrap_or_else(|| default.into())];
        Ok(AxisValues {
            models: axes
                .model
                .clone()
                .unwrap_or_else(|| one(&b.model, crate::defaults::MINILM_L6)),
            datasets: self.datasets(grid_path)?,
            corrupts: axes
                .corrupt
                .clone()
                .unwrap_or_else(|| one(&b.corrupt, defaults::CORRUPT)),
            methods: axes
                .method
                .clone()
                .unwrap_or_else(|| one(&b.method, defaults::METHOD)),
            trains: axes
                .train
                .clone()
                .unwrap_or_else(|| one(&b.train, defaults::TRAIN)),
            poolings: axes
                .pooling
                .clone()
                .unwrap_or_else(|| vec![b.pooling.unwrap_or_default()]),
            lrs: axes
                .lr
                .clone()
                .unwrap_or_else(|| vec![b.lr.unwrap_or(defaults::LR)]),
            seeds: axes
                .seed
                .clone()
                .unwrap_or_else(|| vec![b.seed.unwrap_or(defaults::SEED)]),
        })
    }

    /// Every cell of the grid, resolved and checked, with run directories under `cells_dir`.
    pub fn cells(&self, grid_path: &Path, cells_dir: &Path) -> anyhow::Result<Vec<Cell>> {
        if self.base.out.is_some() {
            return Err(user(format!(
                "{}: [base] sets `out`, but every cell's run directory is SWEEP_DIR/cells/<name>: remove it and pass --out SWEEP_DIR",
                grid_path.display()
            )));
        }
        let v = self.axis_values(grid_path)?;
        let named = v.lens();
        if let Some((axis, _)) = named.iter().find(|(_, n)| *n == 0) {
            return Err(user(format!(
                "{}: grid.{axis} is an empty list: give at least one value or leave it out",
                grid_path.display()
            )));
        }
        let lens = named.map(|(_, n)| n);
        // Checked before any cell is laid out: eight long axes overflow a usize.
        let total = lens
            .iter()
            .try_fold(1usize, |a, &n| a.checked_mul(n))
            .filter(|&n| n <= MAX_CELLS)
            .ok_or_else(|| {
                let sizes: Vec<String> = named.iter().map(|(a, n)| format!("{a} {n}")).collect();
                user(format!(
                    "{}: the grid's axes ({}) make more than {MAX_CELLS} cells: split it into several grids",
                    grid_path.display(),
                    sizes.join(", ")
                ))
            })?;
        let mut cells = Vec::with_capacity(total);
        for index in 0..total {
            let [m, d, c, me, t, p, l, s] = coordinates(index, &lens);
            let (model, ds, corrupt, method, train) = (
                &v.models[m],
                &v.datasets[d],
                &v.corrupts[c],
                &v.methods[me],
                &v.trains[t],
            );
            let (pooling, lr, seed) = (v.poolings[p], v.lrs[l], v.seeds[s]);
            let pooling_name = format!("{pooling:?}").to_lowercase();
            let name = [
                slug(&model_name(model)),
                slug(&ds.name),
                slug(corrupt),
                slug(method),
                slug(train),
                pooling_name,
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
                pooling: Some(pooling),
                lr: Some(lr),
                seed: Some(seed),
                out: Some(cells_dir.join(&name)),
                overwrite: Some(true),
                ..Default::default()
            }
            .over(self.base.clone());
            let config = options
                .resolve()
                .map_err(|e| user(format!("{}: cell {name}: {e:#}", grid_path.display())))?;
            cells.push(Cell {
                index,
                name,
                model: model_name(model),
                dataset: ds.name.clone(),
                config,
            });
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
        Ok(cells)
    }
}

#[cfg(test)]
mod tests {
    use super::{coordinates, GridFile};

    #[test]
    fn a_grid_too_large_to_lay_out_is_a_user_error() {
        // Seven axes of 300 values: 2.2e17 cells. The product was taken unchecked (eight such
        // axes wrap a usize) and the cells' vector sized by it: a capacity-overflow panic.
        let list = |quote: bool| {
            let v: Vec<String> = (1..=300)
                .map(|i| {
                    if quote {
                        format!("\"v{i}\"")
                    } else {
                        i.to_string()
                    }
                })
                .collect();
            format!("[{}]", v.join(","))
        };
        let text = format!(
            "[grid]\nmodel = {s}\ndata = {s}\ncorrupt = {s}\nmethod = {s}\ntrain = {s}\nlr = {n}\nseed = {n}\n",
            s = list(true),
            n = list(false)
        );
        let grid: GridFile = toml::from_str(&text).unwrap();
        let err = grid
            .cells(std::path::Path::new("g.toml"), std::path::Path::new("c"))
            .unwrap_err();
        let msg = crate::error::find_user_error(&err)
            .expect("a user error")
            .to_string();
        assert!(msg.contains("more than 100000 cells"), "{msg}");
    }

    #[test]
    fn coordinates_follow_nested_loop_order() {
        let lens = [2, 1, 3, 1, 1, 1, 2, 1];
        let mut seen = Vec::new();
        for a in 0..2 {
            for c in 0..3 {
                for l in 0..2 {
                    seen.push([a, 0, c, 0, 0, 0, l, 0]);
                }
            }
        }
        let got: Vec<[usize; 8]> = (0..12).map(|i| coordinates(i, &lens)).collect();
        assert_eq!(got, seen);
    }
}
