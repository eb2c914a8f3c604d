//! Annotated heatmaps with a colour bar (e.g. layers x modules of relative weight change,
//! layers x runs of CKA), coloured with viridis.

use crate::output::{write_figure, Figure};
use crate::style::{font_pt, pt_px};
use crate::util::{
    draw_err, draw_text, draw_text_vertical, fit_font, fmt_sig3, fmt_tick, invalid, nice_ticks,
    text_size, tidy_title,
};
use crate::VizError;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use std::path::Path;

/// A matrix of values drawn as coloured cells.
#[derive(Debug, Clone, Default)]
pub struct Heatmap {
    pub title: String,
    /// One per row, top to bottom, e.g. "layer 1", "layer 2", ...
    pub row_labels: Vec<String>,
    /// One per column, left to right, e.g. "query", "key", ... or run names.
    pub col_labels: Vec<String>,
    /// `values[row][col]`; NaN marks a missing cell (drawn grey and hatched).
    pub values: Vec<Vec<f64>>,
    /// Colour bar caption, e.g. "relative change ‖B−A‖/‖A‖".
    pub value_label: String,
    /// Colour scale limits (values outside are clamped to the end colours); `None` uses the
    /// finite data's min..max.
    pub range: Option<(f64, f64)>,
    /// Print each value in its cell (3 significant digits, 2 below 0.001, scientific
    /// notation below 0.0001), black or white for contrast, one font size for all cells.
    /// When the widest value does not fit a cell at 9 px or more, no cell is annotated.
    pub annotate: bool,
}

/// viridis (matplotlib's default colour map: perceptually uniform, readable with colour
/// vision deficiencies and in greyscale) sampled at t = 0, 1/9, ..., 1.
pub const VIRIDIS_ANCHORS: [RGBColor; 10] = [
    RGBColor(0x44, 0x01, 0x54),
    RGBColor(0x48, 0x28, 0x78),
    RGBColor(0x3e, 0x4a, 0x89),
    RGBColor(0x31, 0x68, 0x8e),
    RGBColor(0x26, 0x82, 0x8e),
    RGBColor(0x1f, 0x9e, 0x89),
    RGBColor(0x35, 0xb7, 0x79),
    RGBColor(0x6e, 0xce, 0x58),
    RGBColor(0xb5, 0xde, 0x2b),
    RGBColor(0xfd, 0xe7, 0x25),
];

