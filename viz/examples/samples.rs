//! Renders every figure kind with realistic fake data, for eyeballing.
//!
//! cargo run -p viz --release --example samples [-- OUT_DIR]   (default /tmp/viz-samples)

use std::path::PathBuf;
use viz::*;

/// xorshift64* with Box-Muller normals; enough for fake data.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn main() -> Result<(), VizError> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/tmp/viz-samples".into()),
    );
    std::fs::create_dir_all(&out).expect("create output dir");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    // Figure 1: t-SNE maps, clusters blurring as the corruption grows.
    let classes: Vec<String> = ["sadness", "joy", "love", "anger", "fear", "surprise"]
        .map(String::from)
        .to_vec();
    let settings = [
        ("pretrained (clean)", 0.35, 0.41, 0.97),
        ("Gaussian noise σ = 0.01", 0.5, 0.33, 0.93),
        ("Gaussian noise σ = 0.05", 0.9, 0.12, 0.71),
        ("30% attention heads zeroed", 0.7, 0.21, 0.84),
        ("layers 4–8 shuffled", 1.1, 0.05, 0.52),
        ("random initialisation", 2.5, -0.02, 0.19),
    ];
    let panels: Vec<ScatterPanel> = settings
        .iter()
        .map(|&(title, spread, sil, knn)| {
            let mut points = Vec::new();
            let mut cls = Vec::new();
            for i in 0..900 {
                let c = i % classes.len();
                let angle = c as f64 / classes.len() as f64 * std::f64::consts::TAU;
                let (cx, cy) = (30.0 * angle.cos(), 30.0 * angle.sin());
                let s = 8.0 + 20.0 * spread;
                points.push((cx + s * rng.normal(), cy + s * 0.8 * rng.normal()));
                cls.push(c);
            }
            ScatterPanel {
                title: title.into(),
                footer: format!("silhouette {sil:.2} · 5-NN acc {knn:.2}"),
                points,
                classes: cls,
            }
        })
        .collect();
    scatter_grid(
        &out.join("scatter_grid.png"),
        &panels,
        &classes,
        3,
        (PAGE_WIDTH / 3, 440),
    )?;

    // More classes than colours: colours cycle with new marker shapes.
    let many: Vec<String> = (0..11).map(|i| format!("topic {}", i + 1)).collect();
    let panel = |title: &str, rng: &mut Rng| {
        let mut points = Vec::new();
        let mut cls = Vec::new();
        for i in 0..660 {
            let c = i % many.len();
            let a = c as f64 / many.len() as f64 * std::f64::consts::TAU;
            points.push((
                40.0 * a.cos() + 6.0 * rng.normal(),
                40.0 * a.sin() + 6.0 * rng.normal(),
            ));
            cls.push(c);
        }
        ScatterPanel {
            title: title.into(),
            footer: "silhouette 0.52 · 5-NN acc 0.95".into(),
            points,
            classes: cls,
        }
    };
    let p = [
        panel("before", &mut rng),
        panel("after fine-tuning", &mut rng),
    ];
    scatter_grid(
        &out.join("scatter_11_classes.png"),
        &p,
        &many,
        2,
        (400, 400),
    )?;

    // Weight values per module type, before / after fine-tuning.
    let modules = [
        ("query", 0.0, 0.045, 0.02),
        ("key", 0.0, 0.047, 0.015),
        ("value", 0.0, 0.030, 0.01),
        ("attention output", 0.0, 0.028, 0.012),
        ("FFN intermediate", 0.0, 0.040, 0.01),
        ("LayerNorm γ", 0.9, 0.08, 0.05),
    ];
    let hist_panels: Vec<HistPanel> = modules
        .iter()
        .map(|&(name, mean, sd, drift)| {
            let n = if name.starts_with("LayerNorm") {
                9_216
            } else {
                400_000
            };
            let before: Vec<f64> = (0..n)
                .map(|_| {
                    let z = rng.normal();
                    // Heavier tails than a Gaussian, like trained weights.
                    mean + sd * z * (1.0 + 0.15 * z * z)
                })
                .collect();
            let after: Vec<f64> = before
                .iter()
                .map(|w| w + drift * rng.normal() + 0.3 * (w - mean) * rng.uniform())
                .collect();
            let (lo, hi) = before
                .iter()
                .chain(&after)
                .fold((f64::MAX, f64::MIN), |(a, b), &w| (a.min(w), b.max(w)));
            let edges = linear_edges(lo, hi, 80);
            HistPanel {
                title: name.into(),
                x_label: if name.starts_with("LayerNorm") {
                    "scale value".into()
                } else {
                    "weight value".into()
                },
                series: vec![
                    Histogram {
                        name: "before (corrupted)".into(),
                        counts: histogram(before.iter().copied(), &edges),
                        edges: edges.clone(),
                    },
                    Histogram {
                        name: "after fine-tuning".into(),
                        counts: histogram(after.iter().copied(), &edges),
                        edges,
                    },
                ],
                ..Default::default()
            }
        })
        .collect();
    histogram_panels(
        &out.join("hist_panels.png"),
        &hist_panels,
        3,
        (PAGE_WIDTH / 3, 340),
    )?;
    histogram_panels(
        &out.join("hist_single.png"),
        &[HistPanel {
            title: "classifier weights (one series, sparse tail)".into(),
            x_label: "weight value".into(),
            series: vec![Histogram {
                name: "after".into(),
                edges: linear_edges(-0.2, 0.2, 20),
                counts: vec![
                    1, 0, 0, 2, 5, 30, 200, 1500, 9000, 25000, 24000, 9500, 1400, 180, 40, 3, 0, 0,
                    0, 1,
                ],
            }],
            ..Default::default()
        }],
        1,
        (500, 360),
    )?;

    // Relative weight change, layers x modules.
    let cols: Vec<String> = [
        "query", "key", "value", "attn out", "FFN in", "FFN out", "LN γ",
    ]
    .map(String::from)
    .to_vec();
    let rows: Vec<String> = (1..=12).map(|l| format!("layer {l}")).collect();
    let values: Vec<Vec<f64>> = (0..12)
        .map(|l| {
            (0..cols.len())
                .map(|c| {
                    if l == 3 && c == 6 {
                        f64::NAN
                    } else {
                        0.02 + 0.015
                            * l as f64
                            * (1.0 + 0.3 * c as f64)
                            * (1.0 + 0.2 * rng.normal())
                    }
                })
                .collect()
        })
        .collect();
    let change = Heatmap {
        title: "Relative weight change after fine-tuning".into(),
        row_labels: rows.clone(),
        col_labels: cols,
        values,
        value_label: "relative change ‖B−A‖/‖A‖".into(),
        range: None,
        annotate: true,
    };
    heatmap(&out.join("heatmap_change.png"), &change, None)?;
    heatmap(
        &out.join("heatmap_change_fixed_plain.png"),
        &Heatmap {
            annotate: false,
            ..change.clone()
        },
        Some((700, 520)),
    )?;

    // CKA to the clean model, layers x runs, long run names.
    let runs: Vec<String> = [
        "noise-0.01-seed1",
        "noise-0.05-seed1",
        "heads-zeroed-30pct",
        "layers-shuffled-4-8",
        "random-init",
    ]
    .map(String::from)
    .to_vec();
    let cka: Vec<Vec<f64>> = (0..12)
        .map(|l| {
            (0..runs.len())
                .map(|r| {
                    let decay = [0.01, 0.03, 0.02, 0.05, 0.08][r];
                    (1.0 - decay * l as f64 * (1.0 + 0.1 * rng.normal())).clamp(0.0, 1.0)
                })
                .collect()
        })
        .collect();
    heatmap(
        &out.join("heatmap_cka.png"),
        &Heatmap {
            title: "Linear CKA to the clean model".into(),
            row_labels: rows,
            col_labels: runs,
            values: cka,
            value_label: "linear CKA".into(),
            range: Some((0.0, 1.0)),
            annotate: true,
        },
        None,
    )?;
    lines(&out, &mut rng)?;
    magnitudes(&out, &mut rng)?;
    edge_cases(&out.join("edge"))?;
    println!("wrote samples to {}", out.display());
    Ok(())
}

