//! Cartesian panels drawn by hand: axes with linear, whole-number or log ticks, the plot frame
//! laid out around its tick labels and descriptions, a light grid, and the mapping from data
//! to pixels.

use crate::style::{Look, AXIS, GRID};
use crate::util::{
    draw_err, draw_text, draw_text_vertical, fit_font, fmt_tick, nice_ticks, superscript,
    text_size, tidy_title,
};
use crate::VizError;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use std::path::Path;

/// Tick marks of an axis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Ticks {
    /// "Nice" steps (1, 2, 2.5 or 5 times a power of ten).
    #[default]
    Auto,
    /// Whole numbers only, labelled without decimals: for axes that count (epochs, layers,
    /// percent of layers).
    Integer,
}

/// One axis: its range, scale and labelled ticks.
#[derive(Debug, Clone)]
pub(crate) struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
    pub ticks: Vec<(f64, String)>,
}

impl Axis {
    /// A linear axis over `lo..hi` with about `target` ticks.
    pub fn linear(lo: f64, hi: f64, target: usize, ticks: Ticks) -> Axis {
        let (values, step) = nice_ticks(lo, hi, target, ticks == Ticks::Integer);
        Axis {
            lo,
            hi,
            log: false,
            ticks: values.into_iter().map(|v| (v, fmt_tick(v, step))).collect(),
        }
    }

    /// A linear axis over `lo..hi` with about one tick per `spacing` pixels of its `length`
    /// (at least two where the step allows), and, when `font` is given, no fewer pixels
    /// between ticks than their widest label needs.
    pub fn fitted(
        lo: f64,
        hi: f64,
        length: i32,
        spacing: i32,
        ticks: Ticks,
        font: Option<u32>,
    ) -> Axis {
        let want = (length / spacing.max(1)).max(2) as usize;
        let fits = |axis: &Axis| {
            font.is_none_or(|f| {
                let gap = length / axis.ticks.len().max(1) as i32;
                axis.widest_label(f) + f as i32 / 2 <= gap
            })
        };
        // The most ticks up to `want` that fit; more targets than `want` only while a step
        // that coarse leaves fewer than two ticks.
        let mut best = Axis::linear(lo, hi, 1, ticks);
        for target in 1..=want.max(2) * 2 {
            let axis = Axis::linear(lo, hi, target, ticks);
            let n = axis.ticks.len();
            let better = n > best.ticks.len() && (n <= want || best.ticks.len() < 2);
            if better && fits(&axis) {
                best = axis;
            }
        }
        best
    }

    /// A log10 axis over `lo..hi` (both > 0): ticks at the powers of ten inside, labelled
    /// 10⁰, 10¹, ... alike on every panel (every other one past six decades); under three of them, at 2 and 5 times the powers of
    /// ten too, all labelled as plain numbers.
    pub fn log(lo: f64, hi: f64) -> Axis {
        let (e0, e1) = (lo.log10().ceil() as i32, hi.log10().floor() as i32);
        // Beyond six decades the labels of a narrow panel would touch: every decade keeps its
        // tick and grid line, every other one (counted down from the top) its label.
        let every = if e1 - e0 >= 6 { 2 } else { 1 };
        let mut ticks: Vec<(f64, String)> = (e0..=e1)
            .map(|e| {
                let label = if (e1 - e) % every == 0 {
                    format!("10{}", superscript(e))
                } else {
                    String::new()
                };
                (10f64.powi(e), label)
            })
            .collect();
        if ticks.len() < 3 {
            ticks.clear();
            let (f0, f1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
            for e in f0..=f1 {
                for m in [1.0, 2.0, 5.0] {
                    let v = m * 10f64.powi(e);
                    if v >= lo && v <= hi {
                        ticks.push((v, fmt_tick(v, 10f64.powi(e))));
                    }
                }
            }
        }
        Axis {
            lo,
            hi,
            log: true,
            ticks,
        }
    }

    /// Where `v` lies along the axis, 0 at `lo` and 1 at `hi`.
    pub fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    fn widest_label(&self, font: u32) -> i32 {
        self.ticks
            .iter()
            .map(|(_, t)| text_size(t, font).0 as i32)
            .max()
            .unwrap_or(0)
    }
}

/// The plot rectangle of a panel, in the panel's pixels (`top` < `bottom`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    pub left: i32,
    pub top: i32,
    pub right: i32,
    pub bottom: i32,
}