/// viridis at `t` in 0..=1 (clamped; NaN gives the low end), linearly interpolated between
/// [`VIRIDIS_ANCHORS`]: `viridis(0.0)` and `viridis(1.0)` are exactly the first and last
/// anchors.
pub fn viridis(t: f64) -> RGBColor {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let n = VIRIDIS_ANCHORS.len() - 1;
    let x = t * n as f64;
    let i = (x.floor() as usize).min(n - 1);
    let f = x - i as f64;
    let (a, b) = (VIRIDIS_ANCHORS[i], VIRIDIS_ANCHORS[i + 1]);
    let mix = |p: u8, q: u8| (f64::from(p) + (f64::from(q) - f64::from(p)) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Relative luminance (WCAG) of an sRGB colour, 0 (black) ..= 1 (white).
fn luminance(c: RGBColor) -> f64 {
    let lin = |v: u8| {
        let v = f64::from(v) / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(c.0) + 0.7152 * lin(c.1) + 0.0722 * lin(c.2)
}

/// Black or white, whichever contrasts more with `background`.
fn text_colour_on(background: RGBColor) -> RGBColor {
    // Contrast ratios against black and white are equal at luminance ~0.179.
    if luminance(background) > 0.179 {
        BLACK
    } else {
        WHITE
    }
}

const MISSING: RGBColor = RGBColor(215, 215, 215);
const MISSING_HATCH: RGBColor = RGBColor(150, 150, 150);

// Sizes in points at the figure's DPI.
const MARGIN: i32 = pt_px(6.0);
const TITLE_FONT: u32 = font_pt(9.0);
const LABEL_FONT: u32 = font_pt(7.5);
const TICK_FONT: u32 = font_pt(7.0);
const CAPTION_FONT: u32 = font_pt(7.5);
const ANNOT_FONT: u32 = font_pt(6.5);
/// Annotations that would need a smaller font than this are left out.
const MIN_ANNOT_FONT: u32 = font_pt(4.0);
const BAR_W: i32 = pt_px(10.0);
const BAR_GAP: i32 = pt_px(10.0);
const TICK_LEN: i32 = pt_px(2.5);
/// Row heights with and without annotations.
const CELL_H: i32 = pt_px(16.0);
const CELL_H_PLAIN: i32 = pt_px(13.5);

/// Pixel layout of a heatmap figure.
struct Layout {
    width: u32,
    height: u32,
    top: i32,
    left: i32,
    cell_w: i32,
    cell_h: i32,
    row_font: u32,
    col_font: u32,
    rotate_cols: bool,
    bar_x: i32,
    bar_h: i32,
    caption_x: i32,
    caption_font: u32,
}

fn validate(map: &Heatmap) -> Result<(f64, f64), VizError> {
    let rows = map.row_labels.len();
    let cols = map.col_labels.len();
    if rows == 0 || cols == 0 || map.values.is_empty() {
        return Err(VizError::Empty(format!(
            "heatmap {:?} has no rows or no columns",
            map.title
        )));
    }
    if map.values.len() != rows {
        return Err(invalid(format!(
            "heatmap {:?}: {} rows of values but {} row labels",
            map.title,
            map.values.len(),
            rows
        )));
    }
    if let Some((i, r)) = map.values.iter().enumerate().find(|(_, r)| r.len() != cols) {
        return Err(invalid(format!(
            "heatmap {:?}: row {i} has {} values but there are {cols} column labels",
            map.title,
            r.len()
        )));
    }
    let (lo, hi) = match map.range {
        Some((lo, hi)) => {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(invalid(format!(
                    "heatmap {:?}: colour range {lo}..{hi} must be finite and ascending",
                    map.title
                )));
            }
            (lo, hi)
        }
        None => {
            let finite = map.values.iter().flatten().filter(|v| v.is_finite());
            let lo = finite.clone().fold(f64::INFINITY, |a, &b| a.min(b));
            let hi = finite.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            if lo > hi {
                return Err(VizError::Empty(format!(
                    "heatmap {:?}: every value is missing and no range was given",
                    map.title
                )));
            }
            if lo == hi {
                let d = (lo.abs() * 0.1).max(0.5);
                (lo - d, hi + d)
            } else {
                (lo, hi)
            }
        }
    };
    Ok((lo, hi))
}

fn max_text_w<'a>(texts: impl IntoIterator<Item = &'a String>, font: u32) -> i32 {
    texts
        .into_iter()
        .map(|t| text_size(t, font).0 as i32)
        .max()
        .unwrap_or(0)
}

fn plan(map: &Heatmap, range: (f64, f64), size: Option<(u32, u32)>) -> Result<Layout, VizError> {
    let rows = map.row_labels.len() as i32;
    let cols = map.col_labels.len() as i32;
    let any_missing = map.values.iter().flatten().any(|v| v.is_nan());
    let title_h = if map.title.is_empty() {
        MARGIN
    } else {
        (TITLE_FONT * 2) as i32
    };
    let row_label_w = max_text_w(&map.row_labels, LABEL_FONT);
    let col_label_w = max_text_w(&map.col_labels, LABEL_FONT);
    let label_h = text_size("Ag", LABEL_FONT).1 as i32;

    // Colour bar column: gap, bar, ticks, tick labels, caption, margin.
    let tick_labels: Vec<String> = (2..=6)
        .flat_map(|n| {
            let (t, step) = nice_ticks(range.0, range.1, n, false);
            t.into_iter().map(move |v| fmt_tick(v, step))
        })
        .collect();
    let tick_w = max_text_w(&tick_labels, TICK_FONT);
    let caption_h = text_size("Ag", CAPTION_FONT).1 as i32;
    let missing_w = if any_missing {
        BAR_W + 6 + text_size("missing", TICK_FONT).0 as i32
    } else {
        0
    };
    let bar_col_w = (BAR_W + TICK_LEN + 4 + tick_w + 12 + caption_h).max(missing_w) + MARGIN;
    let missing_h = if any_missing { 38 } else { 0 };
    let caption_w = text_size(&map.value_label, CAPTION_FONT).0 as i32;

    let (cell_w, cell_h, rotate_cols, col_label_h, width, height, bar_h);
    let row_font;
    let col_font;
    match size {
        None => {
            let annot_w = if map.annotate {
                let widest = map
                    .values
                    .iter()
                    .flatten()
                    .map(|&v| text_size(&fmt_sig3(v), ANNOT_FONT).0 as i32)
                    .max()
                    .unwrap_or(0);
                (widest + 16).max(60)
            } else {
                40
            };
            // Widen cells (up to 120 px) to keep column labels horizontal, else rotate them.
            let fits = col_label_w + 12;
            cell_w = if fits <= 120 {
                annot_w.max(fits)
            } else {
                annot_w
            };
            cell_h = if map.annotate { CELL_H } else { CELL_H_PLAIN };
            rotate_cols = col_label_w + 8 > cell_w;
            col_label_h = if rotate_cols {
                col_label_w + 14
            } else {
                label_h + 16
            };
            row_font = LABEL_FONT;
            col_font = LABEL_FONT;
            let left = MARGIN + row_label_w + 10;
            let grid_h = rows * cell_h;
            let bar_min = (caption_w + 24).clamp(160, 420);
            bar_h = grid_h.max(bar_min);
            let w = left + cols * cell_w + BAR_GAP + bar_col_w;
            let title_w = text_size(&tidy_title(&map.title), TITLE_FONT).0 as i32 + 2 * MARGIN;
            width = w.max(title_w);
            height = title_h
                + (grid_h + col_label_h).max(bar_h + TICK_FONT as i32 / 2 + missing_h)
                + MARGIN;
        }
        Some((w, h)) => {
            let (w, h) = (w as i32, h as i32);
            let left = MARGIN + row_label_w + 10;
            cell_w = (w - left - BAR_GAP - bar_col_w) / cols;
            if cell_w < 4 {
                return Err(invalid(format!(
                    "heatmap {:?}: width {w} px leaves {cell_w} px per column",
                    map.title
                )));
            }
            rotate_cols = col_label_w + 8 > cell_w;
            col_font = if rotate_cols {
                // As tall as the column allows, and the labels at most 30% of the height.
                let longest = map
                    .col_labels
                    .iter()
                    .max_by_key(|t| text_size(t, LABEL_FONT).0)
                    .map(String::as_str)
                    .unwrap_or("");
                let cap = ((h - title_h) * 3 / 10 - 14).max(1) as u32;
                LABEL_FONT
                    .min((cell_w as u32 * 8 / 10).max(8))
                    .min(fit_font(longest, LABEL_FONT, 8, cap))
            } else {
                LABEL_FONT
            };
            let col_label_w = max_text_w(&map.col_labels, col_font);
            col_label_h = if rotate_cols {
                col_label_w + 14
            } else {
                label_h + 16
            };
            cell_h = (h - title_h - col_label_h - MARGIN) / rows;
            if cell_h < 4 {
                return Err(invalid(format!(
                    "heatmap {:?}: height {h} px leaves {cell_h} px per row",
                    map.title
                )));
            }
            row_font = LABEL_FONT.min((cell_h as u32 * 9 / 10).max(8));
            bar_h = (rows * cell_h - missing_h).max(cell_h);
            width = w;
            height = h;
        }
    }
    let left = MARGIN + max_text_w(&map.row_labels, row_font) + 10;
    let bar_x = left + cols * cell_w + BAR_GAP;
    let caption_x = bar_x + BAR_W + TICK_LEN + 4 + tick_w + 12 + caption_h / 2;
    let caption_font = fit_font(&map.value_label, CAPTION_FONT, 9, bar_h.max(1) as u32);
    Ok(Layout {
        width: width as u32,
        height: height as u32,
        top: title_h,
        left,
        cell_w,
        cell_h,
        row_font,
        col_font,
        rotate_cols,
        bar_x,
        bar_h,
        caption_x,
        caption_font,
    })
}

/// Pixel size `heatmap(path, map, None)` picks for `map`: about 40-120 px per column (wide
/// enough for the annotations and, when possible, horizontal column labels) and 0.19-0.22 in
/// per row, plus room for the labels, the title and the colour bar.
pub fn heatmap_size(map: &Heatmap) -> Result<(u32, u32), VizError> {
    let range = validate(map)?;
    let l = plan(map, range, None)?;
    Ok((l.width, l.height))
}

/// Draws 45-degree hatching over the rectangle `(x0, y0)..(x1, y1)`.
fn hatch<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    path: &Path,
    (x0, y0): (i32, i32),
    (x1, y1): (i32, i32),
    spacing: i32,
) -> Result<(), VizError> {
    let (w, h) = (x1 - x0, y1 - y0);
    let mut d = -h;
    while d < w {
        // Points (x0 + d + t, y1 - t) for t in 0..=h, kept where x lies in x0..=x1.
        let t0 = (-d).max(0);
        let t1 = h.min(w - d);
        if t0 < t1 {
            area.draw(&PathElement::new(
                vec![(x0 + d + t0, y1 - t0), (x0 + d + t1, y1 - t1)],
                MISSING_HATCH.stroke_width(1),
            ))
            .map_err(|e| draw_err(path, e))?;
        }
        d += spacing;
    }
    Ok(())
}

