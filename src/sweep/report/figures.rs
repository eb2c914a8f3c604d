//! A section's figures in figures/, each as a page block with the caption that says what it
//! shows: F1 against the corruption level, Figure 1 (t-SNE panels), weight-magnitude
//! histograms per setting, CKA to the clean run and the separation ratio per layer.
//!
//! viz's figure inputs grow optional fields (error bars, styles); every literal here ends in
//! `..Default::default()` so that it keeps compiling and takes their defaults.
#![allow(clippy::needless_update)]

use super::chart::write_charts;
use super::document::Block;
use super::index::FIGURES;
use super::representations::{geometries, tsne_params, Geometry, KNN_K};
use super::section::{Section, Setting};
use super::status_name;
use crate::run_dir::analysis::AnalysisWeights;
use crate::run_dir::{RunDir, Status};
use crate::sweep::slug;
use std::path::Path;

fn figure(name: &str, alt: String, caption: String) -> Block {
    Block::Figure {
        src: format!("{FIGURES}/{name}"),
        alt,
        caption,
    }
}

fn draw_err(name: &str) -> impl Fn(viz::VizError) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("{FIGURES}/{name}: {e}")
}

/// Weighted F1 against the share of layers corrupted (the report's chart, for this section).
pub(super) fn f1_chart(section: &Section, dir: &Path) -> anyhow::Result<Block> {
    let aggregates: Vec<_> = section
        .settings
        .iter()
        .map(|s| s.aggregate.clone())
        .collect();
    let caption = "Weighted F1 x 100 against the share of layers corrupted: bottom layers and top layers corrupted as two lines (0% and 100% belong to both), the clean score as a reference line. Each point is the mean over the ok seeds at that setting's chosen learning rate.".to_string();
    let stem = format!("{}-f1", section.slug());
    let mut src = None;
    for path in write_charts(&aggregates, dir)? {
        let ext = path
            .extension()
            .map_or_else(String::new, |e| e.to_string_lossy().into_owned());
        let name = format!("{stem}.{ext}");
        std::fs::rename(&path, dir.join(&name))?;
        if ext == "png" {
            src = Some(name);
        }
    }
    Ok(match src {
        Some(name) => figure(&name, "F1 against corruption level".into(), caption),
        None => Block::Missing {
            caption,
            why: "no ok run at a level stated as a share of layers".into(),
        },
    })
}

fn setting_title(s: &Setting) -> String {
    s.spec.title()
}

/// Figure 1: the final layer's t-SNE map per setting.
fn figure_one(
    section: &Section,
    geo: &[Result<Geometry, String>],
    dir: &Path,
) -> anyhow::Result<Vec<Block>> {
    let name = format!("{}-tsne.png", section.slug());
    let mut panels = Vec::new();
    let mut missing = Vec::new();
    for (s, g) in section.settings.iter().zip(geo) {
        match g {
            Ok(g) => panels.push(viz::ScatterPanel {
                title: setting_title(s),
                footer: format!(
                    "silhouette {:.2} · {KNN_K}-NN acc {:.3} · F1 {}",
                    g.map_scores.silhouette,
                    g.map_scores.knn,
                    s.shown.as_ref().map_or_else(String::new, |r| {
                        let f1 = r.score.map_or("—".into(), |v| format!("{:.1}", v * 100.0));
                        match r.status {
                            Status::Ok => f1,
                            st => format!("{f1} ({})", status_name(st)),
                        }
                    })
                ),
                points: g.map.clone(),
                classes: g.classes.clone(),
                ..Default::default()
            }),
            Err(why) => missing.push(format!("{}: {why}", setting_title(s))),
        }
    }
    let Some(first) = geo.iter().flatten().next() else {
        return Ok(vec![Block::Missing {
            caption: format!(
                "Figure 1 would show the final layer's t-SNE map per corruption setting. {}.",
                missing.join("; ")
            ),
            why: "no artefacts: no setting has analysis vectors".into(),
        }]);
    };
    let (n, layer) = (first.classes.len(), first.layer);
    let p = tsne_params(n);
    let mut caption = format!(
        "t-SNE of the final layer (best.layer.{layer}, the model at its best epoch, pooled as the run pools) of the same {n} evaluation examples per corruption setting, in the order 0%, each level top then bottom, 100%. Each panel is the first seed at the setting's chosen learning rate (an ok run where there is one; a collapsed, diverged or failed run is marked under its panel); every map uses the same t-SNE parameters (perplexity {}, {} iterations, seed {}, PCA to {} dimensions first). Under each panel: the silhouette and {KNN_K}-NN accuracy of the 2-D map, and the run's weighted F1 x 100.",
        p.perplexity, p.iterations, p.seed, p.pca_dims
    );
    if !missing.is_empty() {
        caption.push_str(&format!(" Not shown: {}.", missing.join("; ")));
    }
    let mut classes = section.label_names.clone();
    let top = panels
        .iter()
        .flat_map(|p| p.classes.iter())
        .max()
        .map_or(0, |m| m + 1);
    while classes.len() < top {
        classes.push(format!("class {}", classes.len()));
    }
    let columns = panels.len().min(5);
    viz::scatter_grid(&dir.join(&name), &panels, &classes, columns, (320, 320))
        .map_err(draw_err(&name))?;
    Ok(vec![figure(
        &name,
        "Figure 1: t-SNE panels".into(),
        caption,
    )])
}

