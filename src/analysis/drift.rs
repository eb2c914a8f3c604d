//! How far representations moved between two embedding sets of the same examples, layer by
//! layer; or linear CKA to a reference across many runs, as a heatmap of layers x runs.

use crate::analysis::geometry::{self, LayerDrift};
use crate::error::user;
use crate::fsio;
use crate::run_dir::embeddings::EmbeddingSet;
use crate::train::config::EmbeddingStage;
use ndarray::{Array2, Axis};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// An embeddings folder, or a run directory and the stage read from it (RUN/embeddings/<stage>).
#[derive(Debug, Clone)]
pub struct EmbeddingInput {
    pub path: PathBuf,
    /// pretrained, corrupted or best; only read when `path` is a run directory.
    pub stage: EmbeddingStage,
}

impl EmbeddingInput {
    fn read(&self) -> anyhow::Result<EmbeddingSet> {
        EmbeddingSet::read(&self.path, self.stage)
    }
}

/// The embedding sets to compare, and where the results go.
#[derive(Debug, Clone)]
pub enum DriftInputs {
    /// A against B; with `out`, drift.csv and drift.json are written there.
    Pair {
        a: EmbeddingInput,
        b: EmbeddingInput,
        out: Option<PathBuf>,
    },
    /// Every run against the reference: drift.csv, drift.json and cka_heatmap.png in `out`.
    Reference {
        reference: EmbeddingInput,
        runs: Vec<EmbeddingInput>,
        out: PathBuf,
    },
}

/// What `heal drift` measures.
#[derive(Debug, Clone)]
pub struct DriftRequest {
    pub inputs: DriftInputs,
    /// Neighbours for the k-NN accuracy (leave-one-out, Euclidean).
    pub k: usize,
    /// Replace an existing (non-run) folder at the output.
    pub overwrite: bool,
}

/// Compares the embedding sets, writes the outputs the request asks for, and returns the table
/// for stdout.
pub fn analyse(req: &DriftRequest) -> anyhow::Result<String> {
    let out = match &req.inputs {
        DriftInputs::Pair { out, .. } => out.as_ref(),
        DriftInputs::Reference { out, .. } => Some(out),
    };
    if let Some(out) = out {
        crate::fsio::Output::check("--out", out, crate::fsio::Kind::Folder, req.overwrite)?;
    }
    let mut text = String::new();
    match &req.inputs {
        DriftInputs::Pair { a, b, out } => {
            let a = a.read()?;
            let b = b.read()?;
            let name = format!("{} → {}", a.title(), b.title());
            let rows = compare(&a, &b, &name, req.k)?;
            writeln!(text, "A = {}\nB = {}", a.dir.display(), b.dir.display())?;
            table(&mut text, &rows, req.k)?;
            if let Some(out) = out {
                write_outputs(out, &rows, None)?;
            }
        }
        DriftInputs::Reference {
            reference,
            runs,
            out,
        } => {
            let r = reference.read()?;
            let mut rows = Vec::new();
            let mut names = Vec::new();
            for input in runs {
                let b = input.read()?;
                let name = b.title();
                rows.extend(compare(&r, &b, &name, req.k)?);
                names.push(name);
            }
            let map = cka_heatmap(&r, &rows, names);
            table(&mut text, &rows, req.k)?;
            write_outputs(out, &rows, Some(&map))?;
        }
    }
    Ok(text)
}

/// B's layer matrices reordered to A's example order (ids must be the same set).
fn aligned(a: &EmbeddingSet, b: &EmbeddingSet) -> anyhow::Result<Vec<(usize, Array2<f64>)>> {
    if a.ids.len() != b.ids.len() {
        return Err(user(format!(
            "{} has {} examples but {} has {}: embed the same split of the same data",
            a.dir.display(),
            a.ids.len(),
            b.dir.display(),
            b.ids.len()
        )));
    }
    let order: Option<Vec<usize>> = if a.ids == b.ids {
        None
    } else {
        let index: HashMap<&str, usize> = b
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let mut order = Vec::with_capacity(a.ids.len());
        for id in &a.ids {
            let j = index.get(id.as_str()).ok_or_else(|| {
                user(format!(
                    "{}: example id {id:?} of {} is missing: embed the same split of the same data",
                    b.dir.display(),
                    a.dir.display()
                ))
            })?;
            order.push(*j);
        }
        Some(order)
    };
    for (i, &la) in a.labels.iter().enumerate() {
        let j = order.as_ref().map_or(i, |o| o[i]);
        if b.labels[j] != la {
            return Err(user(format!(
                "{}: example {:?} has label {} here but {} in {}",
                b.dir.display(),
                a.ids[i],
                b.labels[j],
                la,
                a.dir.display()
            )));
        }
    }
    Ok(b.layers
        .iter()
        .map(|(l, m)| {
            let m = match &order {
                None => m.clone(),
                Some(o) => m.select(Axis(0), o),
            };
            (*l, m)
        })
        .collect())
}

