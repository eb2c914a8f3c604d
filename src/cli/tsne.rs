//! `heal tsne`: 2-D maps of pooled embeddings (PCA, then t-SNE), one per run or the paper's
//! Figure 1 as a grid of panels, each with the scores that back the picture.

use crate::analysis::geometry;
use crate::analysis::tsne::{self, Engine, Init, LearningRate, TsneParams};
use crate::error::user;
use crate::fsio;
use crate::run_dir::embeddings::EmbeddingSet;
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  heal tsne runs/figures/clean                      # writes runs/figures/clean/tsne.png
  heal tsne --panel runs/figures/{clean,top25,bottom25,all} --out figures/figure1-tsne.png

Each input is an embeddings folder (from `heal embed` or RUN/embeddings/<stage>) or a run
directory (then RUN/embeddings/<stage>). Panel titles name the run's corruption setting.")]
pub struct TsneArgs {
    /// Embedding sets or run directories.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Draw all inputs as one grid of panels into --out.
    #[arg(long)]
    pub panel: bool,
    /// Output PNG. [default: <input>/tsne.png for each input; required with --panel]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Stage read from run directories: pretrained, corrupted or best.
    #[arg(long, default_value = "best")]
    pub stage: String,
    /// Layer to map: last, or a layer number (0 = embeddings output).
    #[arg(long, default_value = "last")]
    pub layer: String,
    /// Panel titles, comma-separated, one per input. [default: the corruption setting]
    #[arg(long)]
    pub titles: Option<String>,
    /// Panels per row with --panel. [default: 4, or fewer inputs]
    #[arg(long)]
    pub columns: Option<usize>,
    /// t-SNE perplexity (effective number of neighbours); must be below (n - 1) / 3.
    #[arg(long, default_value_t = 30.0)]
    pub perplexity: f64,
    /// Gradient-descent iterations (the first 250 with early exaggeration 12).
    #[arg(long, default_value_t = 1000)]
    pub iterations: usize,
    /// auto (max(n / 12 / 4, 50), as scikit-learn) or a number.
    #[arg(long, default_value = "auto")]
    pub learning_rate: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Barnes-Hut accuracy: 0 is exact (slow), larger is coarser.
    #[arg(long, default_value_t = 0.5)]
    pub theta: f64,
    /// PCA dimensions before t-SNE (skipped when the vectors are already this narrow).
    #[arg(long, default_value_t = 50)]
    pub pca_dims: usize,
    /// Starting layout: pca or random (from --seed).
    #[arg(long, default_value = "pca")]
    pub init: String,
    /// heal (Barnes-Hut, parallel, all settings) or linfa (linfa-tsne; its learning rate is
    /// fixed at 200).
    #[arg(long, default_value = "heal")]
    pub engine: String,
    /// Neighbours for the k-NN accuracy printed under each panel.
    #[arg(long, default_value_t = 5)]
    pub k: usize,
}

impl TsneArgs {
    fn params(&self) -> anyhow::Result<TsneParams> {
        // The parse errors already name the value and what to use.
        let learning_rate: LearningRate = self.learning_rate.parse()?;
        let init: Init = self.init.parse()?;
        let engine: Engine = self.engine.parse()?;
        Ok(TsneParams {
            perplexity: self.perplexity,
            iterations: self.iterations,
            learning_rate,
            seed: self.seed,
            theta: self.theta,
            pca_dims: self.pca_dims,
            init,
            engine,
            ..TsneParams::default()
        })
    }
}

/// One input mapped to 2-D.
struct Map {
    set: EmbeddingSet,
    layer: usize,
    points: ndarray::Array2<f64>,
    scores: geometry::ClusterScores,
}

fn map_one(set: EmbeddingSet, layer: &str, params: &TsneParams, k: usize) -> anyhow::Result<Map> {
    let (layer, matrix) = if layer == "last" {
        set.last_layer()
    } else {
        let l: usize = layer
            .parse()
            .map_err(|_| user(format!("--layer {layer:?}: use last or a layer number")))?;
        let m = set.layer(l).ok_or_else(|| {
            user(format!(
                "{}: no layer {l}; it has {:?}",
                set.dir.display(),
                set.layers.iter().map(|(l, _)| *l).collect::<Vec<_>>()
            ))
        })?;
        (l, m)
    };
    let bar = indicatif::ProgressBar::new(params.iterations as u64).with_style(
        indicatif::ProgressStyle::with_template("t-SNE {msg} {bar:30} {pos}/{len} it [{elapsed}]")
            .expect("template"),
    );
    bar.set_message(set.title());
    let points =
        tsne::embed_2d_with_progress(matrix.view(), params, &mut |i| bar.set_position(i as u64))
            .map_err(|e| e.context(format!("{}", set.dir.display())))?;
    bar.finish_and_clear();
    let scores = geometry::cluster_scores(points.view(), &set.labels, k);
    Ok(Map {
        set,
        layer,
        points,
        scores,
    })
}

fn footer(s: &geometry::ClusterScores, k: usize) -> String {
    format!("silhouette {:.2} · {k}-NN acc {:.3}", s.silhouette, s.knn)
}

