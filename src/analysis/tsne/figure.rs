//! `heal tsne`'s figures: 2-D maps of embedding sets (PCA, then t-SNE), one PNG per input or the
//! paper's Figure 1 as a grid of panels, each with the scores that back the picture, and beside
//! every PNG its SVG, its coordinates (CSV) and scores (JSON).

use super::{embed_2d_with_progress, TsneParams};
use crate::analysis::geometry::{self, ClusterScores};
use crate::error::user;
use crate::fsio::{self, Kind, Output};
use crate::run_dir::embeddings::EmbeddingSet;
use crate::train::config::EmbeddingStage;
use anyhow::Result;
use ndarray::Array2;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The layer of each embedding set to map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// The deepest layer the set holds.
    Last,
    /// A layer number (0 = embeddings output).
    Number(usize),
}

impl FromStr for Layer {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        if s == "last" {
            return Ok(Layer::Last);
        }
        s.parse()
            .map(Layer::Number)
            .map_err(|_| user(format!("--layer {s:?}: use last or a layer number")))
    }
}

/// What `heal tsne` draws: the inputs, how to map them, and where the PNGs go.
#[derive(Clone, Debug)]
pub struct FigureRequest {
    /// Embedding sets or run directories (then RUN/embeddings/<stage>).
    pub inputs: Vec<PathBuf>,
    /// Stage read from run directories: pretrained, corrupted or best.
    pub stage: EmbeddingStage,
    pub layer: Layer,
    /// One panel title per input; `None`: each set's [`EmbeddingSet::title`].
    pub titles: Option<Vec<String>>,
    /// Draw all inputs as one grid of panels into `out`.
    pub panel: bool,
    /// Output PNG; `None`: `<input>/tsne.png` for each input (the run directory's for a run).
    pub out: Option<PathBuf>,
    /// Panels per row with `panel`; `None`: 4, or fewer inputs.
    pub columns: Option<usize>,
    pub params: TsneParams,
    /// Neighbours for the k-NN accuracy under each panel.
    pub k: usize,
    /// Replace existing PNGs (and their side files).
    pub overwrite: bool,
}

impl FigureRequest {
    /// Checks the request before any input is read; the errors name `heal tsne`'s flags.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0 {
            return Err(user("--k 0: give at least 1 neighbour"));
        }
        if let Some(t) = &self.titles {
            if t.len() != self.inputs.len() {
                return Err(user(format!(
                    "--titles has {} names for {} inputs: give one per input",
                    t.len(),
                    self.inputs.len()
                )));
            }
        }
        if !self.panel && self.out.is_some() && self.inputs.len() > 1 {
            return Err(user(
                "--out names one PNG: with several inputs use --panel, or leave --out out to write <input>/tsne.png each",
            ));
        }
        if self.panel && self.out.is_none() {
            return Err(user("--panel draws one figure: give --out FILE.png"));
        }
        if let Some(out) = &self.out {
            check_output(out, self.overwrite)?;
        }
        Ok(())
    }
}

/// The one file kind `--out` takes (the SVG and side files go beside it).
const PNG: Kind = Kind::File(&["png"]);

/// One input's map, as scored under its panel.
#[derive(Clone, Debug)]
pub struct MapScores {
    /// The embeddings folder read.
    pub input: PathBuf,
    pub title: String,
    pub layer: usize,
    pub scores: ClusterScores,
}

/// A PNG and its side files.
#[derive(Clone, Debug)]
pub struct FigureFiles {
    pub png: PathBuf,
    /// The same figure as SVG.
    pub svg: PathBuf,
    /// `<png stem>.csv`: input, title, layer, id, label, x, y of every point.
    pub csv: PathBuf,
    /// `<png stem>.json`: the t-SNE parameters and each map's scores.
    pub json: PathBuf,
}

/// What [`draw`] made: every map in input order, and every PNG written.
#[derive(Clone, Debug)]
pub struct Figures {
    pub maps: Vec<MapScores>,
    pub files: Vec<FigureFiles>,
}

