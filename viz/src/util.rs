//! Shared helpers for the figure modules: error mapping, output checks, font sizing and
//! grid layout.

use crate::VizError;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// The font family every figure uses.
pub(crate) const FONT: &str = "sans-serif";

/// Maps any plotters error to `VizError::Draw` for `path`.
pub(crate) fn draw_err(path: &Path, e: impl std::fmt::Display) -> VizError {
    VizError::Draw {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> VizError {
    VizError::Invalid(message.into())
}

/// Rejects output paths the enabled plotters backends cannot write. Only the bitmap backend
/// is compiled in, so a `.svg` path is refused up front instead of failing after drawing.
pub(crate) fn check_output(path: &Path) -> Result<(), VizError> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if ext.as_deref() == Some("svg") {
        return Err(invalid(format!(
            "{}: SVG output is not available (plotters svg_backend is not enabled); use .png",
            path.display()
        )));
    }
    Ok(())
}

/// Columns and rows of a grid holding `n` panels with at most `columns` per row.
pub(crate) fn grid_dims(n: usize, columns: usize) -> Result<(usize, usize), VizError> {
    if columns == 0 {
        return Err(invalid("columns must be at least 1"));
    }
    let cols = columns.min(n).max(1);
    Ok((cols, n.div_ceil(cols)))
}

/// Font scale for a panel: 1.0 at 400 px on the short side, so text keeps its proportion to
/// the panel when the figure is resized to the page.
pub(crate) fn font_scale(panel_size: (u32, u32)) -> f64 {
    (f64::from(panel_size.0.min(panel_size.1)) / 400.0).clamp(0.6, 4.0)
}

pub(crate) fn px(size: f64, scale: f64) -> u32 {
    (size * scale).round().max(1.0) as u32
}

/// Width and height in pixels of `text` at `size` px (no drawing area needed, so layouts can
/// be computed before the image size is known).
pub(crate) fn text_size(text: &str, size: u32) -> (u32, u32) {
    if text.is_empty() {
        return (0, 0);
    }
    (FONT, size)
        .into_font()
        .box_size(text)
        .unwrap_or((text.chars().count() as u32 * size * 6 / 10, size))
}

/// The largest font size not above `size` (and not below `min`) at which `text` fits in
/// `max_width` pixels.
pub(crate) fn fit_font(text: &str, size: u32, min: u32, max_width: u32) -> u32 {
    let mut s = size.max(min);
    while s > min && text_size(text, s).0 > max_width {
        s -= 1;
    }
    s
}

/// Draws `text` with its anchor `(h, v)` at `at` (pixel coordinates of `area`).
pub(crate) fn draw_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    path: &Path,
    text: &str,
    size: u32,
    colour: &RGBColor,
    at: (i32, i32),
    anchor: (HPos, VPos),
) -> Result<(), VizError> {
    draw_text_turned(
        area,
        path,
        text,
        (size, colour),
        at,
        anchor,
        FontTransform::None,
    )
}

/// Like `draw_text`, rotated a quarter turn counter-clockwise (reads bottom to top). The
/// anchor refers to the unrotated text: `HPos::Right` puts the end of the text at `at`.
pub(crate) fn draw_text_vertical<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    path: &Path,
    text: &str,
    size: u32,
    colour: &RGBColor,
    at: (i32, i32),
    anchor: (HPos, VPos),
) -> Result<(), VizError> {
    draw_text_turned(
        area,
        path,
        text,
        (size, colour),
        at,
        anchor,
        FontTransform::Rotate270,
    )
}

fn draw_text_turned<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    path: &Path,
    text: &str,
    (size, colour): (u32, &RGBColor),
    at: (i32, i32),
    anchor: (HPos, VPos),
    turn: FontTransform,
) -> Result<(), VizError> {
    if text.is_empty() {
        return Ok(());
    }
    let style = TextStyle::from((FONT, size).into_font())
        .color(colour)
        .transform(turn)
        .pos(Pos::new(anchor.0, anchor.1));
    area.draw_text(text, &style, at)
        .map_err(|e| draw_err(path, e))
}

/// Formats `v` with three significant digits, two below 0.001, and in scientific notation
/// below 0.0001 or from 10000 up, e.g. 0.41 -> "0.410", 12.34 -> "12.3", 0.00054 ->
/// "0.00054", 0.000012 -> "1.2e-5".
pub(crate) fn fmt_sig3(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-4..1e4).contains(&a) {
        return format!("{v:.1e}");
    }
    let mag = a.log10().floor() as i32;
    let digits = if a < 1e-3 { 1 } else { 2 };
    let decimals = (digits - mag).max(0) as usize;
    format!("{v:.decimals$}")
}

/// Tick label for a value on an axis whose ticks are `step` apart.
pub(crate) fn fmt_tick(v: f64, step: f64) -> String {
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    let a = v.abs().max(step.abs());
    if a >= 1e5 || (a < 1e-3 && v != 0.0) {
        return format!("{v:.1e}");
    }
    let decimals = (-step.abs().log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// Axis tick label without float noise: "0" for values within `span * 1e-9` of zero,
/// otherwise at most 6 decimals with trailing zeros trimmed (scientific notation for very
/// large or small magnitudes), e.g. -0.2 -> "-0.2", 0.15 -> "0.15".
pub(crate) fn fmt_axis(v: f64, span: f64) -> String {
    if v.abs() <= span.abs() * 1e-9 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-4..1e6).contains(&a) {
        return format!("{v:.1e}");
    }
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// About `target` evenly spaced "nice" ticks (1, 2, 2.5 or 5 times a power of ten) covering
/// `lo..=hi`; returns the ticks inside the range and the step.
pub(crate) fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return (vec![lo], 1.0);
    }
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil();
    let mut ticks = Vec::new();
    let mut k = first;
    while k * step <= hi + step * 1e-9 {
        ticks.push(k * step);
        k += 1.0;
    }
    (ticks, step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_significant_digits() {
        assert_eq!(fmt_sig3(0.41), "0.410");
        assert_eq!(fmt_sig3(12.34), "12.3");
        assert_eq!(fmt_sig3(0.9876), "0.988");
        assert_eq!(fmt_sig3(0.0), "0");
        assert_eq!(fmt_sig3(-0.05), "-0.0500");
        assert_eq!(fmt_sig3(0.00054), "0.00054");
        assert_eq!(fmt_sig3(0.000012), "1.2e-5");
    }

    #[test]
    fn axis_labels_lose_float_noise() {
        assert_eq!(fmt_axis(-1e-17, 0.4), "0");
        assert_eq!(fmt_axis(-0.2, 0.4), "-0.2");
        assert_eq!(fmt_axis(0.15000000000000002, 0.4), "0.15");
        assert_eq!(fmt_axis(1000.0, 2000.0), "1000");
    }

    #[test]
    fn nice_ticks_cover_the_range() {
        let (t, step) = nice_ticks(0.0, 1.0, 5);
        assert_eq!(step, 0.2);
        assert_eq!(t.len(), 6);
        let (t, _) = nice_ticks(0.13, 0.87, 5);
        assert!(t.iter().all(|v| (0.13..=0.87).contains(v)));
    }

    #[test]
    fn grid_dims_wrap() {
        assert_eq!(grid_dims(5, 3).unwrap(), (3, 2));
        assert_eq!(grid_dims(2, 4).unwrap(), (2, 1));
        assert!(grid_dims(2, 0).is_err());
    }
}