/// One figure per setting: |w| per module group, pretrained vs corrupted vs healed.
fn weight_histograms(section: &Section, dir: &Path) -> anyhow::Result<Vec<Block>> {
    let mut blocks = Vec::new();
    for s in &section.settings {
        let title = setting_title(s);
        let mut caption = format!(
            "{title}: weight magnitudes |w| per module group, on log-spaced bins shared by every cell of the model (x: |w|, log scale; y: count, log scale): pretrained, corrupted (after the damage, before training) and healed (best epoch) weights."
        );
        let Some(run) = &s.shown else {
            blocks.push(Block::Missing {
                caption,
                why: "no finished run".into(),
            });
            continue;
        };
        let path = RunDir::at(&run.dir).analysis_weights();
        if !path.is_file() {
            blocks.push(Block::Missing {
                caption,
                why: format!("no artefacts ({} has no analysis/)", run.cell),
            });
            continue;
        }
        let weights = AnalysisWeights::read(&path)?;
        let panels: Vec<viz::HistPanel> = weights
            .histograms
            .iter()
            .map(|h| viz::HistPanel {
                title: h.group.title().into(),
                x_label: "|w|".into(),
                log_x: true,
                series: [
                    ("pretrained", &h.pretrained),
                    ("corrupted", &h.corrupted),
                    ("healed", &h.healed),
                ]
                .into_iter()
                .map(|(stage, c)| viz::Histogram {
                    name: stage.into(),
                    edges: h.edges.clone(),
                    counts: c.counts.clone(),
                    ..Default::default()
                })
                .collect(),
                ..Default::default()
            })
            .collect();
        if panels.is_empty() {
            blocks.push(Block::Missing {
                caption,
                why: format!("{}: weights.json has no histograms", run.cell),
            });
            continue;
        }
        let below: u64 = weights.histograms.iter().map(|h| h.healed.below).sum();
        caption.push_str(&format!(" Run {} ({}); {below} healed weights lie below the first edge (zeros included) and are not drawn.", run.cell, run.describe()));
        let name = format!("{}-weights-{}.png", section.slug(), slug(s.corrupt()));
        viz::histogram_panels(&dir.join(&name), &panels, 4, (400, 300)).map_err(draw_err(&name))?;
        blocks.push(figure(
            &name,
            format!("weight histograms, {title}"),
            caption,
        ));
    }
    Ok(blocks)
}

