//! `heal report`: Table 2-style tables (markdown, CSV) and F1-against-corruption charts from a
//! sweep directory, whichever machines wrote its cells, and the study beside them (index.rs):
//! index.html and index.md, runs.csv, claims.json and figures/.
//!
//! Rows are model x corruption level, columns dataset x bottom/top. A table cell is the mean
//! +- sample standard deviation over seeds of the weighted F1 at the chosen learning rate and
//! epoch; runs that collapsed, diverged or failed are shown as such, counted, and left out of
//! every mean.

mod chart;
mod claims;
mod document;
mod evidence;
mod figures;
mod index;
mod markdown;
mod representations;
mod runs;
mod section;

use super::Plan;
use crate::corrupt::spec::LayerSpec;
use crate::fsio;
use crate::fsio::Output;
use crate::run_dir::Status;
use runs::{outcome, Outcome};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How the learning rate and epoch of a table cell are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Protocol {
    /// The paper's: the best epoch and the best learning rate by the evaluation split's
    /// weighted F1, and that same score reported (optimistic: chosen on the test data).
    #[default]
    Eval,
    /// Honest: epoch and learning rate chosen by the weighted F1 on a validation carve-out of
    /// the training data (cells run with `validation-split`), the evaluation split's score
    /// at that choice reported.
    Validation,
}

impl Protocol {
    pub(super) fn describe(self) -> &'static str {
        match self {
            Protocol::Eval => "paper protocol: epoch and learning rate chosen by the evaluation split's weighted F1 (the reported score is the one maximised)",
            Protocol::Validation => "validation protocol: epoch and learning rate chosen on a validation carve-out of the training data; the evaluation split's weighted F1 at that choice is reported",
        }
    }
}

/// One aggregated table cell (a model, dataset, setting and corruption spec over seeds).
#[derive(Debug, Clone, Serialize)]
pub struct Aggregate {
    pub model: String,
    pub dataset: String,
    pub method: String,
    pub train: String,
    pub pooling: String,
    pub corrupt: String,
    pub level: String,
    pub side: String,
    pub protocol: String,
    /// The chosen learning rate (None when no run at any rate finished ok).
    pub lr: Option<f64>,
    pub runs_ok: usize,
    /// Runs at the chosen rate (or, without one, at any rate) that collapsed, diverged or failed.
    pub runs_flagged: usize,
    pub flagged: String,
    pub runs_unfinished: usize,
    pub mean_f1: Option<f64>,
    pub std_f1: Option<f64>,
    /// mean_f1 / the clean (corrupt = none) mean of the same model, dataset and setting.
    pub recovery_ratio: Option<f64>,
    #[serde(skip)]
    pub(super) level_value: Option<f64>,
}