/// One input's drift at one layer.
struct Row {
    name: String,
    layer: usize,
    drift: LayerDrift,
}

/// One row per layer both sets have, in A's layer order.
fn compare(a: &EmbeddingSet, b: &EmbeddingSet, name: &str, k: usize) -> anyhow::Result<Vec<Row>> {
    let b_layers = aligned(a, b)?;
    geometry::knn_fits(k, a.labels.len(), &a.dir)?;
    let n_classes = a
        .label_names
        .len()
        .max(a.labels.iter().max().map_or(0, |m| m + 1));
    let mut rows = Vec::new();
    for (layer, ma) in &a.layers {
        let Some((_, mb)) = b_layers.iter().find(|(l, _)| l == layer) else {
            continue;
        };
        let drift = geometry::layer_drift(ma.view(), mb.view(), &a.labels, n_classes, k)?;
        rows.push(Row {
            name: name.to_string(),
            layer: *layer,
            drift,
        });
    }
    if rows.is_empty() {
        return Err(user(format!(
            "{} and {} share no layer: embed the same layers (--layers)",
            a.dir.display(),
            b.dir.display()
        )));
    }
    Ok(rows)
}

/// Linear CKA to the reference, the reference's layers x the runs (`names`, in order); NaN
/// where a run lacks a layer.
fn cka_heatmap(reference: &EmbeddingSet, rows: &[Row], names: Vec<String>) -> viz::Heatmap {
    let layers: Vec<usize> = reference.layers.iter().map(|(l, _)| *l).collect();
    let values = layers
        .iter()
        .map(|l| {
            names
                .iter()
                .map(|n| {
                    rows.iter()
                        .find(|row| &row.name == n && row.layer == *l)
                        .map_or(f64::NAN, |row| row.drift.cka)
                })
                .collect()
        })
        .collect();
    viz::Heatmap {
        // The reference's title may end in parentheses ("0% (clean)"): no second pair.
        title: format!(
            "linear CKA to {}, {} examples",
            reference.title(),
            reference.ids.len()
        ),
        row_labels: layers
            .iter()
            .map(|l| {
                if *l == 0 {
                    "embeddings".into()
                } else {
                    format!("layer {l}")
                }
            })
            .collect(),
        col_labels: names,
        values,
        value_label: "linear CKA".into(),
        range: Some((0.0, 1.0)),
        annotate: true,
    }
}

fn cell(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

fn write_outputs(out: &Path, rows: &[Row], heatmap: Option<&viz::Heatmap>) -> anyhow::Result<()> {
    fsio::write_dir_atomic(out, |tmp| {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "input",
            "layer",
            "cka",
            "cka_debiased",
            "mean_cosine",
            "separation_a",
            "separation_b",
            "silhouette_a",
            "silhouette_b",
            "knn_a",
            "knn_b",
            "mean_centroid_shift",
        ])?;
        for r in rows {
            let d = &r.drift;
            let shift = if d.centroid_shift.is_empty() {
                f64::NAN
            } else {
                d.centroid_shift.iter().sum::<f64>() / d.centroid_shift.len() as f64
            };
            w.write_record([
                r.name.clone(),
                r.layer.to_string(),
                cell(d.cka),
                cell(d.cka_debiased),
                d.mean_cosine.map_or(String::new(), cell),
                cell(d.separation_a),
                cell(d.separation_b),
                cell(d.silhouette_a),
                cell(d.silhouette_b),
                cell(d.knn_a),
                cell(d.knn_b),
                cell(shift),
            ])?;
        }
        fsio::write_atomic(&tmp.join("drift.csv"), &w.into_inner()?)?;
        let json: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| serde_json::json!({"input": r.name, "layer": r.layer, "drift": r.drift}))
            .collect();
        fsio::write_json(&tmp.join("drift.json"), &json)?;
        if let Some(map) = heatmap {
            viz::heatmap(&tmp.join("cka_heatmap.png"), map, None)?;
        }
        Ok(())
    })
}

/// The rows as a text table, one line each, appended to `text`.
fn table(text: &mut String, rows: &[Row], k: usize) -> std::fmt::Result {
    let w = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        text,
        "{:<w$} {:>5} {:>7} {:>9} {:>7} {:>13} {:>13} {:>15}",
        "input",
        "layer",
        "CKA",
        "CKA(deb)",
        "cosine",
        "separation",
        "silhouette",
        format!("{k}-NN acc")
    )?;
    for r in rows {
        let d = &r.drift;
        writeln!(
            text,
            "{:<w$} {:>5} {:>7.4} {:>9.4} {:>7} {:>6.3}→{:<6.3} {:>6.3}→{:<6.3} {:>7.3}→{:<7.3}",
            r.name,
            r.layer,
            d.cka,
            d.cka_debiased,
            d.mean_cosine.map_or("-".into(), |c| format!("{c:.4}")),
            d.separation_a,
            d.separation_b,
            d.silhouette_a,
            d.silhouette_b,
            d.knn_a,
            d.knn_b
        )?;
    }
    Ok(())
}
