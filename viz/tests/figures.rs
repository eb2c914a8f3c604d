//! Public-API tests of the scatter, histogram and heatmap figures.

use std::path::PathBuf;
use viz::*;

/// A fresh directory for one test.
fn tmp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("viz-fig-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(path: &std::path::Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[1..4], b"PNG", "{} is not a PNG", path.display());
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("class {i}")).collect()
}

fn scatter_panel(n: usize, classes: usize) -> ScatterPanel {
    ScatterPanel {
        title: "setting".into(),
        footer: "silhouette 0.41 · 5-NN acc 0.97".into(),
        points: (0..n)
            .map(|i| ((i as f64 * 0.7).sin() * 10.0, (i as f64 * 1.3).cos() * 5.0))
            .collect(),
        classes: (0..n).map(|i| i % classes).collect(),
    }
}

#[test]
fn scatter_grid_writes_the_announced_size() {
    let dir = tmp_dir("scatter");
    let path = dir.join("s.png");
    let panels = vec![scatter_panel(50, 3); 5];
    let classes = names(3);
    scatter_grid(&path, &panels, &classes, 3, (300, 280)).unwrap();
    let (w, h) = png_size(&path);
    assert_eq!(
        (w, h),
        scatter_grid_size(&panels, &classes, 3, (300, 280)).unwrap()
    );
    assert_eq!(w, 900);
    // Two rows of panels plus a one-row legend strip.
    assert!(h > 560 && h < 560 + 80, "height {h}");
    // Fewer panels than columns: the grid shrinks to the panels.
    scatter_grid(&path, &panels[..2], &classes, 4, (300, 280)).unwrap();
    assert_eq!(png_size(&path).0, 600);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scatter_grid_handles_many_classes_with_shapes() {
    let dir = tmp_dir("scatter-many");
    let path = dir.join("s.png");
    let classes = names(SCATTER_MAX_CLASSES);
    let panels = [scatter_panel(200, SCATTER_MAX_CLASSES)];
    scatter_grid(&path, &panels, &classes, 1, (400, 400)).unwrap();
    let (w, h) = png_size(&path);
    assert_eq!(w, 400);
    // 32 legend entries wrap onto several rows.
    assert_eq!(
        h,
        scatter_grid_size(&panels, &classes, 1, (400, 400))
            .unwrap()
            .1
    );
    assert!(h > 400 + 100);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scatter_grid_rejects_bad_input() {
    let path = std::env::temp_dir().join("viz-never-scatter.png");
    let classes = names(3);
    let ok = scatter_panel(10, 3);
    let sizes = (300, 300);
    assert!(matches!(
        scatter_grid(&path, &[], &classes, 2, sizes),
        Err(VizError::Empty(_))
    ));
    let mut empty = ok.clone();
    empty.points.clear();
    empty.classes.clear();
    assert!(matches!(
        scatter_grid(&path, &[ok.clone(), empty], &classes, 2, sizes),
        Err(VizError::Empty(_))
    ));
    let mut mismatched = ok.clone();
    mismatched.classes.pop();
    assert!(matches!(
        scatter_grid(&path, &[mismatched], &classes, 2, sizes),
        Err(VizError::Invalid(_))
    ));
    let mut out_of_range = ok.clone();
    out_of_range.classes[0] = 3;
    assert!(matches!(
        scatter_grid(&path, &[out_of_range], &classes, 2, sizes),
        Err(VizError::Invalid(_))
    ));
    assert!(matches!(
        scatter_grid(
            &path,
            std::slice::from_ref(&ok),
            &names(SCATTER_MAX_CLASSES + 1),
            2,
            sizes
        ),
        Err(VizError::Invalid(_))
    ));
    assert!(matches!(
        scatter_grid(&path, std::slice::from_ref(&ok), &[], 2, sizes),
        Err(VizError::Invalid(_))
    ));
    assert!(matches!(
        scatter_grid(&path, std::slice::from_ref(&ok), &classes, 0, sizes),
        Err(VizError::Invalid(_))
    ));
    assert!(matches!(
        scatter_grid(&path.with_extension("svg"), &[ok], &classes, 1, sizes),
        Err(VizError::Invalid(_))
    ));
    assert!(!path.exists());
}

fn hist_panel(title: &str) -> HistPanel {
    let edges = linear_edges(-1.0, 1.0, 20);
    let values = |k: f64| (0..5000).map(move |i| ((i as f64) * k).sin().powi(3));
    HistPanel {
        title: title.into(),
        x_label: "weight value".into(),
        series: vec![
            Histogram {
                name: "before".into(),
                counts: histogram(values(0.37), &edges),
                edges: edges.clone(),
            },
            Histogram {
                name: "after".into(),
                counts: histogram(values(0.11), &edges),
                edges,
            },
        ],
        ..Default::default()
    }
}

#[test]
fn histogram_panels_write_the_asked_size() {
    let dir = tmp_dir("hist");
    let path = dir.join("h.png");
    let panels: Vec<HistPanel> = ["query", "key", "value", "LayerNorm γ"]
        .iter()
        .map(|t| hist_panel(t))
        .collect();
    // The panels share their series: one legend strip under the grid of 3 x 2 panels.
    histogram_panels(&path, &panels, 3, (400, 300)).unwrap();
    let (w, h) = png_size(&path);
    assert_eq!(
        (w, h),
        histogram_panels_size(&panels, 3, (400, 300)).unwrap()
    );
    assert_eq!(w, 1200);
    assert!(h > 600 && h < 600 + 80, "height {h}");
    histogram_panels(&path, &panels[..1], 3, (400, 300)).unwrap();
    assert_eq!(
        png_size(&path),
        histogram_panels_size(&panels[..1], 3, (400, 300)).unwrap()
    );
    // A single series needs no legend: exactly the panel grid.
    let mut single = panels[0].clone();
    single.series.truncate(1);
    histogram_panels(&path, &[single.clone(), single], 2, (400, 300)).unwrap();
    assert_eq!(png_size(&path), (800, 300));
    // All-zero and single-bin series still draw (the empty one draws nothing).
    let zeros = HistPanel {
        title: "empty".into(),
        x_label: "x".into(),
        series: vec![
            Histogram {
                name: "none".into(),
                edges: vec![0.0, 1.0, 2.0],
                counts: vec![0, 0],
            },
            Histogram {
                name: "one".into(),
                edges: vec![0.5, 1.5],
                counts: vec![1],
            },
        ],
        ..Default::default()
    };
    histogram_panels(&path, std::slice::from_ref(&zeros), 1, (300, 240)).unwrap();
    assert_eq!(
        png_size(&path),
        histogram_panels_size(&[zeros], 1, (300, 240)).unwrap()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn histogram_panels_reject_bad_input() {
    let path = std::env::temp_dir().join("viz-never-hist.png");
    let ok = hist_panel("q");
    assert!(matches!(
        histogram_panels(&path, &[], 2, (300, 300)),
        Err(VizError::Empty(_))
    ));
    let mut no_series = ok.clone();
    no_series.series.clear();
    assert!(matches!(
        histogram_panels(&path, &[no_series], 2, (300, 300)),
        Err(VizError::Empty(_))
    ));
    let mut short_edges = ok.clone();
    short_edges.series[1].edges.pop();
    assert!(matches!(
        histogram_panels(&path, &[short_edges], 2, (300, 300)),
        Err(VizError::Invalid(_))
    ));
    let mut descending = ok.clone();
    descending.series[0].edges.reverse();
    assert!(matches!(
        histogram_panels(&path, &[descending], 2, (300, 300)),
        Err(VizError::Invalid(_))
    ));
    assert!(matches!(
        histogram_panels(&path, &[ok], 0, (300, 300)),
        Err(VizError::Invalid(_))
    ));
    assert!(!path.exists());
}

#[test]
fn histogram_counts_sum_to_the_non_nan_values() {
    let values: Vec<f64> = (0..10_000)
        .map(|i| {
            if i % 97 == 0 {
                f64::NAN
            } else {
                ((i as f64) * 0.013).sin() * 3.0
            }
        })
        .collect();
    let non_nan = values.iter().filter(|v| !v.is_nan()).count() as u64;
    // Edges narrower than the data: the outside values land in the end bins.
    let edges = linear_edges(-1.0, 1.0, 17);
    let counts = histogram(values.iter().copied(), &edges);
    assert_eq!(counts.len(), 17);
    assert_eq!(counts.iter().sum::<u64>(), non_nan);
    // Uneven edges work too.
    let counts = histogram(values.iter().copied(), &[-3.0, -0.1, 0.0, 0.1, 3.0]);
    assert_eq!(counts.iter().sum::<u64>(), non_nan);
}

#[test]
fn linear_edges_are_even_and_end_exactly() {
    let e = linear_edges(-0.3, 0.7, 10);
    assert_eq!(e.len(), 11);
    assert_eq!(e[0], -0.3);
    assert_eq!(e[10], 0.7);
    assert!(e.windows(2).all(|w| ((w[1] - w[0]) - 0.1).abs() < 1e-12));
    // Degenerate ranges still give ascending edges.
    let flat = linear_edges(1.0, 1.0, 4);
    assert!(flat.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(linear_edges(2.0, 1.0, 2), vec![1.0, 1.5, 2.0]);
}

fn heat(rows: usize, cols: usize) -> Heatmap {
    Heatmap {
        title: "relative change".into(),
        row_labels: (1..=rows).map(|r| format!("layer {r}")).collect(),
        col_labels: ["query", "key", "value", "attn out", "FFN in", "FFN out"]
            .iter()
            .cycle()
            .take(cols)
            .map(|s| s.to_string())
            .collect(),
        values: (0..rows)
            .map(|r| {
                (0..cols)
                    .map(|c| {
                        if r == 1 && c == 1 {
                            f64::NAN
                        } else {
                            0.01 * (r * cols + c) as f64
                        }
                    })
                    .collect()
            })
            .collect(),
        value_label: "relative change ‖B−A‖/‖A‖".into(),
        range: None,
        annotate: true,
    }
}

#[test]
fn heatmap_writes_the_asked_or_computed_size() {
    let dir = tmp_dir("heat");
    let path = dir.join("m.png");
    let map = heat(12, 6);
    heatmap(&path, &map, Some((640, 480))).unwrap();
    assert_eq!(png_size(&path), (640, 480));
    heatmap(&path, &map, None).unwrap();
    let auto = png_size(&path);
    assert_eq!(auto, heatmap_size(&map).unwrap());
    // More rows make a taller figure.
    let taller = heatmap_size(&heat(24, 6)).unwrap();
    assert_eq!(taller.0, auto.0);
    assert!(taller.1 > auto.1);
    // Long column labels (rotated), a fixed range, and no annotations.
    let mut runs = heat(4, 3);
    runs.col_labels = vec![
        "noise-0.05-seed-1".into(),
        "heads-zeroed-30pct".into(),
        "random-init".into(),
    ];
    runs.range = Some((0.0, 1.0));
    runs.annotate = false;
    heatmap(&path, &runs, None).unwrap();
    assert_eq!(png_size(&path), heatmap_size(&runs).unwrap());
    // One cell, constant data, and every value missing but with a range.
    let mut one = heat(1, 1);
    one.values = vec![vec![0.5]];
    heatmap(&path, &one, None).unwrap();
    one.values = vec![vec![f64::NAN]];
    one.range = Some((0.0, 1.0));
    heatmap(&path, &one, Some((300, 200))).unwrap();
    assert_eq!(png_size(&path), (300, 200));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn heatmap_rejects_bad_input() {
    let path = std::env::temp_dir().join("viz-never-heat.png");
    let ok = heat(3, 4);
    let mut empty = ok.clone();
    empty.values.clear();
    empty.row_labels.clear();
    assert!(matches!(
        heatmap(&path, &empty, None),
        Err(VizError::Empty(_))
    ));
    let mut rows = ok.clone();
    rows.row_labels.pop();
    assert!(matches!(
        heatmap(&path, &rows, None),
        Err(VizError::Invalid(_))
    ));
    let mut ragged = ok.clone();
    ragged.values[2].push(1.0);
    assert!(matches!(
        heatmap(&path, &ragged, None),
        Err(VizError::Invalid(_))
    ));
    let mut range = ok.clone();
    range.range = Some((1.0, 1.0));
    assert!(matches!(
        heatmap(&path, &range, None),
        Err(VizError::Invalid(_))
    ));
    let mut missing = ok.clone();
    missing.values = vec![vec![f64::NAN; 4]; 3];
    assert!(matches!(
        heatmap(&path, &missing, None),
        Err(VizError::Empty(_))
    ));
    assert!(matches!(
        heatmap(&path, &ok, Some((60, 40))),
        Err(VizError::Invalid(_))
    ));
    assert!(!path.exists());
}

#[test]
fn colour_map_ends_are_the_anchor_colours() {
    assert_eq!(viridis(0.0), VIRIDIS_ANCHORS[0]);
    assert_eq!(viridis(1.0), VIRIDIS_ANCHORS[VIRIDIS_ANCHORS.len() - 1]);
    assert_eq!(
        VIRIDIS_ANCHORS[0],
        plotters::style::RGBColor(0x44, 0x01, 0x54)
    );
    assert_eq!(
        VIRIDIS_ANCHORS[VIRIDIS_ANCHORS.len() - 1],
        plotters::style::RGBColor(0xfd, 0xe7, 0x25)
    );
}