impl Frame {
    /// Pixel position of the data point `(x, y)`.
    pub fn at(&self, x_axis: &Axis, y_axis: &Axis, (x, y): (f64, f64)) -> (f64, f64) {
        (
            f64::from(self.left) + x_axis.frac(x) * f64::from(self.right - self.left),
            f64::from(self.bottom) - y_axis.frac(y) * f64::from(self.bottom - self.top),
        )
    }
}

/// Text of a panel's frame.
pub(crate) struct Captions<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
}

/// The vertical extent of the frame in a panel `height` pixels tall: below the title, above
/// the x tick labels, the x description and `below` pixels kept free (a legend).
pub(crate) fn frame_rows(height: u32, title: &str, below: i32, look: &Look) -> (i32, i32) {
    let line = |font: u32| (f64::from(font) * 0.85).round() as i32;
    let top = if title.is_empty() {
        look.pad + look.tick as i32 / 2
    } else {
        look.pad + line(look.title) + look.gap * 2
    };
    let bottom = height as i32
        - below
        - look.pad
        - line(look.label)
        - look.gap
        - line(look.tick)
        - look.tick_len
        - look.gap;
    (top, bottom)
}

/// The frame of a panel `width` pixels wide, given its rows and y axis: room on the left for
/// the y tick labels and the rotated description, on the right for half the last x label.
pub(crate) fn frame_in(width: u32, (top, bottom): (i32, i32), y_axis: &Axis, look: &Look) -> Frame {
    let line = (f64::from(look.label) * 0.85).round() as i32;
    let left = look.pad + line + look.gap * 2 + y_axis.widest_label(look.tick) + look.tick_len;
    let right = width as i32 - look.pad - (look.tick as i32 * 6 / 5);
    Frame {
        left,
        top,
        right: right.max(left + 10),
        bottom: bottom.max(top + 10),
    }
}