/// Maps every input of `req` to 2-D and writes the PNGs with their side files. `log` receives
/// the command's report as the work goes, one line at a time: each map's scores, then each PNG.
pub fn draw(req: &FigureRequest, log: &mut dyn FnMut(&str)) -> Result<Figures> {
    req.validate()?;
    // Read every input first, so that a bad one fails before minutes of t-SNE.
    let sets = req
        .inputs
        .iter()
        .map(|p| EmbeddingSet::read(p, req.stage))
        .collect::<Result<Vec<_>>>()?;
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
    // Checked for every input before the first map, so that nothing is written for a bad --k.
    for set in &sets {
        geometry::knn_fits(req.k, set.labels.len(), &set.dir)?;
    }
    // Every output is checked before minutes of t-SNE too.
    let outs: Vec<PathBuf> = if req.panel {
        req.out.iter().cloned().collect()
    } else {
        sets.iter()
            .map(|set| req.out.clone().unwrap_or_else(|| default_png(set)))
            .collect()
    };
    for out in &outs {
        check_output(out, req.overwrite)?;
    }
    let mut maps = Vec::new();
    for (i, set) in sets.into_iter().enumerate() {
        let title = req
            .titles
            .as_ref()
            .map_or_else(|| set.title(), |t| t[i].clone());
        let map = map_one(set, req.layer, &req.params, req.k)?;
        log(&format!(
            "{:<24} layer {:>2}: {}",
            title,
            map.layer,
            footer(&map.scores, req.k, map.scored, map.points.nrows())
        ));
        maps.push((map, title));
    }
    let mut files = Vec::new();
    if req.panel {
        let out = req.out.as_ref().expect("validated");
        let columns = req.columns.unwrap_or(4).clamp(1, maps.len());
        let panels: Vec<viz::ScatterPanel> = maps
            .iter()
            .map(|(m, t)| panel(m, t.clone(), req.k))
            .collect();
        let refs: Vec<(&Map, String)> = maps.iter().map(|(m, t)| (m, t.clone())).collect();
        let written = sidecars(out);
        begin_output(out)?;
        write_csv(&written.csv, &refs)?;
        write_scores(&written.json, &refs, &req.params, req.k)?;
        viz::scatter_grid(out, &panels, &class_names, columns, panel_size(columns))?;
        log(&format!("t-SNE panels: {} (and .svg)", out.display()));
        files.push(written);
    } else {
        for (m, t) in &maps {
            let out = req.out.clone().unwrap_or_else(|| default_png(&m.set));
            let refs = vec![(m, t.clone())];
            let written = sidecars(&out);
            begin_output(&out)?;
            write_csv(&written.csv, &refs)?;
            write_scores(&written.json, &refs, &req.params, req.k)?;
            viz::scatter_grid(
                &out,
                &[panel(m, t.clone(), req.k)],
                &class_names,
                1,
                panel_size(1),
            )?;
            log(&format!("t-SNE: {} (and .svg)", out.display()));
            files.push(written);
        }
    }
    let maps = maps
        .into_iter()
        .map(|(m, title)| MapScores {
            input: m.set.dir,
            title,
            layer: m.layer,
            scores: m.scores,
        })
        .collect();
    Ok(Figures { maps, files })
}

/// One input mapped to 2-D.
struct Map {
    set: EmbeddingSet,
    layer: usize,
    points: Array2<f64>,
    scores: ClusterScores,
    /// Points the scores were computed on: all of them, or [`SCORE_SAMPLE`].
    scored: usize,
}

/// Above this many points the scores under a map come from a seeded random sample of this
/// many, as scikit-learn's `silhouette_score(..., sample_size=)`: their pairwise pass is
/// O(n^2), 45 s at 67,000 points on 2 cores, longer than the map itself.
pub const SCORE_SAMPLE: usize = 10_000;