fn mean_std(v: &[f64]) -> (Option<f64>, Option<f64>) {
    if v.is_empty() {
        return (None, None);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let std = (v.len() > 1)
        .then(|| (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    (Some(mean), std)
}

pub(super) fn status_name(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Diverged => "diverged",
        Status::Collapsed => "collapsed",
        Status::Failed => "failed",
    }
}

/// Everything `heal report` computes.
pub struct Report {
    pub aggregates: Vec<Aggregate>,
    pub markdown: String,
    pub cells: usize,
    pub finished: usize,
    study: index::Study,
}

type GroupKey = (String, String, String, String, String, String);

pub fn build(plan: &Plan, protocol: Protocol) -> anyhow::Result<Report> {
    let outcomes: Vec<Outcome> = plan
        .cells
        .iter()
        .map(|c| outcome(c, protocol))
        .collect::<anyhow::Result<_>>()?;
    let finished = outcomes.iter().filter(|o| o.status.is_some()).count();
    // (model, dataset, method, train, pooling, corrupt) -> lr -> outcomes over seeds, with the
    // group's typed corruption spec beside it.
    type Group<'o> = (&'o LayerSpec, BTreeMap<String, Vec<&'o Outcome<'o>>>);
    let mut groups: BTreeMap<GroupKey, Group> = BTreeMap::new();
    for o in &outcomes {
        let c = o.cell;
        groups
            .entry((
                c.model.clone(),
                c.dataset.clone(),
                c.config.method.to_string(),
                c.config.train.to_string(),
                c.pooling_name().to_string(),
                c.config.corrupt.to_string(),
            ))
            .or_insert_with(|| (&c.config.corrupt, BTreeMap::new()))
            .1
            .entry(format!("{:e}", c.config.lr))
            .or_default()
            .push(o);
    }
    let mut aggregates = Vec::new();
    for ((model, dataset, method, train, pooling, corrupt), (spec, by_lr)) in &groups {
        // The rate whose ok runs have the best mean selection score.
        let mut best: Option<(f64, &String)> = None;
        for (lr, runs) in by_lr {
            let sel: Vec<f64> = runs
                .iter()
                .filter(|o| o.status == Some(Status::Ok))
                .filter_map(|o| o.select)
                .collect();
            if let (Some(m), _) = mean_std(&sel) {
                if best.is_none_or(|(b, _)| m > b) {
                    best = Some((m, lr));
                }
            }
        }
        let considered: Vec<&Outcome> = match best {
            Some((_, lr)) => by_lr[lr].clone(),
            None => by_lr.values().flatten().copied().collect(),
        };
        let ok: Vec<f64> = considered
            .iter()
            .filter(|o| o.status == Some(Status::Ok))
            .filter_map(|o| o.score)
            .collect();
        let flagged: Vec<&&Outcome> = considered
            .iter()
            .filter(|o| matches!(o.status, Some(s) if s != Status::Ok))
            .collect();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for o in &flagged {
            *counts.entry(status_name(o.status.unwrap())).or_default() += 1;
        }
        let unfinished = considered.iter().filter(|o| o.status.is_none()).count();
        let (mean, std) = mean_std(&ok);

        aggregates.push(Aggregate {
            model: model.clone(),
            dataset: dataset.clone(),
            method: method.clone(),
            train: train.clone(),
            pooling: pooling.clone(),
            corrupt: corrupt.clone(),
            level: spec.level(),
            side: spec.side().map_or("both", |s| s.name()).into(),
            protocol: format!("{protocol:?}").to_lowercase(),
            lr: best.map(|(_, lr)| lr.parse().unwrap_or(f64::NAN)),
            runs_ok: ok.len(),
            runs_flagged: flagged.len(),
            flagged: counts
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect::<Vec<_>>()
                .join(", "),
            runs_unfinished: unfinished,
            mean_f1: mean,
            std_f1: std,
            recovery_ratio: None,
            level_value: spec.share_percent(),
        });
    }
    // Recovery ratios against the clean cell of the same model, dataset and setting.
    let clean: BTreeMap<(String, String, String, String, String), f64> = aggregates
        .iter()
        .filter(|a| a.corrupt == "none")
        .filter_map(|a| {
            a.mean_f1.map(|m| {
                (
                    (
                        a.model.clone(),
                        a.dataset.clone(),
                        a.method.clone(),
                        a.train.clone(),
                        a.pooling.clone(),
                    ),
                    m,
                )
            })
        })
        .collect();
    for a in &mut aggregates {
        let key = (
            a.model.clone(),
            a.dataset.clone(),
            a.method.clone(),
            a.train.clone(),
            a.pooling.clone(),
        );
        if let (Some(m), Some(c)) = (a.mean_f1, clean.get(&key)) {
            a.recovery_ratio = Some(m / c);
        }
    }
    let markdown = markdown::markdown(&aggregates, &outcomes, plan, finished, protocol);
    let study = index::study(plan, &outcomes, &aggregates, protocol)?;
    Ok(Report {
        aggregates,
        markdown,
        cells: plan.cells.len(),
        finished,
        study,
    })
}

/// report.md, report.csv and one F1-against-corruption PNG per model and setting, then the
/// study (index.html, index.md, runs.csv, claims.json, figures/), in `out`. Returns the files
/// written, the figures left out.
///
/// The folder is written beside `out` and swapped in whole once complete (fsio::Output), so
/// nothing of an older report stays beside the new one. The paths returned are under `out`.
pub fn write(report: &Report, out: &Output) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    out.write_dir(|tmp| {
        written = write_into(report, tmp)?
            .into_iter()
            .map(|p| match p.strip_prefix(tmp) {
                Ok(rest) => out.path().join(rest),
                Err(_) => p,
            })
            .collect();
        Ok(())
    })?;
    Ok(written)
}

fn write_into(report: &Report, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let md = out.join("report.md");
    fsio::write_atomic(&md, report.markdown.as_bytes())?;
    written.push(md);
    // One row per table cell; the header is Aggregate's field names.
    let mut csv = csv::Writer::from_writer(Vec::new());
    for a in &report.aggregates {
        csv.serialize(a)?;
    }
    let csv = csv
        .into_inner()
        .map_err(|e| anyhow::anyhow!("report.csv: {e}"))?;
    let csv_path = out.join("report.csv");
    fsio::write_atomic(&csv_path, &csv)?;
    written.push(csv_path);
    written.extend(chart::write_charts(&report.aggregates, out)?);
    written.extend(index::write(&report.study, out)?);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_std() {
        let (m, s) = mean_std(&[0.8, 0.9, 1.0]);
        assert!((m.unwrap() - 0.9).abs() < 1e-12);
        assert!((s.unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(mean_std(&[0.5]).1, None);
    }
}