/// Draws the title, the grid at every tick, the left and bottom axes with their ticks and
/// labels, and both descriptions.
pub(crate) fn draw_axes<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    path: &Path,
    frame: &Frame,
    (x_axis, y_axis): (&Axis, &Axis),
    captions: &Captions,
    look: &Look,
) -> Result<(), VizError> {
    let err = |e| draw_err(path, e);
    let (w, _) = area.dim_in_pixel();
    let f = frame;
    let title = tidy_title(captions.title);
    if !title.is_empty() {
        let font = fit_font(&title, look.title, 9, w.saturating_sub(2 * look.pad as u32));
        draw_text(
            area,
            path,
            &title,
            font,
            &BLACK,
            (w as i32 / 2, look.pad),
            (HPos::Center, VPos::Top),
        )?;
    }
    let x_px: Vec<(i32, &str)> = x_axis
        .ticks
        .iter()
        .map(|(v, t)| {
            (
                f.at(x_axis, y_axis, (*v, y_axis.lo)).0.round() as i32,
                t.as_str(),
            )
        })
        .collect();
    let y_px: Vec<(i32, &str)> = y_axis
        .ticks
        .iter()
        .map(|(v, t)| {
            (
                f.at(x_axis, y_axis, (x_axis.lo, *v)).1.round() as i32,
                t.as_str(),
            )
        })
        .collect();
    for &(x, _) in &x_px {
        area.draw(&PathElement::new(vec![(x, f.top), (x, f.bottom)], GRID))
            .map_err(err)?;
    }
    for &(y, _) in &y_px {
        area.draw(&PathElement::new(vec![(f.left, y), (f.right, y)], GRID))
            .map_err(err)?;
    }
    let axis = AXIS.stroke_width(((look.line * 0.45).round() as u32).max(1));
    area.draw(&PathElement::new(
        vec![(f.left, f.top), (f.left, f.bottom), (f.right, f.bottom)],
        axis,
    ))
    .map_err(err)?;
    for &(x, label) in &x_px {
        area.draw(&PathElement::new(
            vec![(x, f.bottom), (x, f.bottom + look.tick_len)],
            axis,
        ))
        .map_err(err)?;
        draw_text(
            area,
            path,
            label,
            look.tick,
            &BLACK,
            (x, f.bottom + look.tick_len + look.gap),
            (HPos::Center, VPos::Top),
        )?;
    }
    for &(y, label) in &y_px {
        area.draw(&PathElement::new(
            vec![(f.left - look.tick_len, y), (f.left, y)],
            axis,
        ))
        .map_err(err)?;
        draw_text(
            area,
            path,
            label,
            look.tick,
            &BLACK,
            (f.left - look.tick_len - look.gap, y),
            (HPos::Right, VPos::Center),
        )?;
    }
    let tick_h = (f64::from(look.tick) * 0.85).round() as i32;
    let x_font = fit_font(
        captions.x_label,
        look.label,
        9,
        (f.right - f.left).max(1) as u32,
    );
    draw_text(
        area,
        path,
        captions.x_label,
        x_font,
        &BLACK,
        (
            (f.left + f.right) / 2,
            f.bottom + look.tick_len + look.gap * 2 + tick_h,
        ),
        (HPos::Center, VPos::Top),
    )?;
    let y_font = fit_font(
        captions.y_label,
        look.label,
        9,
        (f.bottom - f.top).max(1) as u32,
    );
    draw_text_vertical(
        area,
        path,
        captions.y_label,
        y_font,
        &BLACK,
        (look.pad, (f.top + f.bottom) / 2),
        (HPos::Center, VPos::Top),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(a: &Axis) -> Vec<&str> {
        a.ticks.iter().map(|(_, t)| t.as_str()).collect()
    }

    #[test]
    fn log_ticks() {
        assert_eq!(labels(&Axis::log(0.5, 2e3)), ["10⁰", "10¹", "10²", "10³"]);
        assert_eq!(labels(&Axis::log(1e-6, 1.0))[0], "10⁻⁶");
        assert_eq!(labels(&Axis::log(1e-6, 1.0)).len(), 7);
        // Under three powers of ten: 2 and 5 times them too, as plain numbers.
        assert_eq!(
            labels(&Axis::log(0.015, 0.3)),
            ["0.02", "0.05", "0.1", "0.2"]
        );
        let a = Axis::log(1e-3, 1.0);
        assert!((a.frac(0.031_622_776_6) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn fitted_axes_keep_two_labelled_ticks() {
        // A narrow histogram panel: the step of a single target (1) would leave only 0.
        let a = Axis::fitted(-0.55, 0.55, 200, 72, Ticks::Auto, Some(24));
        assert_eq!(labels(&a), ["-0.5", "0.0", "0.5"]);
        // Room for many: about one per spacing, never more.
        let a = Axis::fitted(0.0, 10.0, 1000, 100, Ticks::Integer, Some(24));
        assert!((6..=10).contains(&a.ticks.len()), "{:?}", labels(&a));
    }

    #[test]
    fn integer_axes_have_no_decimals() {
        let a = Axis::linear(0.75, 6.25, 8, Ticks::Integer);
        assert_eq!(labels(&a), ["1", "2", "3", "4", "5", "6"]);
        let a = Axis::linear(-5.0, 105.0, 5, Ticks::Integer);
        assert_eq!(labels(&a), ["0", "25", "50", "75", "100"]);
    }
}
