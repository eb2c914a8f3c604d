//! The study's unit: one model x dataset x setting (method, train mode, pooling), with its
//! corruption settings in the paper's Figure 1 order and the runs each one rests on.

use super::runs::Outcome;
use super::Aggregate;
use crate::corrupt::spec::{Amount, LayerSpec, Side};
use crate::run_dir::Status;
use crate::sweep::slug;
use std::cmp::Ordering;
use std::path::PathBuf;

/// A finished, ok run at its setting's chosen learning rate.
#[derive(Debug, Clone)]
pub(super) struct SeedRun {
    pub(super) seed: u64,
    /// The reported weighted F1 (at the protocol's chosen epoch).
    pub(super) score: f64,
    /// The cell's name under SWEEP/cells/.
    pub(super) cell: String,
    pub(super) undertrained: bool,
}

/// The run a setting's figures show.
#[derive(Debug, Clone)]
pub(super) struct Shown {
    pub(super) seed: u64,
    pub(super) cell: String,
    pub(super) dir: PathBuf,
    pub(super) status: Status,
    /// The reported weighted F1, when the run has one.
    pub(super) score: Option<f64>,
}

impl Shown {
    /// "seed 1", or "seed 1, collapsed" for a flagged run.
    pub(super) fn describe(&self) -> String {
        match self.status {
            Status::Ok => format!("seed {}", self.seed),
            s => format!("seed {}, {}", self.seed, super::status_name(s)),
        }
    }
}

/// One corruption setting of a section at its chosen learning rate.
#[derive(Debug, Clone)]
pub(super) struct Setting {
    pub(super) spec: LayerSpec,
    /// The table cell over seeds (chosen rate, mean, std, flagged and unfinished runs).
    pub(super) aggregate: Aggregate,
    /// The ok runs at the chosen rate, by seed.
    pub(super) runs: Vec<SeedRun>,
    /// The first seed at the chosen rate (an ok run where there is one); with no chosen rate
    /// (no ok run at any), the first finished run.
    pub(super) shown: Option<Shown>,
}

impl Setting {
    pub(super) fn corrupt(&self) -> &str {
        &self.aggregate.corrupt
    }

    pub(super) fn scores(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.score).collect()
    }
}

/// One model x dataset x setting.
#[derive(Debug, Clone)]
pub(super) struct Section {
    pub(super) model: String,
    pub(super) dataset: String,
    pub(super) method: String,
    pub(super) train: String,
    pub(super) pooling: String,
    /// In Figure 1 order: 0%, each level ascending (top, then bottom), counts, layer lists, 100%.
    pub(super) settings: Vec<Setting>,
    /// The classes, from the first finished run's result.json.
    pub(super) label_names: Vec<String>,
}

impl Section {
    pub(super) fn title(&self) -> String {
        format!(
            "{} on {}: method {}, --train {}, pooling {}",
            self.model, self.dataset, self.method, self.train, self.pooling
        )
    }

    /// A file-name-safe key, unique per section: the stem of its figures and its anchor.
    pub(super) fn slug(&self) -> String {
        format!(
            "{}-{}-{}-{}-{}",
            slug(&self.model),
            slug(&self.dataset),
            slug(&self.method),
            slug(&self.train),
            self.pooling
        )
    }

    pub(super) fn clean(&self) -> Option<&Setting> {
        self.settings
            .iter()
            .find(|s| matches!(s.spec, LayerSpec::None))
    }

    pub(super) fn setting(&self, spec: &LayerSpec) -> Option<&Setting> {
        self.settings.iter().find(|s| &s.spec == spec)
    }
}

