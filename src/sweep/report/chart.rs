//! The F1-against-corruption charts: per model and setting, one panel per dataset with the
//! bottom and top lines (mean over seeds, error bars one standard deviation) and the clean
//! score as a dashed reference.

use super::markdown::{datasets_of, settings};
use super::Aggregate;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One PNG per model and setting, in `out`, each with its SVG; returns both paths of each.
pub(super) fn write_charts(aggregates: &[Aggregate], out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let several = settings(aggregates).len() > 1;
    for (method, train, pooling) in settings(aggregates) {
        let aggs: Vec<&Aggregate> = aggregates
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
                let line = |side: &str| -> viz::Series {
                    let mut pts: Vec<(f64, f64, f64)> = cells
                        .iter()
                        .filter(|a| a.side == side || a.side == "both")
                        .filter_map(|a| {
                            let sd = a.std_f1.unwrap_or(0.0) * 100.0;
                            Some((a.level_value?, a.mean_f1? * 100.0, sd))
                        })
                        .collect();
                    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                    viz::Series {
                        name: format!("{side} layers"),
                        points: pts.iter().map(|p| (p.0, p.1)).collect(),
                        y_err: pts.iter().map(|p| p.2).collect(),
                        ..Default::default()
                    }
                };
                let mut series = vec![line("bottom"), line("top")];
                if let Some(c) = cells
                    .iter()
                    .find(|a| a.corrupt == "none")
                    .and_then(|a| a.mean_f1)
                {
                    series.push(viz::Series {
                        name: "clean".into(),
                        points: vec![(0.0, c * 100.0), (100.0, c * 100.0)],
                        dashed: true,
                        ..Default::default()
                    });
                }
                series.retain(|s| !s.points.is_empty());
                if !series.is_empty() {
                    let setting = if several {
                        format!(" ({method}, train {train}, {pooling})")
                    } else {
                        String::new()
                    };
                    panels.push(viz::Panel {
                        title: format!("{model} on {d}{setting}"),
                        x_label: "layers corrupted (%)".into(),
                        y_label: "weighted F1 (%), mean ± sd".into(),
                        series,
                        x_ticks: viz::Ticks::Integer,
                        ..Default::default()
                    });
                }
            }
            if panels.is_empty() {
                continue;
            }
            let suffix = if several {
                format!(
                    "-{}-{}-{}",
                    crate::sweep::slug(&method),
                    crate::sweep::slug(&train),
                    pooling
                )
            } else {
                String::new()
            };
            let png = out.join(format!(
                "f1-vs-corruption-{}{suffix}.png",
                crate::sweep::slug(&model)
            ));
            // One dataset fits a paper column; several share a page's width.
            let size = match panels.len() {
                1 => (viz::COLUMN_WIDTH, 500),
                n => ((viz::PAGE_WIDTH / n as u32).max(330), 460),
            };
            viz::line_panels(&png, &panels, size)
                .map_err(|e| anyhow::anyhow!("{}: {e}", png.display()))?;
            let svg = viz::svg_path(&png)?;
            written.extend([png, svg]);
        }
    }
    Ok(written)
}
