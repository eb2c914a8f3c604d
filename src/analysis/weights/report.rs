//! Everything `heal weights` writes: stats.csv, histograms.png + .csv, and with two checkpoints
//! changes.csv, modules.csv, layers.csv, change_heatmap.png (start_heatmap.png with a start),
//! summary.json; and the summary it prints. Every PNG has its SVG beside it.

use super::{
    by_layer, by_module, compare, histograms, ChangeSums, Comparison, GroupHistogram, TensorStats,
    Weights, ALL_GROUPS, OUTLIER_STD,
};
use crate::fsio;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Module key of the heatmap's columns, in order, for layer-level modules.
pub const HEATMAP_MODULES: [&str; 8] =
    ["q", "k", "v", "o", "ffn_in", "ffn_out", "ln_attn", "ln_ffn"];

/// The most histogram bins `--bins` takes: every group's counts per checkpoint are kept in
/// memory and written to histograms.csv, and no figure shows more bars than this.
pub const MAX_BINS: usize = 10_000;

/// The checkpoints to analyse and where the report goes.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// Checkpoint folder A.
    pub a: PathBuf,
    /// Checkpoint B: the change from A to B is measured.
    pub b: Option<PathBuf>,
    /// The corrupted start of B: B's distance to it is measured too (needs B).
    pub start: Option<PathBuf>,
    /// Legend names in the order A, B, start (one per checkpoint given).
    pub names: Vec<String>,
    /// Histogram bins per group.
    pub bins: usize,
    /// Output folder, replaced as a whole.
    pub out: PathBuf,
    /// Replace an existing (non-run) folder at `out`.
    pub overwrite: bool,
}

/// Loads the checkpoints, writes the report folder and returns the summary for stdout.
pub fn write_report(req: &ReportRequest) -> anyhow::Result<String> {
    if !(1..=MAX_BINS).contains(&req.bins) {
        return Err(crate::error::user(format!(
            "--bins {}: give a bin count from 1 to {MAX_BINS}",
            req.bins
        )));
    }
    crate::fsio::Output::check("--out", &req.out, crate::fsio::Kind::Folder, req.overwrite)?;
    let a = Weights::load(&req.a, &req.names[0])?;
    let b = req
        .b
        .as_ref()
        .map(|p| Weights::load(p, &req.names[1]))
        .transpose()?;
    let start = req
        .start
        .as_ref()
        .map(|p| Weights::load(p, &req.names[2]))
        .transpose()?;
    for other in [b.as_ref(), start.as_ref()].into_iter().flatten() {
        super::comparison::check_same_architecture(&a, other)?;
    }
    // Panels overlay: A, then the corrupted start, then B (the order of a healing story).
    let shown: Vec<&Weights> = [Some(&a), start.as_ref(), b.as_ref()]
        .into_iter()
        .flatten()
        .collect();
    let to_b = b.as_ref().map(|b| compare(&a, b));
    let from_start = match (&start, &b) {
        (Some(s), Some(b)) => Some(compare(s, b)),
        _ => None,
    };
    let group_histograms = histograms(&shown, req.bins);
    fsio::write_dir_atomic(&req.out, |tmp| {
        write_stats(&tmp.join("stats.csv"), &shown)?;
        write_histograms(tmp, &shown, &group_histograms)?;
        if let Some(cmp) = &to_b {
            write_changes(tmp, cmp, from_start.as_ref())?;
            let title = format!(
                "relative change ‖B−A‖/‖A‖: {} → {}",
                a.label,
                b.as_ref().map_or("", |b| &b.label)
            );
            heatmap(&tmp.join("change_heatmap.png"), cmp, &title)?;
            if let Some(s) = &from_start {
                let title = format!(
                    "relative change from the corrupted start: {} → {}",
                    start.as_ref().map_or("", |w| &w.label),
                    b.as_ref().map_or("", |b| &b.label)
                );
                heatmap(&tmp.join("start_heatmap.png"), s, &title)?;
            }
        }
        fsio::write_json(
            &tmp.join("summary.json"),
            &serde_json::json!({
                "checkpoints": shown.iter().map(|w| serde_json::json!({
                    "name": w.label, "parameters": w.parameter_count(),
                })).collect::<Vec<_>>(),
                "a": req.a, "b": req.b, "start": req.start,
                "outlier_std": OUTLIER_STD,
                "unmatched": to_b.as_ref().map(|c| &c.unmatched),
                "layers": to_b.as_ref().map(|c| layer_rows(c, from_start.as_ref())),
            }),
        )
    })?;
    Ok(summary(&shown, to_b.as_ref(), from_start.as_ref())?)
}

