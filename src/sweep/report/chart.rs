//! The F1-against-corruption charts: per model and setting, one panel per dataset with the
//! bottom and top lines and the clean score as a reference.

use super::markdown::{datasets_of, settings};
use super::Aggregate;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One PNG per model and setting, in `out`.
pub(super) fn write_charts(aggregates: &[Aggregate], out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
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
                        ..Default::default()
                    },
                    viz::Series {
                        name: "top layers corrupted".into(),
                        points: line("top"),
                        ..Default::default()
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
                        ..Default::default()
                    });
                }
                series.retain(|s| !s.points.is_empty());
                if !series.is_empty() {
                    panels.push(viz::Panel {
                        title: d.clone(),
                        x_label: "layers corrupted (%)".into(),
                        y_label: "weighted F1 x 100".into(),
                        series,
                        ..Default::default()
                    });
                }
            }
            if panels.is_empty() {
                continue;
            }
            let suffix = if settings(aggregates).len() > 1 {
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
            viz::line_panels(&png, &panels, (520, 400))
                .map_err(|e| anyhow::anyhow!("{}: {e}", png.display()))?;
            written.push(png);
        }
    }
    Ok(written)
}