/// Figure 1's order of corruption settings.
pub(super) fn figure_order(a: &LayerSpec, b: &LayerSpec) -> Ordering {
    // (rank, amount, side: top before bottom)
    fn key(s: &LayerSpec) -> (u8, f64, u8) {
        let side = |s: &LayerSpec| match s.side() {
            Some(Side::Top) => 0,
            _ => 1,
        };
        match s {
            LayerSpec::None => (0, 0.0, 0),
            LayerSpec::Bottom(Amount::Percent(p)) | LayerSpec::Top(Amount::Percent(p)) => {
                (1, *p, side(s))
            }
            LayerSpec::Bottom(Amount::Count(k)) | LayerSpec::Top(Amount::Count(k)) => {
                (2, *k as f64, side(s))
            }
            LayerSpec::Layers(_) => (3, 0.0, 0),
            LayerSpec::All => (4, 0.0, 0),
        }
    }
    let (x, y) = (key(a), key(b));
    x.0.cmp(&y.0)
        .then(x.1.total_cmp(&y.1))
        .then(x.2.cmp(&y.2))
        .then_with(|| a.to_string().cmp(&b.to_string()))
}

/// The sections of a report, in the order the plan first names them.
pub(super) fn sections(outcomes: &[Outcome], aggregates: &[Aggregate]) -> Vec<Section> {
    let key = |o: &Outcome| {
        let c = o.cell;
        (
            c.model.clone(),
            c.dataset.clone(),
            c.config.method.to_string(),
            c.config.train.to_string(),
            c.pooling_name().to_string(),
        )
    };
    let mut keys = Vec::new();
    for o in outcomes {
        let k = key(o);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|(model, dataset, method, train, pooling)| {
            let mine: Vec<&Outcome> = outcomes
                .iter()
                .filter(|o| {
                    key(o)
                        == (
                            model.clone(),
                            dataset.clone(),
                            method.clone(),
                            train.clone(),
                            pooling.clone(),
                        )
                })
                .collect();
            let mut settings: Vec<Setting> = aggregates
                .iter()
                .filter(|a| {
                    (&a.model, &a.dataset, &a.method, &a.train, &a.pooling)
                        == (&model, &dataset, &method, &train, &pooling)
                })
                .filter_map(|a| {
                    let first = mine
                        .iter()
                        .find(|o| o.cell.config.corrupt.to_string() == a.corrupt)?;
                    let lr = a.lr.map(|l| format!("{l:e}"));
                    let at_rate: Vec<&&Outcome> = mine
                        .iter()
                        .filter(|o| o.cell.config.corrupt.to_string() == a.corrupt)
                        .filter(|o| {
                            lr.is_none()
                                || lr.as_deref() == Some(format!("{:e}", o.cell.config.lr).as_str())
                        })
                        .collect();
                    let mut runs: Vec<SeedRun> = at_rate
                        .iter()
                        .filter(|o| o.status == Some(Status::Ok))
                        .filter_map(|o| {
                            Some(SeedRun {
                                seed: o.cell.config.seed,
                                score: o.score?,
                                cell: o.cell.name.clone(),
                                undertrained: o.possibly_undertrained(),
                            })
                        })
                        .collect();
                    runs.sort_by_key(|r| r.seed);
                    // Ok runs first, then by seed; the plan's order breaks ties across rates.
                    let shown = at_rate
                        .iter()
                        .filter_map(|o| o.status.map(|s| (s, o)))
                        .min_by_key(|(s, o)| (*s != Status::Ok, o.cell.config.seed))
                        .map(|(status, o)| Shown {
                            seed: o.cell.config.seed,
                            cell: o.cell.name.clone(),
                            dir: o.cell.config.out.clone(),
                            status,
                            score: o.score,
                        });
                    Some(Setting {
                        spec: first.cell.config.corrupt.clone(),
                        aggregate: a.clone(),
                        runs,
                        shown,
                    })
                })
                .collect();
            settings.sort_by(|a, b| figure_order(&a.spec, &b.spec));
            let label_names = mine
                .iter()
                .find_map(|o| o.result.as_ref().map(|r| r.label_names.clone()))
                .unwrap_or_default();
            Section {
                model,
                dataset,
                method,
                train,
                pooling,
                settings,
                label_names,
            }
        })
        .collect()
}
