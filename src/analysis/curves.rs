//! Per-epoch training curves of a run (from metrics.jsonl) as a PNG: losses in one panel,
//! accuracy and F1 in the other.

use crate::run_dir::read_metrics;
use std::path::Path;
use viz::{Panel, Series};

pub fn render(run: &Path, png: &Path) -> anyhow::Result<()> {
    let epochs = read_metrics(run)?;
    let series = |name: &str, f: &dyn Fn(&crate::run_dir::EpochRecord) -> f64| Series {
        name: name.to_string(),
        points: epochs.iter().map(|e| (e.epoch as f64, f(e))).collect(),
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
        },
    ];
    let tmp = png.with_file_name(format!(
        ".{}.tmp.png",
        png.file_name().unwrap_or_default().to_string_lossy()
    ));
    viz::line_panels(&tmp, &panels, (560, 400))?;
    std::fs::rename(&tmp, png)?;
    Ok(())
}
