//! Histograms: binning helpers, and panels of overlaid histograms on a log count axis (e.g.
//! weight values per module type, before and after fine-tuning).

use crate::util::{
    check_output, draw_err, fit_font, fmt_axis, font_scale, grid_dims, invalid, px, FONT,
};
use crate::{VizError, PALETTE};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// One binned series: `counts[i]` values fell in `edges[i]..edges[i + 1]`.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    /// Legend entry.
    pub name: String,
    /// Bin edges, strictly ascending, `counts.len() + 1` of them.
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

/// One panel of overlaid histograms.
#[derive(Debug, Clone, Default)]
pub struct HistPanel {
    pub title: String,
    /// x axis caption, e.g. "weight value".
    pub x_label: String,
    pub series: Vec<Histogram>,
}

/// Counts `values` into the bins given by `edges` (ascending; bin `i` is
/// `edges[i]..edges[i + 1]`, half-open except the last, which includes its upper edge).
///
/// Values below the first edge are counted in the first bin and values above the last edge
/// in the last bin (infinities included), so the counts sum to the number of non-NaN
/// values. NaN values are skipped. With fewer than two edges there are no bins and the result
/// is empty.
pub fn histogram(values: impl IntoIterator<Item = f64>, edges: &[f64]) -> Vec<u64> {
    if edges.len() < 2 {
        return Vec::new();
    }
    let bins = edges.len() - 1;
    let mut counts = vec![0u64; bins];
    for v in values {
        if v.is_nan() {
            continue;
        }
        // Number of edges <= v, minus one, is the bin; clamp the outside values in.
        let i = edges
            .partition_point(|&e| e <= v)
            .saturating_sub(1)
            .min(bins - 1);
        counts[i] += 1;
    }
    counts
}

/// `bins + 1` evenly spaced edges from `lo` to `hi` (the last is exactly `hi`). The ends are
/// swapped if `hi < lo`, and a zero-width range is widened to `lo - 0.5 ..= lo + 0.5` (so a
/// constant tensor, e.g. a LayerNorm bias at zero, still gets usable edges). `bins == 0` is
/// treated as 1.
pub fn linear_edges(lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let (mut lo, mut hi) = if hi < lo { (hi, lo) } else { (lo, hi) };
    if hi - lo <= 0.0 {
        lo -= 0.5;
        hi += 0.5;
    }
    let bins = bins.max(1);
    (0..=bins)
        .map(|i| {
            if i == bins {
                hi
            } else {
                lo + (hi - lo) * i as f64 / bins as f64
            }
        })
        .collect()
}

fn validate(panels: &[HistPanel]) -> Result<(), VizError> {
    if panels.is_empty() {
        return Err(VizError::Empty("histogram figure without panels".into()));
    }
    for p in panels {
        if p.series.is_empty() {
            return Err(VizError::Empty(format!(
                "histogram panel {:?} has no series",
                p.title
            )));
        }
        for s in &p.series {
            if s.counts.is_empty() {
                return Err(VizError::Empty(format!(
                    "histogram {:?} in panel {:?} has no bins",
                    s.name, p.title
                )));
            }
            if s.edges.len() != s.counts.len() + 1 {
                return Err(invalid(format!(
                    "histogram {:?} in panel {:?}: {} edges for {} counts (need counts + 1)",
                    s.name,
                    p.title,
                    s.edges.len(),
                    s.counts.len()
                )));
            }
            if s.edges.iter().any(|e| !e.is_finite()) || s.edges.windows(2).any(|w| w[0] >= w[1]) {
                return Err(invalid(format!(
                    "histogram {:?} in panel {:?}: edges must be finite and strictly ascending",
                    s.name, p.title
                )));
            }
        }
    }
    Ok(())
}

/// Histogram panels in a grid of `columns` columns (rows as needed), each `panel_size`
/// pixels; the image is `columns.min(panels) * width` by `rows * height`.
///
/// Each series is drawn in `PALETTE` order as a step outline over a light translucent fill,
/// so overlaid series stay readable. Counts are on a log10 axis labelled "count (log scale)"
/// whose floor is half the largest power of ten not above the smallest non-zero count of the
/// panel; empty bins are drawn at that floor (so a count of 1 still stands out from an empty
/// bin). A legend appears when a panel has more than one series.
///
/// Errors: no panels, a panel without series, a series without bins, `edges.len() !=
/// counts.len() + 1`, edges not finite and strictly ascending, `columns == 0`, panels
/// smaller than 160 x 160 px.
pub fn histogram_panels(
    path: &Path,
    panels: &[HistPanel],
    columns: usize,
    panel_size: (u32, u32),
) -> Result<(), VizError> {
    check_output(path)?;
    validate(panels)?;
    if panel_size.0 < 160 || panel_size.1 < 160 {
        return Err(invalid(format!(
            "histogram panel size {panel_size:?} is too small (at least 160 x 160 px)"
        )));
    }
    let (cols, rows) = grid_dims(panels.len(), columns)?;
    let root = BitMapBackend::new(
        path,
        (panel_size.0 * cols as u32, panel_size.1 * rows as u32),
    )
    .into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let areas = root.split_evenly((rows, cols));
    for (area, panel) in areas.iter().zip(panels) {
        draw_panel(area, path, panel, font_scale(panel_size))?;
    }
    root.present().map_err(|e| draw_err(path, e))?;
    Ok(())
}

