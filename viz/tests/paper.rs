//! The paper-ready output, read back from the files: the PNG states its DPI, the SVG is XML
//! with its text as text, and the pixels show what the style promises (viridis cells, error
//! bars and dashes where they belong, histogram outlines without fills).

use plotters::style::RGBColor;
use std::path::{Path, PathBuf};
use viz::*;

fn tmp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("viz-paper-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A decoded 8-bit RGB PNG.
struct Image {
    w: usize,
    h: usize,
    rgb: Vec<u8>,
}

impl Image {
    fn read(path: &Path) -> Image {
        let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut rgb = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut rgb).unwrap();
        assert_eq!(frame.color_type, png::ColorType::Rgb);
        assert_eq!(frame.bit_depth, png::BitDepth::Eight);
        rgb.truncate(frame.buffer_size());
        Image {
            w: frame.width as usize,
            h: frame.height as usize,
            rgb,
        }
    }

    fn at(&self, x: usize, y: usize) -> RGBColor {
        let i = (y * self.w + x) * 3;
        RGBColor(self.rgb[i], self.rgb[i + 1], self.rgb[i + 2])
    }
}

fn grey(c: RGBColor) -> bool {
    c.0 == c.1 && c.1 == c.2
}

const WHITE: RGBColor = RGBColor(255, 255, 255);

fn f1_panel() -> Panel {
    Panel {
        title: "tiny-bert on tiny (reinit) (seed 1)".into(),
        x_label: "layers corrupted (%)".into(),
        y_label: "weighted F1 (%)".into(),
        series: vec![
            Series {
                name: "bottom".into(),
                points: vec![(0.0, 50.0), (50.0, 50.0), (100.0, 50.0)],
                y_err: vec![0.0, 40.0, 0.0],
                ..Default::default()
            },
            Series {
                name: "clean".into(),
                points: vec![(0.0, 30.0), (100.0, 30.0)],
                dashed: true,
                ..Default::default()
            },
        ],
        x_ticks: Ticks::Integer,
        ..Default::default()
    }
}