fn f(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

fn layer_text(layer: Option<usize>) -> String {
    layer.map_or("head".into(), |l| l.to_string())
}

fn write_stats(path: &Path, shown: &[&Weights]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "checkpoint",
        "tensor",
        "layer",
        "module",
        "part",
        "group",
        "count",
        "mean",
        "mean_abs",
        "std",
        "min",
        "max",
        "max_abs",
        "kurtosis",
        "outliers",
    ])?;
    for ckpt in shown {
        for s in ckpt.stats() {
            w.write_record([
                ckpt.label.clone(),
                s.tensor,
                layer_text(s.place.layer),
                s.place.module,
                s.place.part.to_string(),
                s.place.group.key().to_string(),
                s.count.to_string(),
                f(s.mean),
                f(s.mean_abs),
                f(s.std),
                f(s.min),
                f(s.max),
                f(s.max_abs),
                f(s.kurtosis),
                s.outliers.to_string(),
            ])?;
        }
    }
    fsio::write_atomic(path, &w.into_inner()?)
}

fn write_histograms(
    dir: &Path,
    shown: &[&Weights],
    histograms: &[GroupHistogram],
) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["group", "checkpoint", "bin_low", "bin_high", "count"])?;
    let mut panels = Vec::new();
    for h in histograms {
        for (ckpt, counts) in shown.iter().zip(&h.counts) {
            for (i, c) in counts.iter().enumerate() {
                w.write_record([
                    h.group.key().to_string(),
                    ckpt.label.clone(),
                    h.edges[i].to_string(),
                    h.edges[i + 1].to_string(),
                    c.to_string(),
                ])?;
            }
        }
        panels.push(viz::HistPanel {
            title: h.group.title().to_string(),
            x_label: "weight value".into(),
            series: shown
                .iter()
                .zip(&h.counts)
                .map(|(ckpt, counts)| viz::Histogram {
                    name: ckpt.label.clone(),
                    edges: h.edges.clone(),
                    counts: counts.clone(),
                })
                .collect(),
            ..Default::default()
        });
    }
    fsio::write_atomic(&dir.join("histograms.csv"), &w.into_inner()?)?;
    // Three groups across a page (room for titles such as "LayerNorm γ (incl. embeddings)"),
    // one legend for all: every panel shows the same checkpoints.
    viz::histogram_panels(
        &dir.join("histograms.png"),
        &panels,
        3,
        (viz::PAGE_WIDTH / 3, 300),
    )?;
    Ok(())
}

fn layer_rows(cmp: &Comparison, from_start: Option<&Comparison>) -> Vec<serde_json::Value> {
    let start: Option<std::collections::HashMap<Option<usize>, ChangeSums>> =
        from_start.map(|c| by_layer(c).into_iter().collect());
    by_layer(cmp)
        .into_iter()
        .map(|(layer, sums)| {
            let s = start.as_ref().and_then(|m| m.get(&layer));
            serde_json::json!({
                "layer": layer_text(layer),
                "relative_change": sums.relative_change(),
                "cosine": sums.cosine(),
                "relative_change_from_start": s.map(|s| s.relative_change()),
                "cosine_to_start": s.map(|s| s.cosine()),
            })
        })
        .collect()
}

fn write_changes(
    dir: &Path,
    cmp: &Comparison,
    from_start: Option<&Comparison>,
) -> anyhow::Result<()> {
    let extra = from_start.is_some();
    let header = |first: &[&str]| -> Vec<String> {
        let mut h: Vec<String> = first.iter().map(|s| s.to_string()).collect();
        h.extend(["relative_change".into(), "cosine".into()]);
        if extra {
            h.extend([
                "relative_change_from_start".into(),
                "cosine_to_start".into(),
            ]);
        }
        h
    };
    // Per tensor.
    let start_tensors: std::collections::HashMap<&str, &ChangeSums> = from_start
        .map(|c| {
            c.tensors
                .iter()
                .map(|(t, s)| (t.tensor.as_str(), s))
                .collect()
        })
        .unwrap_or_default();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header(&["tensor", "layer", "module", "part"]))?;
    for (t, sums) in &cmp.tensors {
        let mut row = vec![
            t.tensor.clone(),
            layer_text(t.place.layer),
            t.place.module.clone(),
            t.place.part.to_string(),
            f(sums.relative_change()),
            f(sums.cosine()),
        ];
        if extra {
            let s = start_tensors.get(t.tensor.as_str());
            row.push(s.map_or(String::new(), |s| f(s.relative_change())));
            row.push(s.map_or(String::new(), |s| f(s.cosine())));
        }
        w.write_record(row)?;
    }
    fsio::write_atomic(&dir.join("changes.csv"), &w.into_inner()?)?;
    // Per (layer, module), weight and bias pooled.
    let start_modules = from_start.map(by_module);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header(&["layer", "module"]))?;
    for ((layer, module), sums) in by_module(cmp) {
        let mut row = vec![
            layer_text(layer),
            module.clone(),
            f(sums.relative_change()),
            f(sums.cosine()),
        ];
        if let Some(m) = &start_modules {
            let s = m.get(&(layer, module));
            row.push(s.map_or(String::new(), |s| f(s.relative_change())));
            row.push(s.map_or(String::new(), |s| f(s.cosine())));
        }
        w.write_record(row)?;
    }
    fsio::write_atomic(&dir.join("modules.csv"), &w.into_inner()?)?;
    // Per layer.
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header(&["layer"]))?;
    for row in layer_rows(cmp, from_start) {
        let mut cells = vec![row["layer"].as_str().unwrap_or("").to_string()];
        let keys: &[&str] = if extra {
            &[
                "relative_change",
                "cosine",
                "relative_change_from_start",
                "cosine_to_start",
            ]
        } else {
            &["relative_change", "cosine"]
        };
        for k in keys {
            cells.push(row[*k].as_f64().map_or(String::new(), f));
        }
        w.write_record(cells)?;
    }
    fsio::write_atomic(&dir.join("layers.csv"), &w.into_inner()?)
}

