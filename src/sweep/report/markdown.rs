//! report.md: the Table 2-style tables, one pair (weighted F1, recovery ratio) per setting.

use super::{Aggregate, Outcome, Protocol};
use crate::run_dir::Status;
use crate::sweep::Plan;
use std::collections::BTreeSet;

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

pub(super) type Setting = (String, String, String);

pub(super) fn settings(aggregates: &[Aggregate]) -> BTreeSet<Setting> {
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

pub(super) fn datasets_of(aggs: &[&Aggregate]) -> Vec<String> {
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

pub(super) fn markdown(
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
        // The grid's name, not its path: no output holds an absolute path.
        plan.grid.file_name().map_or_else(|| plan.grid.display(), |n| std::path::Path::new(n).display()),
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
                super::status_name(o.status.unwrap()),
                o.reason
            ));
        }
    }
    md
}