/// Superscript form of an integer exponent, e.g. 4 -> "⁴".
fn superscript(n: i32) -> String {
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

/// Labels powers of ten ("1", "10", "100", "1000", "10⁴", ...); other ticks stay unlabelled.
fn log_tick_label(v: f64) -> String {
    if v <= 0.0 {
        return String::new();
    }
    let e = v.log10();
    if (e - e.round()).abs() > 1e-6 {
        return String::new();
    }
    let e = e.round() as i32;
    match e {
        0..=3 => format!("{}", 10u64.pow(e as u32)),
        -2..=-1 => format!("{v}"),
        _ => format!("10{}", superscript(e)),
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    path: &Path,
    panel: &HistPanel,
    s: f64,
) -> Result<(), VizError> {
    let err = |e: &dyn std::fmt::Display| draw_err(path, e);
    let (w, _) = area.dim_in_pixel();
    let tick_font = px(17.0, s);
    let desc_font = px(19.0, s);
    let title_font = fit_font(&panel.title, px(22.0, s), 9, w.saturating_sub(20));

    let x_lo = panel
        .series
        .iter()
        .map(|h| h.edges[0])
        .fold(f64::INFINITY, f64::min);
    let x_hi = panel
        .series
        .iter()
        .map(|h| h.edges[h.edges.len() - 1])
        .fold(f64::NEG_INFINITY, f64::max);
    let x_pad = (x_hi - x_lo) * 0.02;
    let counts = || panel.series.iter().flat_map(|h| h.counts.iter().copied());
    let min_nz = counts().filter(|&c| c > 0).min();
    let max_c = counts().max().unwrap_or(0);
    let (y_lo, y_hi) = match min_nz {
        None => (0.5, 10.0),
        Some(m) => {
            let lo = 10f64.powf((m as f64).log10().floor()) * 0.5;
            let decades = (max_c as f64 / lo).log10();
            // Headroom above the tallest bin so the legend does not cover data.
            let headroom = if panel.series.len() > 1 { 0.3 } else { 0.12 };
            (lo, max_c as f64 * 10f64.powf(decades * headroom + 0.1))
        }
    };

    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, title_font))
        .margin(px(10.0, s))
        .margin_right(px(18.0, s))
        .x_label_area_size(px(58.0, s))
        .y_label_area_size(px(80.0, s))
        .build_cartesian_2d((x_lo - x_pad)..(x_hi + x_pad), (y_lo..y_hi).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(&panel.x_label)
        .y_desc("count (log scale)")
        .axis_desc_style((FONT, desc_font))
        .label_style((FONT, tick_font))
        .y_label_formatter(&|v| log_tick_label(*v))
        .x_label_formatter(&|v| fmt_axis(*v, x_hi - x_lo))
        .x_labels(6)
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(WHITE)
        .axis_style(RGBColor(60, 60, 60))
        .draw()
        .map_err(|e| err(&e))?;

    let stroke = (2.0 * s).round().max(1.0) as u32;
    for (i, h) in panel.series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let level = |c: u64| if c == 0 { y_lo } else { c as f64 };
        let mut step = Vec::with_capacity(2 * h.counts.len() + 2);
        step.push((h.edges[0], y_lo));
        for (j, &c) in h.counts.iter().enumerate() {
            step.push((h.edges[j], level(c)));
            step.push((h.edges[j + 1], level(c)));
        }
        step.push((h.edges[h.edges.len() - 1], y_lo));
        chart
            .draw_series(std::iter::once(Polygon::new(
                step.clone(),
                colour.mix(0.18).filled(),
            )))
            .map_err(|e| err(&e))?;
        let legend_h = (5.0 * s).round() as i32;
        let legend_w = (20.0 * s).round() as i32;
        chart
            .draw_series(LineSeries::new(step, colour.stroke_width(stroke)))
            .map_err(|e| err(&e))?
            .label(&h.name)
            .legend(move |(x, y)| {
                Rectangle::new(
                    [(x, y - legend_h), (x + legend_w, y + legend_h)],
                    colour.mix(0.6).filled(),
                )
            });
    }
    if panel.series.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .margin(px(8.0, s))
            .legend_area_size(px(30.0, s))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(150, 150, 150))
            .label_font((FONT, px(17.0, s)))
            .draw()
            .map_err(|e| err(&e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_values_go_to_the_end_bins_and_nan_is_skipped() {
        let edges = [0.0, 1.0, 2.0, 3.0];
        let counts = histogram(
            [
                -5.0,
                0.0,
                0.5,
                1.0,
                2.999,
                3.0,
                7.0,
                f64::NAN,
                f64::INFINITY,
            ],
            &edges,
        );
        assert_eq!(counts, vec![3, 1, 4]);
        assert!(histogram([1.0], &[0.0]).is_empty());
    }

    #[test]
    fn tick_labels() {
        assert_eq!(log_tick_label(1.0), "1");
        assert_eq!(log_tick_label(1000.0), "1000");
        assert_eq!(log_tick_label(1e5), "10⁵");
        assert_eq!(log_tick_label(3.0), "");
    }
}
