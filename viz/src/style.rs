//! The look every figure shares: sizes in points at [`DPI`], so text prints at the size it
//! states, and series told apart without colour (each has its own dash pattern and marker).

use crate::util::draw_err;
use crate::{VizError, DPI, PALETTE};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Pixels of `points` (1/72 in) at [`DPI`].
pub(crate) const fn pt(points: f64) -> f64 {
    points * DPI as f64 / 72.0
}

/// [`pt`] rounded to whole pixels.
pub(crate) const fn pt_px(points: f64) -> i32 {
    (pt(points) + 0.5) as i32
}

/// The plotters font size whose em is `points` at [`DPI`] (plotters sets an em of size / 1.24).
pub(crate) const fn font_pt(points: f64) -> u32 {
    (pt(points) * 1.24 + 0.5) as u32
}

/// Type sizes, strokes and spacing of one panel. Panels under about 1.3 in on their short side
/// scale everything down (to 60% at most), so that small test figures still lay out.
pub(crate) struct Look {
    pub title: u32,
    /// Axis descriptions.
    pub label: u32,
    pub tick: u32,
    pub legend: u32,
    /// Lines under a panel (scatter footers).
    pub note: u32,
    /// Series stroke width in pixels.
    pub line: f64,
    /// Marker radius in pixels.
    pub marker: i32,
    /// Outer padding and small gaps, pixels.
    pub pad: i32,
    pub gap: i32,
    pub tick_len: i32,
}

impl Look {
    pub fn for_panel(panel_size: (u32, u32)) -> Look {
        let short = f64::from(panel_size.0.min(panel_size.1));
        let s = (short / pt(94.0)).clamp(0.6, 1.0);
        let font = |p: f64| (f64::from(font_pt(p)) * s).round().max(1.0) as u32;
        let len = |p: f64| (pt(p) * s).round().max(1.0) as i32;
        Look {
            title: font(9.0),
            label: font(8.0),
            tick: font(7.0),
            legend: font(7.5),
            note: font(7.0),
            line: (pt(1.2) * s).max(1.0),
            marker: len(2.4),
            pad: len(5.0),
            gap: len(3.0),
            tick_len: len(2.5),
        }
    }
}

/// Light grey of the grid lines.
pub(crate) const GRID: RGBColor = RGBColor(225, 225, 225);
/// Dark grey of the axes and tick marks.
pub(crate) const AXIS: RGBColor = RGBColor(70, 70, 70);
/// Colour of reference lines (a clean score, a baseline): not one of the series colours.
pub(crate) const REFERENCE: RGBColor = RGBColor(80, 80, 80);

/// Dash patterns of series 0, 1, ...: on, off, on, ... lengths in line widths; empty is solid.
const DASHES: [&[f64]; 6] = [
    &[],
    &[4.0, 1.6],
    &[1.0, 1.6],
    &[4.0, 1.6, 1.0, 1.6],
    &[8.0, 2.5],
    &[4.0, 1.6, 1.0, 1.6, 1.0, 1.6],
];

/// Dash pattern of reference lines, in line widths: evenly dashed, unlike any series'.
pub(crate) const REFERENCE_DASH: &[f64] = &[2.5, 2.5];

/// Marker shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    Circle,
    Square,
    TriangleUp,
    Diamond,
    TriangleDown,
}

const MARKERS: [Marker; 5] = [
    Marker::Circle,
    Marker::Square,
    Marker::TriangleUp,
    Marker::Diamond,
    Marker::TriangleDown,
];

/// How one series is drawn.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeriesLook {
    pub colour: RGBColor,
    /// In line widths, see [`DASHES`].
    pub dash: &'static [f64],
    pub marker: Option<Marker>,
    /// Stroke width relative to the panel's line width.
    pub weight: f64,
}

impl SeriesLook {
    /// The `i`-th series: `PALETTE[i]`, its own dash pattern and marker, so that series stay
    /// apart in greyscale.
    pub fn nth(i: usize) -> SeriesLook {
        SeriesLook {
            colour: PALETTE[i % PALETTE.len()],
            dash: DASHES[i % DASHES.len()],
            marker: Some(MARKERS[i % MARKERS.len()]),
            weight: 1.0,
        }
    }

    /// The `i`-th series of a panel where series 0, 1, ... are told apart by line alone.
    pub fn outline(i: usize) -> SeriesLook {
        SeriesLook {
            marker: None,
            ..SeriesLook::nth(i)
        }
    }

    /// A reference line: dark grey, evenly dashed, thinner, no markers.
    pub fn reference() -> SeriesLook {
        SeriesLook {
            colour: REFERENCE,
            dash: REFERENCE_DASH,
            marker: None,
            weight: 0.8,
        }
    }

    /// The dash pattern in pixels for a line `width` pixels wide.
    pub fn dash_px(&self, width: f64) -> Vec<f64> {
        self.dash.iter().map(|d| d * width).collect()
    }
}

