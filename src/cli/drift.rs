//! `heal drift`: how far representations moved between two embedding sets of the same examples,
//! layer by layer; or a heatmap of CKA to a reference across many runs.

use crate::analysis::geometry::{self, LayerDrift};
use crate::error::user;
use crate::fsio;
use crate::run_dir::embeddings::EmbeddingSet;
use clap::Args;
use ndarray::{Array2, Axis};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  heal drift runs/figures/all runs/figures/all --stage-a corrupted --stage-b best
  heal drift runs/figures/clean emb/minilm-pretrained --out drift-clean
  heal drift --reference runs/figures/clean runs/figures/top25 runs/figures/bottom25 runs/figures/all --out figures/drift

Each input is an embeddings folder (from `heal embed` or RUN/embeddings/<stage>) or a run
directory (then RUN/embeddings/<stage>). Rows are matched by example id.")]
pub struct DriftArgs {
    /// Two embedding sets (A then B), or, with --reference, any number of runs to compare with
    /// the reference.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Compare every input with this one (e.g. the clean fine-tuned run) and draw a heatmap of
    /// linear CKA, layers x runs.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Stage read from a run directory given as A (and as the reference): pretrained,
    /// corrupted or best.
    #[arg(long, default_value = "best")]
    pub stage_a: String,
    /// Stage read from a run directory given as B (and as every compared run).
    #[arg(long, default_value = "best")]
    pub stage_b: String,
    /// Neighbours for the k-NN accuracy (leave-one-out, Euclidean).
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    /// Output folder: drift.csv (one row per input and layer), drift.json, and with
    /// --reference cka_heatmap.png. Required with --reference.
    #[arg(long)]
    pub out: Option<PathBuf>,
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

struct Row {
    name: String,
    layer: usize,
    drift: LayerDrift,
}

fn compare(a: &EmbeddingSet, b: &EmbeddingSet, name: &str, k: usize) -> anyhow::Result<Vec<Row>> {
    let b_layers = aligned(a, b)?;
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

fn print_rows(rows: &[Row], k: usize) {
    let w = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "{:<w$} {:>5} {:>7} {:>9} {:>7} {:>13} {:>13} {:>15}",
        "input",
        "layer",
        "CKA",
        "CKA(deb)",
        "cosine",
        "separation",
        "silhouette",
        format!("{k}-NN acc")
    );
    for r in rows {
        let d = &r.drift;
        println!(
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
        );
    }
}

pub fn run(args: DriftArgs) -> anyhow::Result<()> {
    if args.k == 0 {
        return Err(user("--k 0: give at least 1 neighbour"));
    }
    match &args.reference {
        None => {
            if args.inputs.len() != 2 {
                return Err(user(format!(
                    "give exactly two embedding sets (A B), or --reference REF with runs to compare; got {}",
                    args.inputs.len()
                )));
            }
            let a = EmbeddingSet::read(&args.inputs[0], &args.stage_a)?;
            let b = EmbeddingSet::read(&args.inputs[1], &args.stage_b)?;
            let name = format!("{} → {}", a.title(), b.title());
            let rows = compare(&a, &b, &name, args.k)?;
            println!("A = {}\nB = {}", a.dir.display(), b.dir.display());
            print_rows(&rows, args.k);
            if let Some(out) = &args.out {
                write_outputs(out, &rows, None)?;
                println!("drift: {}", out.display());
            }
        }
        Some(reference) => {
            let out = args
                .out
                .as_ref()
                .ok_or_else(|| user("--reference draws a heatmap: give --out DIR for it"))?;
            let r = EmbeddingSet::read(reference, &args.stage_a)?;
            let mut rows = Vec::new();
            let mut names = Vec::new();
            for input in &args.inputs {
                let b = EmbeddingSet::read(input, &args.stage_b)?;
                let name = b.title();
                rows.extend(compare(&r, &b, &name, args.k)?);
                names.push(name);
            }
            let layers: Vec<usize> = r.layers.iter().map(|(l, _)| *l).collect();
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
            let map = viz::Heatmap {
                title: format!("linear CKA to {} ({} examples)", r.title(), r.ids.len()),
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
            };
            print_rows(&rows, args.k);
            write_outputs(out, &rows, Some(&map))?;
            println!("drift: {}", out.display());
        }
    }
    Ok(())
}