/// CKA to the clean run per layer and setting, and the separation ratio per layer.
fn layer_figures(
    section: &Section,
    geo: &[Result<Geometry, String>],
    dir: &Path,
) -> anyhow::Result<Vec<Block>> {
    let mut blocks = Vec::new();
    let shown: Vec<(&Setting, &Geometry)> = section
        .settings
        .iter()
        .zip(geo)
        .filter_map(|(s, g)| g.as_ref().ok().map(|g| (s, g)))
        .collect();
    let layers = shown
        .iter()
        .map(|(_, g)| g.separation.len())
        .max()
        .unwrap_or(0);
    let row_labels: Vec<String> = (0..layers)
        .map(|l| {
            if l == 0 {
                "0 (embeddings)".into()
            } else {
                l.to_string()
            }
        })
        .collect();
    let corrupted: Vec<&(&Setting, &Geometry)> = shown
        .iter()
        .filter(|(s, _)| s.corrupt() != "none")
        .collect();
    let cka_caption = "Linear CKA of each layer's pooled vectors (best epoch) to the same layer of the clean run, on the same evaluation examples: rows are layers (0 = embedding output), columns the corrupted settings. 1 = the same representation up to rotation and scale. Hatched: undefined, where a layer's vectors do not vary over examples (layer 0 under CLS pooling: every example starts with the same [CLS] embedding).".to_string();
    if corrupted.iter().any(|(_, g)| g.cka.is_some()) {
        let name = format!("{}-cka.png", section.slug());
        let map = viz::Heatmap {
            title: "linear CKA to the clean run".into(),
            row_labels: row_labels.clone(),
            col_labels: corrupted.iter().map(|(s, _)| setting_title(s)).collect(),
            values: (0..layers)
                .map(|l| {
                    corrupted
                        .iter()
                        .map(|(_, g)| {
                            g.cka
                                .as_ref()
                                .and_then(|c| c.get(l).copied())
                                .unwrap_or(f64::NAN)
                        })
                        .collect()
                })
                .collect(),
            value_label: "linear CKA".into(),
            range: Some((0.0, 1.0)),
            annotate: true,
            ..Default::default()
        };
        viz::heatmap(&dir.join(&name), &map, None).map_err(draw_err(&name))?;
        blocks.push(figure(&name, "CKA to the clean run".into(), cka_caption));
    } else {
        blocks.push(Block::Missing {
            caption: cka_caption,
            why: "no artefacts: CKA needs the clean run's and a corrupted run's analysis vectors"
                .into(),
        });
    }
    let sep_caption = "Separation ratio (mean distance between examples of different classes over the mean within a class; higher = classes further apart) of each layer's pooled vectors at the best epoch, per setting. Undefined (left out, — in the table) where a layer's vectors do not vary over examples, as layer 0 under CLS pooling.".to_string();
    let name = format!("{}-separation.png", section.slug());
    let series: Vec<viz::Series> = shown
        .iter()
        .map(|(s, g)| viz::Series {
            name: setting_title(s),
            points: g
                .separation
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(l, v)| (l as f64, *v))
                .collect(),
            ..Default::default()
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    if series.is_empty() {
        blocks.push(Block::Missing {
            caption: sep_caption,
            why: "no artefacts, or no layer with a defined separation".into(),
        });
        return Ok(blocks);
    }
    let panel = viz::Panel {
        title: "separation ratio per layer".into(),
        x_label: "layer".into(),
        y_label: "separation ratio".into(),
        series,
        x_ticks: viz::Ticks::Integer,
        ..Default::default()
    };
    viz::line_panels(&dir.join(&name), &[panel], (560, 400)).map_err(draw_err(&name))?;
    blocks.push(figure(
        &name,
        "separation ratio per layer".into(),
        sep_caption,
    ));
    let mut header = vec!["layer".to_string()];
    header.extend(shown.iter().map(|(s, _)| setting_title(s)));
    blocks.push(Block::Table(
        header,
        (0..layers)
            .map(|l| {
                let mut row = vec![row_labels[l].clone()];
                row.extend(shown.iter().map(|(_, g)| {
                    g.separation
                        .get(l)
                        .filter(|v| v.is_finite())
                        .map_or("—".into(), |v| format!("{v:.3}"))
                }));
                row
            })
            .collect(),
    ));
    Ok(blocks)
}

/// The section's figures after its scores and claims: (heading, anchor suffix, blocks).
pub(super) fn draw(
    section: &Section,
    dir: &Path,
) -> anyhow::Result<Vec<(&'static str, &'static str, Vec<Block>)>> {
    let geo = geometries(section);
    Ok(vec![
        (
            "Figure 1: t-SNE of the final layer",
            "tsne",
            figure_one(section, &geo, dir)?,
        ),
        (
            "Weight magnitudes",
            "weights",
            weight_histograms(section, dir)?,
        ),
        (
            "Representations: CKA to the clean run and separation per layer",
            "layers",
            layer_figures(section, &geo, dir)?,
        ),
    ])
}