/// Cluster scores of a map, on a seeded sample of [`SCORE_SAMPLE`] points when it is larger.
/// Returns the scores and the number of points scored.
fn map_scores(points: &Array2<f64>, labels: &[usize], k: usize) -> (ClusterScores, usize) {
    let n = points.nrows();
    if n <= SCORE_SAMPLE {
        return (geometry::cluster_scores(points.view(), labels, k), n);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut pick = rand::seq::index::sample(&mut rng, n, SCORE_SAMPLE).into_vec();
    pick.sort_unstable();
    let sample = points.select(ndarray::Axis(0), &pick);
    let sample_labels: Vec<usize> = pick.iter().map(|&i| labels[i]).collect();
    (
        geometry::cluster_scores(sample.view(), &sample_labels, k),
        SCORE_SAMPLE,
    )
}

fn map_one(set: EmbeddingSet, layer: Layer, params: &TsneParams, k: usize) -> Result<Map> {
    let (layer, matrix) = match layer {
        Layer::Last => set.last_layer(),
        Layer::Number(l) => {
            let m = set.layer(l).ok_or_else(|| {
                user(format!(
                    "{}: no layer {l}; it has {:?}",
                    set.dir.display(),
                    set.layers.iter().map(|(l, _)| *l).collect::<Vec<_>>()
                ))
            })?;
            (l, m)
        }
    };
    let bar = crate::progress::bar(
        params.iterations as u64,
        crate::progress::Unit::Iterations,
        "t-SNE",
    );
    bar.set_message(set.title());
    let points = embed_2d_with_progress(matrix.view(), params, &mut |i| bar.set_position(i as u64))
        .map_err(|e| e.context(format!("{}", set.dir.display())))?;
    bar.finish_and_clear();
    let (scores, scored) = map_scores(&points, &set.labels, k);
    Ok(Map {
        set,
        layer,
        points,
        scores,
        scored,
    })
}

/// Where a single map goes without an explicit PNG: beside the run, or in the embeddings folder.
fn default_png(set: &EmbeddingSet) -> PathBuf {
    let base = if set.run.is_some() {
        set.dir
            .parent()
            .and_then(|p| p.parent())
            .unwrap_or(&set.dir)
            .to_path_buf()
    } else {
        set.dir.clone()
    };
    base.join("tsne.png")
}

fn footer(s: &ClusterScores, k: usize, scored: usize, n: usize) -> String {
    let of = if scored < n {
        format!(" (on {scored} of {n} points)")
    } else {
        String::new()
    };
    format!(
        "silhouette {:.2} · {k}-NN acc {:.3}{of}",
        s.silhouette, s.knn
    )
}

fn panel(map: &Map, title: String, k: usize) -> viz::ScatterPanel {
    viz::ScatterPanel {
        title,
        footer: footer(&map.scores, k, map.scored, map.points.nrows()),
        points: map
            .points
            .rows()
            .into_iter()
            .map(|r| (r[0], r[1]))
            .collect(),
        classes: map.set.labels.clone(),
    }
}

/// Pixel size of each panel: `columns` panels across a page, a single map a column wide; the
/// maps square, with room for the title and the scores.
fn panel_size(columns: usize) -> (u32, u32) {
    let w = (viz::PAGE_WIDTH / columns.max(1) as u32).min(viz::COLUMN_WIDTH);
    (w, w + 50)
}

/// An output PNG: a `.png` file name, not a folder, and (unless `overwrite`) neither the PNG
/// nor a side file there yet.
fn check_output(png: &Path, overwrite: bool) -> Result<()> {
    Output::check("--out", png, PNG, overwrite)?;
    let files = sidecars(png);
    for side in [files.svg, files.csv, files.json] {
        if side.is_dir() {
            return Err(user(format!(
                "--out {}: {} is a folder: give another --out",
                png.display(),
                side.display()
            )));
        }
        if side.exists() && !overwrite {
            return Err(user(format!(
                "--out {}: {} exists: choose another --out, or pass --overwrite to replace it",
                png.display(),
                side.display()
            )));
        }
    }
    Ok(())
}

/// Makes the PNG's folder and cleans killed writes' leftovers of its files.
fn begin_output(png: &Path) -> Result<()> {
    Output::check("--out", png, PNG, true)?.begin()?;
    for side in ["svg", "csv", "json"] {
        fsio::temp::clean_leftovers(&png.with_extension(side));
    }
    Ok(())
}

fn sidecars(png: &Path) -> FigureFiles {
    FigureFiles {
        png: png.to_path_buf(),
        svg: png.with_extension("svg"),
        csv: png.with_extension("csv"),
        json: png.with_extension("json"),
    }
}

/// Coordinates next to the PNG: `<png stem>.csv` with input, title, id, label, x, y.
fn write_csv(path: &Path, maps: &[(&Map, String)]) -> Result<()> {
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

fn write_scores(path: &Path, maps: &[(&Map, String)], params: &TsneParams, k: usize) -> Result<()> {
    let rows: Vec<serde_json::Value> = maps
        .iter()
        .map(|(m, title)| {
            serde_json::json!({
                "input": m.set.dir, "title": title, "layer": m.layer, "examples": m.set.ids.len(),
                "silhouette_2d": m.scores.silhouette, "knn_accuracy_2d": m.scores.knn,
                "separation_2d": m.scores.separation, "k": k, "scored_examples": m.scored,
            })
        })
        .collect();
    fsio::write_json(path, &serde_json::json!({"params": params, "maps": rows}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_maps_are_scored_on_a_sample_that_agrees_with_the_whole() {
        // Three blobs of 4,000 points on a line: 12,000 points, above the sample size.
        let n = 12_000;
        let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let points = Array2::from_shape_fn((n, 2), |(i, c)| {
            let jitter = ((i * 7919 + c * 104_729) % 1000) as f64 / 1000.0;
            if c == 0 {
                (i % 3) as f64 * 4.0 + jitter
            } else {
                jitter
            }
        });
        let (sampled, scored) = map_scores(&points, &labels, 5);
        assert_eq!(scored, SCORE_SAMPLE);
        let whole = geometry::cluster_scores(points.view(), &labels, 5);
        assert!((sampled.silhouette - whole.silhouette).abs() < 0.01);
        assert!((sampled.knn - whole.knn).abs() < 0.01);
        // Small maps: every point.
        let small = points.slice(ndarray::s![..300, ..]).to_owned();
        let (s, scored) = map_scores(&small, &labels[..300], 5);
        assert_eq!(scored, 300);
        let direct = geometry::cluster_scores(small.view(), &labels[..300], 5);
        assert_eq!(s.silhouette.to_bits(), direct.silhouette.to_bits());
        assert!(footer(&sampled, 5, SCORE_SAMPLE, n).ends_with("(on 10000 of 12000 points)"));
        assert!(!footer(&s, 5, 300, 300).contains("(on"));
    }
}