fn heatmap(path: &Path, cmp: &Comparison, title: &str) -> anyhow::Result<()> {
    let modules = by_module(cmp);
    let mut layers: Vec<usize> = modules
        .keys()
        .filter_map(|(l, _)| *l)
        .filter(|l| *l > 0)
        .collect();
    layers.sort_unstable();
    layers.dedup();
    let values = layers
        .iter()
        .map(|&l| {
            HEATMAP_MODULES
                .iter()
                .map(|m| {
                    modules
                        .get(&(Some(l), m.to_string()))
                        .map_or(f64::NAN, |s| s.relative_change())
                })
                .collect()
        })
        .collect();
    let map = viz::Heatmap {
        title: title.to_string(),
        row_labels: layers.iter().map(|l| format!("layer {l}")).collect(),
        col_labels: HEATMAP_MODULES.iter().map(|s| s.to_string()).collect(),
        values,
        value_label: "relative change ‖B−A‖/‖A‖".into(),
        range: None,
        annotate: true,
    };
    viz::heatmap(path, &map, None)?;
    Ok(())
}

/// The text printed after the report: each checkpoint's statistics by group and, with two
/// checkpoints, the change per layer.
fn summary(
    shown: &[&Weights],
    to_b: Option<&Comparison>,
    from_start: Option<&Comparison>,
) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    for ckpt in shown {
        let stats = ckpt.stats();
        writeln!(
            text,
            "{}: {} parameters",
            ckpt.label,
            ckpt.parameter_count()
        )?;
        writeln!(
            text,
            "  {:<34} {:>10} {:>10} {:>10} {:>10} {:>8}",
            "group", "mean|w|", "std", "max|w|", "kurtosis", "outliers"
        )?;
        for group in ALL_GROUPS {
            let members: Vec<&TensorStats> =
                stats.iter().filter(|s| s.place.group == group).collect();
            if members.is_empty() {
                continue;
            }
            // Count-weighted means over the group's tensors (constant tensors have no kurtosis
            // and are left out of its mean).
            let weighted = |value: fn(&TensorStats) -> f64| {
                let (sum, n) = members
                    .iter()
                    .filter(|s| value(s).is_finite())
                    .fold((0.0, 0.0), |(sum, n), s| {
                        (sum + value(s) * s.count as f64, n + s.count as f64)
                    });
                sum / n
            };
            let mean_abs = weighted(|s| s.mean_abs);
            let std = weighted(|s| s.std);
            let max_abs = members.iter().map(|s| s.max_abs).fold(0.0, f64::max);
            let kurt = weighted(|s| s.kurtosis);
            let outliers: usize = members.iter().map(|s| s.outliers).sum();
            writeln!(
                text,
                "  {:<34} {:>10.4} {:>10.4} {:>10.4} {:>10.2} {:>8}",
                group.title(),
                mean_abs,
                std,
                max_abs,
                kurt,
                outliers
            )?;
        }
    }
    if let Some(cmp) = to_b {
        let start: Option<std::collections::HashMap<Option<usize>, ChangeSums>> =
            from_start.map(|c| by_layer(c).into_iter().collect());
        writeln!(
            text,
            "{:<8} {:>16} {:>8}{}",
            "layer",
            "rel. change",
            "cosine",
            if start.is_some() {
                "   rel. change from start   cosine to start"
            } else {
                ""
            }
        )?;
        for (layer, sums) in by_layer(cmp) {
            let mut line = format!(
                "{:<8} {:>16.4} {:>8.4}",
                layer_text(layer),
                sums.relative_change(),
                sums.cosine()
            );
            if let Some(s) = start.as_ref().and_then(|m| m.get(&layer)) {
                line.push_str(&format!(
                    " {:>24.4} {:>16.4}",
                    s.relative_change(),
                    s.cosine()
                ));
            }
            writeln!(text, "{line}")?;
        }
        if !cmp.unmatched.is_empty() {
            writeln!(
                text,
                "not compared (on one side only or reshaped): {}",
                cmp.unmatched.join(", ")
            )?;
        }
    }
    Ok(text)
}