/// Training curves (two panels with their own legends) and F1 against the share of layers
/// corrupted (error bars, a dashed reference, one shared legend).
fn lines(out: &std::path::Path, rng: &mut Rng) -> Result<(), VizError> {
    let epochs = 1..=8;
    let curve = |name: &str, f: &dyn Fn(f64) -> f64| Series {
        name: name.into(),
        points: epochs.clone().map(|e| (e as f64, f(e as f64))).collect(),
        ..Default::default()
    };
    let panels = [
        Panel {
            title: "Cross-entropy loss".into(),
            x_label: "epoch".into(),
            y_label: "loss".into(),
            series: vec![
                curve("train", &|e| 1.2 * (-0.4 * e).exp() + 0.05),
                curve("eval", &|e| 0.9 * (-0.5 * e).exp() + 0.2 + 0.01 * e),
            ],
            x_ticks: Ticks::Integer,
            ..Default::default()
        },
        Panel {
            title: "Evaluation scores".into(),
            x_label: "epoch".into(),
            y_label: "score".into(),
            series: vec![
                curve("weighted F1", &|e| 0.97 - 0.5 * (-0.7 * e).exp()),
                curve("macro F1", &|e| 0.96 - 0.55 * (-0.7 * e).exp()),
                curve("accuracy", &|e| 0.975 - 0.45 * (-0.7 * e).exp()),
            ],
            x_ticks: Ticks::Integer,
            ..Default::default()
        },
    ];
    line_panels(&out.join("curves.png"), &panels, (PAGE_WIDTH / 2, 480))?;
    let levels = [0.0, 25.0, 50.0, 75.0, 100.0];
    let side = |name: &str, drop: f64, rng: &mut Rng| Series {
        name: name.into(),
        points: levels
            .iter()
            .map(|&l| (l, 95.0 - drop * l / 100.0 + rng.normal()))
            .collect(),
        y_err: levels.iter().map(|_| 1.0 + rng.uniform() * 2.0).collect(),
        ..Default::default()
    };
    let f1 = Panel {
        title: "minilm-l6 on bbc-news".into(),
        x_label: "layers corrupted (%)".into(),
        y_label: "weighted F1 (%)".into(),
        series: vec![
            side("bottom layers", 30.0, rng),
            side("top layers", 12.0, rng),
            Series {
                name: "clean".into(),
                points: vec![(0.0, 95.0), (100.0, 95.0)],
                dashed: true,
                ..Default::default()
            },
        ],
        x_ticks: Ticks::Integer,
        ..Default::default()
    };
    line_panels(&out.join("f1.png"), &[f1], (COLUMN_WIDTH, 500))
}