fn panel(map: &Map, title: String, k: usize) -> viz::ScatterPanel {
    viz::ScatterPanel {
        title,
        footer: footer(&map.scores, k),
        points: map
            .points
            .rows()
            .into_iter()
            .map(|r| (r[0], r[1]))
            .collect(),
        classes: map.set.labels.clone(),
    }
}

/// Coordinates next to the PNG: `<png stem>.csv` with input, title, id, label, x, y.
fn write_csv(path: &Path, maps: &[(&Map, String)]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["input", "title", "layer", "id", "label", "x", "y"])?;
    for (m, title) in maps {
        for (i, row) in m.points.rows().into_iter().enumerate() {
            let label = m.set.labels[i];
            w.write_record([
                m.set.dir.display().to_string(),
                title.clone(),
                m.layer.to_string(),
                m.set.ids[i].clone(),
                m.set
                    .label_names
                    .get(label)
                    .cloned()
                    .unwrap_or_else(|| label.to_string()),
                row[0].to_string(),
                row[1].to_string(),
            ])?;
        }
    }
    fsio::write_atomic(path, &w.into_inner()?)
}

fn write_scores(
    path: &Path,
    maps: &[(&Map, String)],
    params: &TsneParams,
    k: usize,
) -> anyhow::Result<()> {
    let rows: Vec<serde_json::Value> = maps
        .iter()
        .map(|(m, title)| {
            serde_json::json!({
                "input": m.set.dir, "title": title, "layer": m.layer, "examples": m.set.ids.len(),
                "silhouette_2d": m.scores.silhouette, "knn_accuracy_2d": m.scores.knn,
                "separation_2d": m.scores.separation, "k": k,
            })
        })
        .collect();
    fsio::write_json(path, &serde_json::json!({"params": params, "maps": rows}))
}

fn sidecar(png: &Path, ext: &str) -> PathBuf {
    png.with_extension(ext)
}

pub fn run(args: TsneArgs) -> anyhow::Result<()> {
    let params = args.params()?;
    if args.k == 0 {
        return Err(user("--k 0: give at least 1 neighbour"));
    }
    let titles: Option<Vec<String>> = args
        .titles
        .as_ref()
        .map(|t| t.split(',').map(|s| s.trim().to_string()).collect());
    if let Some(t) = &titles {
        if t.len() != args.inputs.len() {
            return Err(user(format!(
                "--titles has {} names for {} inputs: give one per input",
                t.len(),
                args.inputs.len()
            )));
        }
    }
    if !args.panel && args.out.is_some() && args.inputs.len() > 1 {
        return Err(user(
            "--out names one PNG: with several inputs use --panel, or leave --out out to write <input>/tsne.png each",
        ));
    }
    if args.panel && args.out.is_none() {
        return Err(user("--panel draws one figure: give --out FILE.png"));
    }
    // Read every input first, so that a bad one fails before minutes of t-SNE.
    let sets = args
        .inputs
        .iter()
        .map(|p| EmbeddingSet::read(p, &args.stage))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let class_names = sets[0].label_names.clone();
    if let Some(other) = sets.iter().find(|s| s.label_names != class_names) {
        return Err(user(format!(
            "{}: its classes {:?} differ from {:?} of {}: panels must share the label set",
            other.dir.display(),
            other.label_names,
            class_names,
            sets[0].dir.display()
        )));
    }
    let mut maps = Vec::new();
    for (i, set) in sets.into_iter().enumerate() {
        let title = titles
            .as_ref()
            .map_or_else(|| set.title(), |t| t[i].clone());
        let map = map_one(set, &args.layer, &params, args.k)?;
        println!(
            "{:<24} layer {:>2}: {}",
            title,
            map.layer,
            footer(&map.scores, args.k)
        );
        maps.push((map, title));
    }
    if args.panel {
        let out = args.out.as_ref().expect("checked");
        let columns = args.columns.unwrap_or(4).clamp(1, maps.len());
        let panels: Vec<viz::ScatterPanel> = maps
            .iter()
            .map(|(m, t)| panel(m, t.clone(), args.k))
            .collect();
        let refs: Vec<(&Map, String)> = maps.iter().map(|(m, t)| (m, t.clone())).collect();
        write_csv(&sidecar(out, "csv"), &refs)?;
        write_scores(&sidecar(out, "json"), &refs, &params, args.k)?;
        viz::scatter_grid(out, &panels, &class_names, columns, (460, 420))?;
        println!("t-SNE panels: {}", out.display());
    } else {
        for (m, t) in &maps {
            let out = args.out.clone().unwrap_or_else(|| {
                let base = if m.set.run.is_some() {
                    m.set
                        .dir
                        .parent()
                        .and_then(|p| p.parent())
                        .unwrap_or(&m.set.dir)
                        .to_path_buf()
                } else {
                    m.set.dir.clone()
                };
                base.join("tsne.png")
            });
            let refs = vec![(m, t.clone())];
            write_csv(&sidecar(&out, "csv"), &refs)?;
            write_scores(&sidecar(&out, "json"), &refs, &params, args.k)?;
            viz::scatter_grid(
                &out,
                &[panel(m, t.clone(), args.k)],
                &class_names,
                1,
                (560, 520),
            )?;
            println!("t-SNE: {}", out.display());
        }
    }
    Ok(())
}
