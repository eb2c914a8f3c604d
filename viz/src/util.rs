//! Shared helpers for the figure modules: error mapping, text, tick values and labels, and grid
//! layout.

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

/// Columns and rows of a grid holding `n` panels with at most `columns` per row.
pub(crate) fn grid_dims(n: usize, columns: usize) -> Result<(usize, usize), VizError> {
    if columns == 0 {
        return Err(invalid("columns must be at least 1"));
    }
    let cols = columns.min(n).max(1);
    Ok((cols, n.div_ceil(cols)))
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

/// Tick label for a value on an axis whose ticks are `step` apart: as many decimals as the step
/// needs and no more (step 1: "3", 0.25: "0.75", 0.05: "0.45"), scientific notation for very
/// large or small magnitudes.
pub(crate) fn fmt_tick(v: f64, step: f64) -> String {
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    let a = v.abs().max(step.abs());
    if a >= 1e5 || (a < 1e-3 && v != 0.0) {
        return format!("{v:.1e}");
    }
    let decimals = (0..10)
        .find(|&d| {
            let x = step.abs() * 10f64.powi(d);
            (x - x.round()).abs() < 1e-6 * x.max(1.0)
        })
        .unwrap_or(10) as usize;
    format!("{v:.decimals$}")
}

/// About `target` evenly spaced "nice" ticks (1, 2, 2.5 or 5 times a power of ten) covering
/// `lo..=hi`; returns the ticks inside the range and the step. With `integer`, only whole
/// steps of at least 1 (1, 2, 5, 10, 20, 25, ...), for axes that count (epochs, layers).
pub(crate) fn nice_ticks(lo: f64, hi: f64, target: usize, integer: bool) -> (Vec<f64>, f64) {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return (vec![lo], 1.0);
    }
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .filter(|s| !integer || (*s >= 1.0 && s.fract() == 0.0))
        .find(|s| *s >= raw)
        .unwrap_or(if integer {
            (10.0 * mag).max(1.0)
        } else {
            10.0 * mag
        });
    let first = (lo / step - 1e-9).ceil();
    let mut ticks = Vec::new();
    let mut k = first;
    while k * step <= hi + step * 1e-9 {
        ticks.push(k * step);
        k += 1.0;
    }
    (ticks, step)
}

/// A title without doubled parentheses: adjacent groups are merged, "bottom 50% (reinit)
/// (seed 1)" becomes "bottom 50% (reinit, seed 1)".
pub(crate) fn tidy_title(title: &str) -> String {
    let mut s = title.trim().to_string();
    while let Some(i) = s.find(") (") {
        s.replace_range(i..i + 3, ", ");
    }
    s
}

/// Superscript form of an integer exponent, e.g. -4 -> "⁻⁴".
pub(crate) fn superscript(n: i32) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let mut s = String::new();
    if n < 0 {
        s.push('⁻');
    }
    for c in n.unsigned_abs().to_string().chars() {
        s.push(DIGITS[c.to_digit(10).unwrap_or(0) as usize]);
    }
    s
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
    fn nice_ticks_cover_the_range() {
        let (t, step) = nice_ticks(0.0, 1.0, 5, false);
        assert_eq!(step, 0.2);
        assert_eq!(t.len(), 6);
        let (t, _) = nice_ticks(0.13, 0.87, 5, false);
        assert!(t.iter().all(|v| (0.13..=0.87).contains(v)));
    }

    #[test]
    fn integer_ticks_are_whole() {
        // Epochs 1..6 padded: ticks 1, 2, ..., 6, never 1.5.
        let (t, step) = nice_ticks(0.75, 6.25, 8, true);
        assert_eq!(step, 1.0);
        assert_eq!(t, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let (_, step) = nice_ticks(-5.0, 105.0, 5, true);
        assert_eq!(step, 25.0);
        // A one-epoch axis still gets a whole tick.
        let (t, _) = nice_ticks(0.5, 1.5, 5, true);
        assert_eq!(t, vec![1.0]);
    }

    #[test]
    fn tick_labels_have_the_decimals_the_step_needs() {
        assert_eq!(fmt_tick(3.0, 1.0), "3");
        assert_eq!(fmt_tick(50.0, 25.0), "50");
        assert_eq!(fmt_tick(0.75, 0.25), "0.75");
        assert_eq!(fmt_tick(0.5, 0.25), "0.50");
        assert_eq!(fmt_tick(0.45, 0.05), "0.45");
        assert_eq!(fmt_tick(0.6000000000000001, 0.2), "0.6");
        assert_eq!(fmt_tick(-1e-17, 0.2), "0.0");
    }

    #[test]
    fn doubled_parentheses_merge() {
        assert_eq!(
            tidy_title("bottom 50% (reinit) (seed 1)"),
            "bottom 50% (reinit, seed 1)"
        );
        assert_eq!(tidy_title("0% (clean)"), "0% (clean)");
        assert_eq!(tidy_title("a (b) (c) (d)"), "a (b, c, d)");
    }

    #[test]
    fn grid_dims_wrap() {
        assert_eq!(grid_dims(5, 3).unwrap(), (3, 2));
        assert_eq!(grid_dims(2, 4).unwrap(), (2, 1));
        assert!(grid_dims(2, 0).is_err());
    }
}