/// Weight magnitudes on log-spaced bins: pretrained, corrupted and healed, all visible.
fn magnitudes(out: &std::path::Path, rng: &mut Rng) -> Result<(), VizError> {
    let edges = log_edges(1e-6, 1.0, 60)?;
    let pretrained: Vec<f64> = (0..200_000).map(|_| (0.04 * rng.normal()).abs()).collect();
    let corrupted: Vec<f64> = (0..200_000).map(|_| (0.02 * rng.normal()).abs()).collect();
    let healed: Vec<f64> = corrupted
        .iter()
        .map(|w| (w + 0.01 * rng.normal()).abs())
        .collect();
    let series = [
        ("pretrained", &pretrained),
        ("corrupted", &corrupted),
        ("healed", &healed),
    ]
    .iter()
    .map(|(name, v)| Histogram {
        name: name.to_string(),
        counts: histogram(v.iter().copied(), &edges),
        edges: edges.clone(),
    })
    .collect();
    let panel = HistPanel {
        title: "query weights (bottom 50%)".into(),
        x_label: "|w|".into(),
        series,
        log_x: true,
    };
    histogram_panels(
        &out.join("hist_log_x.png"),
        &[panel],
        1,
        (COLUMN_WIDTH, 460),
    )
}

/// Awkward inputs: the most classes, empty bins only, tiny and degenerate heatmaps.
fn edge_cases(out: &std::path::Path) -> Result<(), VizError> {
    std::fs::create_dir_all(out).expect("create output dir");
    let names: Vec<String> = (0..SCATTER_MAX_CLASSES)
        .map(|i| format!("class {i}"))
        .collect();
    let points: Vec<(f64, f64)> = (0..640)
        .map(|i| {
            let c = (i % 32) as f64;
            (
                c % 8.0 + 0.2 * ((i as f64) * 0.7).sin(),
                (c / 8.0).floor() + 0.2 * ((i as f64) * 1.3).cos(),
            )
        })
        .collect();
    let panel = ScatterPanel {
        title: "all 32 classes; a deliberately long title that has to shrink to fit".into(),
        footer: String::new(),
        classes: (0..640).map(|i| i % 32).collect(),
        points,
    };
    scatter_grid(&out.join("scatter_32.png"), &[panel], &names, 1, (360, 300))?;
    histogram_panels(
        &out.join("hist_zero.png"),
        &[HistPanel {
            title: "all-zero and one-count series".into(),
            x_label: "weight value".into(),
            series: vec![
                Histogram {
                    name: "all zero".into(),
                    edges: vec![0.0, 1.0, 2.0],
                    counts: vec![0, 0],
                },
                Histogram {
                    name: "one value".into(),
                    edges: vec![0.5, 1.5],
                    counts: vec![1],
                },
            ],
            ..Default::default()
        }],
        1,
        (300, 240),
    )?;
    let one = Heatmap {
        title: "one cell".into(),
        row_labels: vec!["layer 1".into()],
        col_labels: vec!["query".into()],
        values: vec![vec![0.5]],
        value_label: "relative change".into(),
        range: None,
        annotate: true,
    };
    heatmap(&out.join("heat_one.png"), &one, None)?;
    let signed = Heatmap {
        title: "signed values, fixed small size".into(),
        row_labels: (1..=24).map(|l| format!("layer {l}")).collect(),
        col_labels: (1..=10)
            .map(|r| format!("run-with-long-name-{r}"))
            .collect(),
        values: (0..24)
            .map(|l| {
                (0..10)
                    .map(|r| ((l * 10 + r) as f64 * 0.37).sin() * 3e-3)
                    .collect()
            })
            .collect(),
        value_label: "Δ accuracy".into(),
        range: None,
        annotate: true,
    };
    heatmap(&out.join("heat_small.png"), &signed, Some((520, 560)))?;
    heatmap(&out.join("heat_signed_auto.png"), &signed, None)?;
    Ok(())
}
