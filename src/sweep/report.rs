//! `heal report`: Table 2-style tables (markdown, CSV) and F1-against-corruption charts from a
//! sweep directory, whichever machines wrote its cells.
//!
//! Rows are model x corruption level, columns dataset x bottom/top. A table cell is the mean
//! +- sample standard deviation over seeds of the weighted F1 at the chosen learning rate and
//! epoch; runs that collapsed, diverged or failed are shown as such, counted, and left out of
//! every mean.

use super::{Cell, Plan};
use crate::error::user;
use crate::fsio;
use crate::run_dir::{read_metrics, read_result, Status, RESULT_JSON};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
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
    fn describe(self) -> &'static str {
        match self {
            Protocol::Eval => "paper protocol: epoch and learning rate chosen by the evaluation split's weighted F1 (the reported score is the one maximised)",
            Protocol::Validation => "validation protocol: epoch and learning rate chosen on a validation carve-out of the training data; the evaluation split's weighted F1 at that choice is reported",
        }
    }
}

/// One finished (or unfinished) cell as the report sees it.
#[derive(Debug, Clone)]
struct Outcome<'a> {
    cell: &'a Cell,
    /// None: not finished.
    status: Option<Status>,
    /// The reported score at the chosen epoch.
    score: Option<f64>,
    /// The score the choice maximises.
    select: Option<f64>,
    reason: String,
}

fn outcome(cell: &Cell, protocol: Protocol) -> anyhow::Result<Outcome<'_>> {
    let dir = &cell.config.out;
    if !dir.join(RESULT_JSON).is_file() {
        return Ok(Outcome {
            cell,
            status: None,
            score: None,
            select: None,
            reason: String::new(),
        });
    }
    let result = read_result(dir)?;
    let mut status = result.status;
    let mut reason = result.reason.clone();
    let (score, select) = match protocol {
        Protocol::Eval => {
            let s = result.best.as_ref().map(|b| b.f1_weighted);
            (s, s)
        }
        Protocol::Validation => {
            let epochs = read_metrics(dir)?;
            let chosen = epochs
                .iter()
                .filter_map(|e| e.validation_f1_weighted.map(|v| (v, e)))
                .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.epoch.cmp(&a.1.epoch)));
            match chosen {
                Some((v, e)) => {
                    if e.collapsed && status == Status::Ok {
                        status = Status::Collapsed;
                        reason = format!(
                            "at the chosen epoch {} one class got {:.1}% of the predictions",
                            e.epoch,
                            e.predicted_majority_share * 100.0
                        );
                    }
                    (Some(e.f1_weighted), Some(v))
                }
                None if epochs.is_empty() => (None, None),
                None => {
                    return Err(user(format!(
                        "{}: no validation scores in metrics.jsonl: the validation protocol needs cells run with `validation-split` (e.g. validation-split = 0.1 in the grid's [base]); or use --select eval",
                        dir.display()
                    )))
                }
            }
        }
    };
    Ok(Outcome {
        cell,
        status: Some(status),
        score,
        select,
        reason,
    })
}