#[test]
fn png_states_its_dpi_and_svg_is_xml_with_the_title_as_text() {
    let dir = tmp_dir("formats");
    let path = dir.join("f1.png");
    line_panels(&path, &[f1_panel()], (COLUMN_WIDTH, 500)).unwrap();
    let (w, h) = line_panels_size(&[f1_panel()], (COLUMN_WIDTH, 500)).unwrap();

    let decoder = png::Decoder::new(std::fs::File::open(&path).unwrap());
    let reader = decoder.read_info().unwrap();
    let dims = reader.info().pixel_dims.expect("a pHYs chunk");
    assert_eq!(dims.unit, png::Unit::Meter);
    assert_eq!(dims.xppu, dims.yppu);
    assert_eq!((f64::from(dims.xppu) * 0.0254).round() as u32, DPI);
    assert_eq!(reader.info().width, COLUMN_WIDTH);

    let svg = std::fs::read_to_string(path.with_extension("svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    // Printed size in inches, the pixels kept as the view box.
    assert_eq!(root.attribute("width"), Some("3.3in"));
    assert_eq!(
        root.attribute("viewBox"),
        Some(format!("0 0 {w} {h}").as_str())
    );
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    // The title, without its doubled parentheses; labels and ticks are text too.
    assert!(
        texts.contains(&"tiny-bert on tiny (reinit, seed 1)"),
        "{texts:?}"
    );
    assert!(texts.contains(&"weighted F1 (%)"));
    assert!(texts.contains(&"100"));
    // No temporary files are left beside them.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["f1.png", "f1.svg"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn heatmap_cells_are_viridis_of_their_value() {
    let dir = tmp_dir("heat");
    let path = dir.join("h.png");
    let values = vec![vec![0.1, 0.9], vec![0.35, 0.6]];
    let map = Heatmap {
        title: "cells".into(),
        row_labels: vec!["layer 1".into(), "layer 2".into()],
        col_labels: vec!["q".into(), "k".into()],
        values: values.clone(),
        value_label: "value".into(),
        range: Some((0.0, 1.0)),
        annotate: false,
    };
    heatmap(&path, &map, None).unwrap();
    let img = Image::read(&path);
    // A cell is the rectangle of rows holding a run of its colour wider than the colour bar
    // (10 pt, 28 px).
    let centre = |colour: RGBColor| -> (usize, usize) {
        let mut rows = Vec::new();
        let mut xs = (0, 0);
        for y in 0..img.h {
            let mut run = 0;
            for x in 0..img.w {
                run = if img.at(x, y) == colour { run + 1 } else { 0 };
                if run > 34 {
                    rows.push(y);
                    xs = (x + 1 - run, x);
                }
            }
        }
        assert!(rows.len() > 25, "no cell of {colour:?}");
        rows.dedup();
        let y = (rows[0] + rows[rows.len() - 1]) / 2;
        let run_start = (0..=xs.1)
            .rev()
            .take_while(|&x| img.at(x, y) == colour)
            .last()
            .unwrap();
        ((run_start + xs.1) / 2, y)
    };
    let mut centres = Vec::new();
    for row in &values {
        for &v in row {
            let (x, y) = centre(viridis(v));
            assert_eq!(img.at(x, y), viridis(v), "cell {v}");
            centres.push((x, y));
        }
    }
    // Laid out as the matrix: (0, 0) left of (0, 1), above (1, 0).
    assert!(centres[0].0 < centres[1].0 && centres[0].1 == centres[1].1);
    assert!(centres[0].1 < centres[2].1 && centres[0].0 == centres[2].0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn error_bars_and_dashes_land_where_they_belong() {
    let dir = tmp_dir("lines");
    let path = dir.join("l.png");
    line_panels(&path, &[f1_panel()], (COLUMN_WIDTH, 500)).unwrap();
    let img = Image::read(&path);
    let blue = PALETTE[0];
    // The series is flat at 50: the row with the most blue pixels is its line.
    let count_row = |y: usize, c: RGBColor| (0..img.w).filter(|&x| img.at(x, y) == c).count();
    let line_y = (0..img.h).max_by_key(|&y| count_row(y, blue)).unwrap();
    // The error bar at 50% is the column with the most blue (its marker sits on it), centred
    // on the line (10..90 around 50), with caps wider than the bar.
    let blue_in =
        |x: usize| -> Vec<usize> { (0..img.h).filter(|&y| img.at(x, y) == blue).collect() };
    let bar_x = (0..img.w).max_by_key(|&x| blue_in(x).len()).unwrap();
    let column = blue_in(bar_x);
    let (bar_top, bar_bottom) = (column[0], column[column.len() - 1]);
    assert!(
        bar_bottom - bar_top > img.h / 2,
        "error bar {bar_top}..{bar_bottom}"
    );
    let middle = (bar_top + bar_bottom) / 2;
    assert!(middle.abs_diff(line_y) <= 3, "{middle} vs {line_y}");
    assert!(bar_x.abs_diff(img.w / 2) < img.w / 8, "bar at x {bar_x}");
    let cap = (0..img.w).filter(|&x| img.at(x, bar_top) == blue).count();
    assert!(cap >= 8, "cap {cap} px");
    // The reference line at 30 is dashed: along its row, runs of its grey alternate with gaps
    // of about the same length.
    let reference = RGBColor(80, 80, 80);
    let ref_y = (0..img.h).max_by_key(|&y| count_row(y, reference)).unwrap();
    assert!(
        ref_y > line_y,
        "the reference (30) is under the series (50)"
    );
    let mut runs = Vec::new();
    let mut gaps = Vec::new();
    let (mut on, mut len) = (false, 0);
    for x in 0..img.w {
        let here = img.at(x, ref_y) == reference;
        if here == on {
            len += 1;
            continue;
        }
        if len > 0 {
            if on { &mut runs } else { &mut gaps }.push(len);
        }
        (on, len) = (here, 1);
    }
    assert!(runs.len() >= 10, "dashes {runs:?}");
    let inner = &gaps[1..gaps.len().min(runs.len())];
    let median = |v: &[usize]| {
        let mut v = v.to_vec();
        v.sort();
        v[v.len() / 2]
    };
    let (dash, gap) = (median(&runs), median(inner));
    assert!(
        dash >= 4 && gap >= 4 && dash.abs_diff(gap) <= 2,
        "{dash} on, {gap} off"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn histograms_are_outlines_without_fill() {
    let dir = tmp_dir("hist");
    let path = dir.join("h.png");
    let edges = linear_edges(0.0, 10.0, 10);
    let panel = |counts: Vec<u64>, name: &str| Histogram {
        name: name.into(),
        edges: edges.clone(),
        counts,
    };
    let hist = HistPanel {
        title: "outlines".into(),
        x_label: "x".into(),
        series: vec![
            panel(vec![0, 0, 0, 5, 1000, 1000, 5, 0, 0, 0], "tall"),
            panel(vec![0, 2, 30, 30, 30, 30, 30, 30, 2, 0], "wide"),
        ],
        ..Default::default()
    };
    histogram_panels(&path, &[hist], 1, (COLUMN_WIDTH, 460)).unwrap();
    let img = Image::read(&path);
    // Only greys (text, axes, grid, background) and the series' colours; tinted pixels
    // occur only where an outline's edge is anti-aliased, never as an area (a fill).
    let series = |c: RGBColor| c == PALETTE[0] || c == PALETTE[1];
    for y in 2..img.h - 2 {
        for x in 2..img.w - 2 {
            let c = img.at(x, y);
            if grey(c) || series(c) {
                continue;
            }
            let near_outline =
                (y - 2..=y + 2).any(|v| (x - 2..=x + 2).any(|u| series(img.at(u, v))));
            assert!(near_outline, "{c:?} at ({x}, {y}) away from any outline");
        }
    }
    // Under the tall bars' top outline, inside the bars, the background shows (white, or the
    // light grey of a grid line).
    let mut checked = 0;
    for x in 0..img.w {
        let Some(top) = (0..img.h).find(|&y| img.at(x, y) == PALETTE[0]) else {
            continue;
        };
        let below = img.at(x, top + 12);
        if below == PALETTE[0] {
            continue; // a vertical edge of the outline
        }
        assert!(
            below == WHITE || grey(below),
            "{below:?} under ({x}, {top})"
        );
        checked += 1;
    }
    assert!(checked > 40, "{checked} columns");
    std::fs::remove_dir_all(&dir).unwrap();
}
