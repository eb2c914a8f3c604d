//! Per-epoch training curves of a run (from metrics.jsonl) as a PNG and an SVG beside it:
//! losses in one panel, accuracy and F1 in the other, epochs as whole-number ticks.

use crate::fsio::{Kind, Output};
use crate::run_dir::read_metrics;
use std::path::Path;
use viz::{Panel, Series, Ticks};

/// Draws `run`'s curves into `png` (and the SVG beside it); an existing PNG or SVG is replaced
/// only with `overwrite`.
pub fn render(run: &Path, png: &Path, overwrite: bool) -> anyhow::Result<()> {
    // A bad --out is the user's to fix, before anything is read.
    let output = Output::check("--out", png, Kind::File(&["png"]), overwrite)?;
    let svg = png.with_extension("svg");
    if svg.is_dir() || (svg.exists() && !overwrite) {
        return Err(crate::error::user(format!(
            "--out {}: {} exists: choose another --out, or pass --overwrite to replace it",
            png.display(),
            svg.display()
        )));
    }
    let epochs = read_metrics(run)?;
    let series = |name: &str, f: &dyn Fn(&crate::run_dir::EpochRecord) -> f64| Series {
        name: name.to_string(),
        points: epochs.iter().map(|e| (e.epoch as f64, f(e))).collect(),
        ..Default::default()
    };
    let panels = [
        Panel {
            title: "Cross-entropy loss".into(),
            x_label: "epoch".into(),
            y_label: "loss".into(),
            series: vec![
                series("train", &|e| e.train_loss),
                series("eval", &|e| e.eval_loss),
            ],
            x_ticks: Ticks::Integer,
            ..Default::default()
        },
        Panel {
            title: "Evaluation scores".into(),
            x_label: "epoch".into(),
            y_label: "score".into(),
            series: vec![
                series("weighted F1", &|e| e.f1_weighted),
                series("macro F1", &|e| e.f1_macro),
                series("accuracy", &|e| e.accuracy),
            ],
            x_ticks: Ticks::Integer,
            ..Default::default()
        },
    ];
    // Two panels across a page; viz writes both files atomically.
    output.begin()?;
    crate::fsio::temp::clean_leftovers(&svg);
    viz::line_panels(png, &panels, (viz::PAGE_WIDTH / 2, 480))?;
    Ok(())
}