/// Corruption level (percent of layers) and side, parsed from a corrupt spec.
fn level_of(corrupt: &str) -> (String, Option<f64>, Option<&'static str>) {
    let c = corrupt.trim();
    match c {
        "none" => ("0%".into(), Some(0.0), None),
        "all" => ("100%".into(), Some(100.0), None),
        _ => {
            for side in ["bottom", "top"] {
                if let Some(rest) = c.strip_prefix(side).and_then(|r| r.strip_prefix(':')) {
                    if let Some(p) = rest.strip_suffix('%').and_then(|p| p.parse::<f64>().ok()) {
                        return (
                            format!("{p}%"),
                            Some(p),
                            Some(if side == "bottom" { "bottom" } else { "top" }),
                        );
                    }
                    return (
                        format!("{rest} layers"),
                        None,
                        Some(if side == "bottom" { "bottom" } else { "top" }),
                    );
                }
            }
            (c.to_string(), None, None)
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
    level_value: Option<f64>,
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

fn status_name(s: Status) -> &'static str {
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
}

type GroupKey = (String, String, String, String, String, String);

pub fn build(plan: &Plan, protocol: Protocol) -> anyhow::Result<Report> {
    let outcomes: Vec<Outcome> = plan
        .cells
        .iter()
        .map(|c| outcome(c, protocol))
        .collect::<anyhow::Result<_>>()?;
    let finished = outcomes.iter().filter(|o| o.status.is_some()).count();
    // (model, dataset, method, train, pooling, corrupt) -> lr -> outcomes over seeds
    let mut groups: BTreeMap<GroupKey, BTreeMap<String, Vec<&Outcome>>> = BTreeMap::new();
    for o in &outcomes {
        let c = o.cell;
        groups
            .entry((
                c.model.clone(),
                c.dataset.clone(),
                c.method.clone(),
                c.train.clone(),
                c.pooling.clone(),
                c.corrupt.clone(),
            ))
            .or_default()
            .entry(format!("{:e}", c.lr))
            .or_default()
            .push(o);
    }
    let mut aggregates = Vec::new();
    for ((model, dataset, method, train, pooling, corrupt), by_lr) in &groups {
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
        let (level, level_value, side) = level_of(corrupt);
        aggregates.push(Aggregate {
            model: model.clone(),
            dataset: dataset.clone(),
            method: method.clone(),
            train: train.clone(),
            pooling: pooling.clone(),
            corrupt: corrupt.clone(),
            level,
            side: side.unwrap_or("both").into(),
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
            level_value,
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
    let markdown = markdown(&aggregates, &outcomes, plan, finished, protocol);
    Ok(Report {
        aggregates,
        markdown,
        cells: plan.cells.len(),
        finished,
    })
}

fn fmt_cell(a: &Aggregate, bold: bool) -> String {
    let mut s = match (a.mean_f1, a.std_f1) {
        (Some(m), Some(sd)) => format!("{:.2} ± {:.2}", m * 100.0, sd * 100.0),
        (Some(m), None) => format!("{:.2}", m * 100.0),
        (None, _) if a.runs_flagged > 0 => a.flagged.clone(),
        (None, _) => "—".into(),
    };
    if bold && a.mean_f1.is_some() {
        s = format!("**{s}**");
    }
    if a.mean_f1.is_some() && a.runs_flagged > 0 {
        s.push_str(&format!(" ({} left out)", a.flagged));
    }
    if a.runs_unfinished > 0 {
        s.push_str(&format!(" [{} unfinished]", a.runs_unfinished));
    }
    s
}

type Setting = (String, String, String);

fn settings(aggregates: &[Aggregate]) -> BTreeSet<Setting> {
    aggregates
        .iter()
        .map(|a| (a.method.clone(), a.train.clone(), a.pooling.clone()))
        .collect()
}

/// Row keys (model, level) in order: models as they come, levels by percentage.
fn rows_of(aggs: &[&Aggregate]) -> Vec<(String, String)> {
    let mut models: Vec<String> = Vec::new();
    for a in aggs {
        if !models.contains(&a.model) {
            models.push(a.model.clone());
        }
    }
    let mut rows = Vec::new();
    for m in &models {
        let mut levels: Vec<(Option<f64>, String)> = aggs
            .iter()
            .filter(|a| &a.model == m)
            .map(|a| (a.level_value, a.level.clone()))
            .collect();
        levels.sort_by(|a, b| match (a.0, b.0) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.1.cmp(&b.1),
        });
        levels.dedup_by(|a, b| a.1 == b.1);
        rows.extend(levels.into_iter().map(|(_, l)| (m.clone(), l)));
    }
    rows
}

fn datasets_of(aggs: &[&Aggregate]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in aggs {
        if !out.contains(&a.dataset) {
            out.push(a.dataset.clone());
        }
    }
    out
}

fn find<'a>(
    aggs: &[&'a Aggregate],
    model: &str,
    level: &str,
    dataset: &str,
    side: &str,
) -> Option<&'a Aggregate> {
    aggs.iter()
        .find(|a| {
            a.model == model
                && a.level == level
                && a.dataset == dataset
                && (a.side == side || a.side == "both")
        })
        .copied()
}

fn markdown(
    aggregates: &[Aggregate],
    outcomes: &[Outcome],
    plan: &Plan,
    finished: usize,
    protocol: Protocol,
) -> String {
    let mut md = String::new();
    md.push_str(&format!(
        "# Sweep report\n\n{} cells ({} finished, {} unfinished) from {}. Weighted F1 x 100 on the evaluation split, mean ± sample std over seeds; {}. Collapsed, diverged and failed runs are shown, counted and left out of every mean. Bold: the better of bottom and top.\n",
        plan.cells.len(),
        finished,
        plan.cells.len() - finished,
        plan.grid.display(),
        protocol.describe()
    ));
    for (method, train, pooling) in settings(aggregates) {
        let aggs: Vec<&Aggregate> = aggregates
            .iter()
            .filter(|a| a.method == method && a.train == train && a.pooling == pooling)
            .collect();
        let datasets = datasets_of(&aggs);
        let rows = rows_of(&aggs);
        for (title, ratio) in [
            ("Weighted F1", false),
            ("Recovery ratio (F1 / clean F1)", true),
        ] {
            md.push_str(&format!(
                "\n## {title}: method {method}, --train {train}, pooling {pooling}\n\n| model | corrupted |"
            ));
            for d in &datasets {
                md.push_str(&format!(" {d} bottom | {d} top |"));
            }
            md.push_str("\n|---|---|");
            for _ in &datasets {
                md.push_str("---|---|");
            }
            md.push('\n');
            for (model, level) in &rows {
                md.push_str(&format!("| {model} | {level} |"));
                for d in &datasets {
                    let b = find(&aggs, model, level, d, "bottom");
                    let t = find(&aggs, model, level, d, "top");
                    let both_sided = matches!((b, t), (Some(x), Some(y)) if x.side != "both" && y.side != "both");
                    let (bb, tb) = match (b.and_then(|x| x.mean_f1), t.and_then(|y| y.mean_f1)) {
                        (Some(x), Some(y)) if both_sided && x != y => (x > y, y > x),
                        _ => (false, false),
                    };
                    for (a, bold) in [(b, bb), (t, tb)] {
                        let text = match a {
                            None => "".to_string(),
                            Some(a) if ratio => a
                                .recovery_ratio
                                .map(|r| format!("{r:.3}"))
                                .unwrap_or_else(|| "—".into()),
                            Some(a) => fmt_cell(a, bold),
                        };
                        md.push_str(&format!(" {text} |"));
                    }
                }
                md.push('\n');
            }
        }
        let lrs: BTreeSet<String> = aggs
            .iter()
            .filter_map(|a| a.lr.map(|l| format!("{l:e}")))
            .collect();
        if !lrs.is_empty() {
            md.push_str(&format!(
                "\nChosen learning rates: {} (per cell in report.csv).\n",
                lrs.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    let flagged: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| matches!(o.status, Some(s) if s != Status::Ok))
        .collect();
    if !flagged.is_empty() {
        md.push_str("\n## Flagged runs (left out of the means)\n\n");
        for o in flagged {
            md.push_str(&format!(
                "- {}: {} ({})\n",
                o.cell.name,
                status_name(o.status.unwrap()),
                o.reason
            ));
        }
    }
    md
}

/// report.md, report.csv and one F1-against-corruption PNG per model and setting, in `out`.
pub fn write(report: &Report, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)
        .map_err(|e| user(format!("{}: cannot create ({e})", out.display())))?;
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
    for (method, train, pooling) in settings(&report.aggregates) {
        let aggs: Vec<&Aggregate> = report
            .aggregates
            .iter()
            .filter(|a| a.method == method && a.train == train && a.pooling == pooling)
            .collect();
        let models: BTreeSet<String> = aggs.iter().map(|a| a.model.clone()).collect();
        for model in models {
            let mut panels = Vec::new();
            for d in datasets_of(&aggs) {
                let cells: Vec<&&Aggregate> = aggs
                    .iter()
                    .filter(|a| a.model == model && a.dataset == d && a.level_value.is_some())
                    .collect();
                let line = |side: &str| -> Vec<(f64, f64)> {
                    let mut pts: Vec<(f64, f64)> = cells
                        .iter()
                        .filter(|a| a.side == side || a.side == "both")
                        .filter_map(|a| Some((a.level_value?, a.mean_f1? * 100.0)))
                        .collect();
                    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                    pts
                };
                let mut series = vec![
                    viz::Series {
                        name: "bottom layers corrupted".into(),
                        points: line("bottom"),
                    },
                    viz::Series {
                        name: "top layers corrupted".into(),
                        points: line("top"),
                    },
                ];
                if let Some(c) = cells
                    .iter()
                    .find(|a| a.corrupt == "none")
                    .and_then(|a| a.mean_f1)
                {
                    series.push(viz::Series {
                        name: "clean".into(),
                        points: vec![(0.0, c * 100.0), (100.0, c * 100.0)],
                    });
                }
                series.retain(|s| !s.points.is_empty());
                if !series.is_empty() {
                    panels.push(viz::Panel {
                        title: d.clone(),
                        x_label: "layers corrupted (%)".into(),
                        y_label: "weighted F1 x 100".into(),
                        series,
                    });
                }
            }
            if panels.is_empty() {
                continue;
            }
            let suffix = if settings(&report.aggregates).len() > 1 {
                format!(
                    "-{}-{}-{}",
                    super::slug(&method),
                    super::slug(&train),
                    pooling
                )
            } else {
                String::new()
            };
            let png = out.join(format!(
                "f1-vs-corruption-{}{suffix}.png",
                super::slug(&model)
            ));
            viz::line_panels(&png, &panels, (520, 400))
                .map_err(|e| anyhow::anyhow!("{}: {e}", png.display()))?;
            written.push(png);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_sides() {
        assert_eq!(level_of("none"), ("0%".into(), Some(0.0), None));
        assert_eq!(level_of("all"), ("100%".into(), Some(100.0), None));
        assert_eq!(level_of("top:25%"), ("25%".into(), Some(25.0), Some("top")));
        assert_eq!(
            level_of("bottom:3"),
            ("3 layers".into(), None, Some("bottom"))
        );
    }

    #[test]
    fn sample_std() {
        let (m, s) = mean_std(&[0.8, 0.9, 1.0]);
        assert!((m.unwrap() - 0.9).abs() < 1e-12);
        assert!((s.unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(mean_std(&[0.5]).1, None);
    }
}
