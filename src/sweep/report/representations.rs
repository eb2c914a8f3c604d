//! What healing did to the representations of a section's settings, from each shown run's
//! analysis/vectors.safetensors: the t-SNE map of the final layer (Figure 1's panel), the
//! separation ratio of every layer, and every layer's linear CKA to the clean run's.
//!
//! One setting's vectors are in memory at a time (beside the clean run's), so a BERT-Base
//! section costs about two cells' artefacts.

use super::section::{Section, Setting};
use crate::analysis::geometry::{self, ClusterScores};
use crate::analysis::tsne::{embed_2d, TsneParams};
use crate::run_dir::analysis::AnalysisVectors;
use crate::run_dir::RunDir;
use ndarray::Array2;

/// Neighbours of the k-NN accuracy under each Figure 1 panel.
pub(super) const KNN_K: usize = 10;

/// One setting's geometry.
#[derive(Debug, Clone)]
pub(super) struct Geometry {
    /// L: the final layer, which the map shows.
    pub(super) layer: usize,
    pub(super) map: Vec<(f64, f64)>,
    pub(super) classes: Vec<usize>,
    /// Silhouette, k-NN accuracy and separation of the 2-D map.
    pub(super) map_scores: ClusterScores,
    /// Separation ratio of `best.layer.{i}`, i = 0..=L.
    pub(super) separation: Vec<f64>,
    /// Linear CKA of `best.layer.{i}` to the clean run's; None without a clean run's vectors
    /// on the same examples.
    pub(super) cka: Option<Vec<f64>>,
}

/// The t-SNE parameters of every panel: scikit-learn's defaults, seed 0, with the perplexity
/// capped for small samples (it must stay below (n - 1) / 3).
pub(super) fn tsne_params(n: usize) -> TsneParams {
    let cap = ((n as f64 - 1.0) / 3.0 - 1.0).floor().max(1.0);
    TsneParams {
        perplexity: cap.min(30.0),
        seed: 0,
        ..Default::default()
    }
}

fn best_layers(v: &AnalysisVectors) -> Vec<Array2<f64>> {
    v.best_layers()
        .into_iter()
        .map(|(_, a)| a.mapv(f64::from))
        .collect()
}

/// The shown run's vectors, or why there are none.
fn read(setting: &Setting) -> Result<(String, AnalysisVectors), String> {
    let run = setting
        .shown
        .as_ref()
        .ok_or_else(|| "no finished run".to_string())?;
    let path = RunDir::at(&run.dir).analysis_vectors();
    if !path.is_file() {
        return Err(format!("no artefacts ({} has no analysis/)", run.cell));
    }
    AnalysisVectors::read(&path)
        .map(|v| (run.cell.clone(), v))
        .map_err(|e| format!("unreadable artefacts in {}: {e}", run.cell))
}

fn geometry_of(
    cell: String,
    v: &AnalysisVectors,
    clean: Option<&(Vec<usize>, Vec<Array2<f64>>)>,
) -> Result<Geometry, String> {
    let layers = best_layers(v);
    let layer = v
        .best_layers()
        .last()
        .map(|(l, _)| *l)
        .ok_or_else(|| format!("no best-epoch vectors in {cell}"))?;
    let classes: Vec<usize> = v.labels.iter().map(|&l| l.max(0) as usize).collect();
    // best_layers is in layer order: the last is the final layer.
    let last = layers.last().expect("listed above");
    let points = embed_2d(last.view(), &tsne_params(classes.len()))
        .map_err(|e| format!("t-SNE of {cell}: {e}"))?;
    let map_scores = geometry::cluster_scores(points.view(), &classes, KNN_K);
    let separation = layers
        .iter()
        .map(|x| geometry::separation(x.view(), &classes))
        .collect();
    let cka = clean
        .filter(|(examples, l)| *examples == v.examples && l.len() == layers.len())
        .map(|(_, clean_layers)| {
            clean_layers
                .iter()
                .zip(&layers)
                .map(|(c, x)| geometry::linear_cka(x.view(), c.view()))
                .collect()
        });
    Ok(Geometry {
        layer,
        map: points.rows().into_iter().map(|r| (r[0], r[1])).collect(),
        classes,
        map_scores,
        separation,
        cka,
    })
}

/// Every setting's geometry in the section's order, or why it has none.
pub(super) fn geometries(section: &Section) -> Vec<Result<Geometry, String>> {
    // The clean run's file is read once: its layers are every other setting's reference, and
    // its own geometry is computed from the same read.
    let clean_setting = section.clean();
    let clean_read = clean_setting.map(read);
    let clean = clean_read
        .as_ref()
        .and_then(|r| r.as_ref().ok())
        .map(|(_, v)| (v.examples.clone(), best_layers(v)));
    section
        .settings
        .iter()
        .map(|s| match (&clean_read, clean_setting) {
            (Some(r), Some(c)) if std::ptr::eq(s, c) => {
                let (cell, v) = r.as_ref().map_err(Clone::clone)?;
                geometry_of(cell.clone(), v, clean.as_ref())
            }
            _ => {
                let (cell, v) = read(s)?;
                geometry_of(cell, &v, clean.as_ref())
            }
        })
        .collect()
}