/// The drawn pieces of the polyline `points` (pixels) under a dash `pattern` (on, off, on, ...
/// lengths in pixels, continued across vertices so that corners stay joined); an empty pattern
/// gives the whole line.
pub(crate) fn dash_pieces(points: &[(f64, f64)], pattern: &[f64]) -> Vec<Vec<(f64, f64)>> {
    if points.len() < 2 || pattern.is_empty() || pattern.iter().sum::<f64>() <= 0.0 {
        return vec![points.to_vec()];
    }
    let mut pieces = Vec::new();
    let mut phase = 0;
    let mut left = pattern[0];
    let mut current = vec![points[0]];
    for w in points.windows(2) {
        let ((ax, ay), (bx, by)) = (w[0], w[1]);
        let len = (bx - ax).hypot(by - ay);
        let mut t = 0.0;
        while len - t > left {
            t += left;
            let p = (ax + (bx - ax) * t / len, ay + (by - ay) * t / len);
            if phase % 2 == 0 {
                current.push(p);
                pieces.push(std::mem::take(&mut current));
            } else {
                current = vec![p];
            }
            phase = (phase + 1) % pattern.len();
            left = pattern[phase];
        }
        left -= len - t;
        if phase % 2 == 0 {
            current.push((bx, by));
        }
    }
    if phase % 2 == 0 && current.len() > 1 {
        pieces.push(current);
    }
    pieces
}

fn round(p: (f64, f64)) -> (i32, i32) {
    (p.0.round() as i32, p.1.round() as i32)
}

/// Draws the polyline `points` (pixels of `area`) `width` pixels wide in `look`'s colour and
/// dash pattern.
pub(crate) fn draw_line<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    path: &Path,
    points: &[(f64, f64)],
    look: &SeriesLook,
    width: f64,
) -> Result<(), VizError> {
    let stroke = width.round().max(1.0) as u32;
    for piece in dash_pieces(points, &look.dash_px(width)) {
        let px: Vec<(i32, i32)> = piece.into_iter().map(round).collect();
        area.draw(&PathElement::new(px, look.colour.stroke_width(stroke)))
            .map_err(|e| draw_err(path, e))?;
    }
    Ok(())
}

/// Draws one `shape` centred at pixel `at`; `r` is the radius of the circle of equal visual
/// weight.
pub(crate) fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    path: &Path,
    at: (i32, i32),
    shape: Marker,
    r: i32,
    style: ShapeStyle,
) -> Result<(), VizError> {
    let (x, y) = at;
    let t = (f64::from(r) * 1.35).round() as i32;
    let res = match shape {
        Marker::Circle => area.draw(&Circle::new(at, r, style)),
        Marker::TriangleUp => area.draw(&Polygon::new(
            vec![(x, y - t), (x - t, y + t * 7 / 10), (x + t, y + t * 7 / 10)],
            style,
        )),
        Marker::TriangleDown => area.draw(&Polygon::new(
            vec![(x, y + t), (x - t, y - t * 7 / 10), (x + t, y - t * 7 / 10)],
            style,
        )),
        Marker::Square => {
            let q = (f64::from(r) * 0.9).round() as i32;
            area.draw(&Rectangle::new([(x - q, y - q), (x + q, y + q)], style))
        }
        Marker::Diamond => {
            let d = (f64::from(r) * 1.3).round() as i32;
            area.draw(&Polygon::new(
                vec![(x, y - d), (x + d, y), (x, y + d), (x - d, y)],
                style,
            ))
        }
    };
    res.map_err(|e| draw_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn length(piece: &[(f64, f64)]) -> f64 {
        piece
            .windows(2)
            .map(|w| (w[1].0 - w[0].0).hypot(w[1].1 - w[0].1))
            .sum()
    }

    #[test]
    fn dashes_follow_the_pattern_across_corners() {
        // 30 px right, then 30 px down; 4 on, 2 off.
        let line = [(0.0, 0.0), (30.0, 0.0), (30.0, 30.0)];
        let pieces = dash_pieces(&line, &[4.0, 2.0]);
        assert_eq!(pieces.len(), 10);
        assert!(pieces.iter().all(|p| (length(p) - 4.0).abs() < 1e-9));
        // The dash across the corner (24..28 along the line) keeps the corner point.
        assert!(pieces.iter().any(|p| p.contains(&(30.0, 0.0))));
        assert_eq!(dash_pieces(&line, &[]), vec![line.to_vec()]);
    }

    #[test]
    fn series_looks_differ_beyond_colour() {
        for i in 0..5 {
            for j in (i + 1)..5 {
                let (a, b) = (SeriesLook::nth(i), SeriesLook::nth(j));
                assert!(a.dash != b.dash && a.marker != b.marker, "{i} {j}");
            }
            assert!(SeriesLook::nth(i).dash != REFERENCE_DASH);
        }
    }

    #[test]
    fn type_is_set_in_points() {
        // 8 pt at 200 dpi is 22.2 px per em; plotters sizes are 1.24 em.
        assert_eq!(font_pt(8.0), 28);
        let big = Look::for_panel((2000, 2000));
        assert_eq!(big.label, font_pt(8.0));
        let small = Look::for_panel((100, 100));
        assert!(small.label < big.label);
    }
}