/// One heatmap of `map.values` with row labels on the left, column labels underneath
/// (rotated to read upwards when wider than a cell), and a viridis colour bar captioned
/// `map.value_label` on the right.
///
/// `size` fixes the image size in pixels (cells shrink or grow to fit; an error if fewer than
/// 4 px per cell remain); `None` sizes it from the number of rows and columns (see
/// [`heatmap_size`]). Missing values (NaN) are drawn as grey hatched cells, with a
/// "missing" key under the colour bar; values outside `range` take the end colours.
///
/// Errors: no rows or columns, `values` not `row_labels.len()` rows of `col_labels.len()`
/// values, a `range` that is not finite and ascending, or every value missing with no
/// `range`.
pub fn heatmap(path: &Path, map: &Heatmap, size: Option<(u32, u32)>) -> Result<(), VizError> {
    let range = validate(map)?;
    let layout = plan(map, range, size)?;
    let figure = HeatFigure { map, range, layout };
    write_figure(path, (figure.layout.width, figure.layout.height), &figure)
}

struct HeatFigure<'a> {
    map: &'a Heatmap,
    range: (f64, f64),
    layout: Layout,
}

impl Figure for HeatFigure<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        path: &Path,
    ) -> Result<(), VizError> {
        draw(root, path, self.map, self.range, &self.layout)
    }
}

fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    path: &Path,
    map: &Heatmap,
    (lo, hi): (f64, f64),
    l: &Layout,
) -> Result<(), VizError> {
    let err = |e: &dyn std::fmt::Display| draw_err(path, e);
    let colour_of = |v: f64| viridis((v - lo) / (hi - lo));

    let title = tidy_title(&map.title);
    if !title.is_empty() {
        let title_font = fit_font(
            &title,
            TITLE_FONT,
            10,
            l.width.saturating_sub(2 * MARGIN as u32),
        );
        draw_text(
            area,
            path,
            &title,
            title_font,
            &BLACK,
            (l.width as i32 / 2, l.top / 2 + 2),
            (HPos::Center, VPos::Center),
        )?;
    }

    // One annotation size for every cell, or none when the widest value does not fit.
    let annot_font = if map.annotate {
        let widest = map
            .values
            .iter()
            .flatten()
            .filter(|v| !v.is_nan())
            .map(|&v| fmt_sig3(v))
            .max_by_key(|t| text_size(t, ANNOT_FONT).0)
            .unwrap_or_default();
        let max_font = ANNOT_FONT.min(l.cell_h as u32 * 6 / 10);
        let font = fit_font(
            &widest,
            max_font,
            MIN_ANNOT_FONT,
            (l.cell_w - 6).max(1) as u32,
        );
        let fits = text_size(&widest, font).0 as i32 <= l.cell_w - 4;
        (font >= MIN_ANNOT_FONT && fits).then_some(font)
    } else {
        None
    };

    // Cells, one pixel apart.
    for (r, row) in map.values.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            let x0 = l.left + c as i32 * l.cell_w;
            let y0 = l.top + r as i32 * l.cell_h;
            let (x1, y1) = (x0 + l.cell_w - 1, y0 + l.cell_h - 1);
            if v.is_nan() {
                area.draw(&Rectangle::new([(x0, y0), (x1, y1)], MISSING.filled()))
                    .map_err(|e| err(&e))?;
                hatch(area, path, (x0, y0), (x1 - 1, y1 - 1), 7)?;
                continue;
            }
            let fill = colour_of(v);
            area.draw(&Rectangle::new([(x0, y0), (x1, y1)], fill.filled()))
                .map_err(|e| err(&e))?;
            if let Some(font) = annot_font {
                draw_text(
                    area,
                    path,
                    &fmt_sig3(v),
                    font,
                    &text_colour_on(fill),
                    (x0 + l.cell_w / 2, y0 + l.cell_h / 2),
                    (HPos::Center, VPos::Center),
                )?;
            }
        }
    }

    // Row labels, right-aligned against the grid.
    for (r, label) in map.row_labels.iter().enumerate() {
        draw_text(
            area,
            path,
            label,
            l.row_font,
            &BLACK,
            (l.left - 8, l.top + r as i32 * l.cell_h + l.cell_h / 2),
            (HPos::Right, VPos::Center),
        )?;
    }
    // Column labels under the grid.
    let grid_bottom = l.top + map.row_labels.len() as i32 * l.cell_h;
    for (c, label) in map.col_labels.iter().enumerate() {
        let x = l.left + c as i32 * l.cell_w + l.cell_w / 2;
        if l.rotate_cols {
            draw_text_vertical(
                area,
                path,
                label,
                l.col_font,
                &BLACK,
                (x, grid_bottom + 8),
                (HPos::Right, VPos::Center),
            )?;
        } else {
            draw_text(
                area,
                path,
                label,
                l.col_font,
                &BLACK,
                (x, grid_bottom + 8),
                (HPos::Center, VPos::Top),
            )?;
        }
    }

    // Colour bar: high values at the top. Each band overlaps the next by a pixel, so that an
    // SVG viewer's anti-aliasing leaves no seams between them.
    let (bx, by, bh) = (l.bar_x, l.top, l.bar_h);
    for y in 0..bh {
        let t = 1.0 - f64::from(y) / f64::from((bh - 1).max(1));
        area.draw(&Rectangle::new(
            [(bx, by + y), (bx + BAR_W, (by + y + 2).min(by + bh))],
            viridis(t).filled(),
        ))
        .map_err(|e| err(&e))?;
    }
    area.draw(&Rectangle::new(
        [(bx, by), (bx + BAR_W, by + bh)],
        RGBColor(60, 60, 60).stroke_width(1),
    ))
    .map_err(|e| err(&e))?;
    let (ticks, step) = nice_ticks(lo, hi, (bh / 60).clamp(2, 6) as usize, false);
    for v in ticks {
        let y = by + ((1.0 - (v - lo) / (hi - lo)) * f64::from(bh)).round() as i32;
        area.draw(&PathElement::new(
            vec![(bx + BAR_W, y), (bx + BAR_W + TICK_LEN, y)],
            RGBColor(60, 60, 60).stroke_width(1),
        ))
        .map_err(|e| err(&e))?;
        draw_text(
            area,
            path,
            &fmt_tick(v, step),
            TICK_FONT,
            &BLACK,
            (bx + BAR_W + TICK_LEN + 4, y),
            (HPos::Left, VPos::Center),
        )?;
    }
    draw_text_vertical(
        area,
        path,
        &map.value_label,
        l.caption_font,
        &BLACK,
        (l.caption_x, by + bh / 2),
        (HPos::Center, VPos::Center),
    )?;
    if map.values.iter().flatten().any(|v| v.is_nan()) {
        let y0 = by + bh + TICK_FONT as i32 / 2 + 10;
        let (x1, y1) = (bx + BAR_W, y0 + 18);
        area.draw(&Rectangle::new([(bx, y0), (x1, y1)], MISSING.filled()))
            .map_err(|e| err(&e))?;
        hatch(area, path, (bx, y0), (x1, y1), 7)?;
        draw_text(
            area,
            path,
            "missing",
            TICK_FONT,
            &BLACK,
            (x1 + 6, (y0 + y1) / 2),
            (HPos::Left, VPos::Center),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_ends_are_the_anchors() {
        assert_eq!(viridis(0.0), VIRIDIS_ANCHORS[0]);
        assert_eq!(viridis(1.0), VIRIDIS_ANCHORS[9]);
        assert_eq!(viridis(-3.0), VIRIDIS_ANCHORS[0]);
        assert_eq!(viridis(7.0), VIRIDIS_ANCHORS[9]);
        for (i, a) in VIRIDIS_ANCHORS.iter().enumerate() {
            assert_eq!(viridis(i as f64 / 9.0), *a);
        }
    }

    #[test]
    fn viridis_gets_lighter() {
        let l: Vec<f64> = (0..=20)
            .map(|i| luminance(viridis(i as f64 / 20.0)))
            .collect();
        assert!(l.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn contrast_text() {
        assert_eq!(text_colour_on(VIRIDIS_ANCHORS[0]), WHITE);
        assert_eq!(text_colour_on(VIRIDIS_ANCHORS[9]), BLACK);
    }
}
