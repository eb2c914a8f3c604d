//! Histograms: binning helpers, and panels of overlaid histograms drawn as outlines on a log
//! count axis (e.g. weight values per module type: pretrained, corrupted, healed).

use crate::axes::{draw_axes, frame_in, frame_rows, Axis, Captions, Ticks};
use crate::legend::{self, Entry, Swatch};
use crate::output::{write_figure, Figure};
use crate::style::{draw_line, Look, SeriesLook};
use crate::util::{grid_dims, invalid};
use crate::VizError;
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
    /// A log10 x axis, for log-spaced edges (see [`log_edges`]), e.g. of |w|; every edge must
    /// then be above zero.
    pub log_x: bool,
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

/// `bins + 1` log-spaced edges from `lo` to `hi` (both above zero; the ends are swapped if
/// `hi < lo`, and a zero-width range becomes `lo / 2 ..= lo * 2`), the last exactly `hi`: bins
/// of equal width on a log axis, e.g. for weight magnitudes. `bins == 0` is treated as 1.
/// Errors: an end that is not finite and above zero.
pub fn log_edges(lo: f64, hi: f64, bins: usize) -> Result<Vec<f64>, VizError> {
    if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && hi > 0.0) {
        return Err(invalid(format!(
            "log-spaced edges need finite ends above zero, not {lo}..{hi}"
        )));
    }
    let (mut lo, mut hi) = if hi < lo { (hi, lo) } else { (lo, hi) };
    if hi <= lo {
        lo /= 2.0;
        hi *= 2.0;
    }
    let (a, b) = (lo.ln(), hi.ln());
    let bins = bins.max(1);
    Ok((0..=bins)
        .map(|i| {
            if i == 0 {
                lo
            } else if i == bins {
                hi
            } else {
                (a + (b - a) * i as f64 / bins as f64).exp()
            }
        })
        .collect())
}

fn validate(panels: &[HistPanel], panel_size: (u32, u32)) -> Result<(), VizError> {
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
            if p.log_x && s.edges[0] <= 0.0 {
                return Err(invalid(format!(
                    "histogram {:?} in panel {:?}: a log x axis needs edges above zero",
                    s.name, p.title
                )));
            }
        }
    }
    if panel_size.0 < 160 || panel_size.1 < 160 {
        return Err(invalid(format!(
            "histogram panel size {panel_size:?} is too small (at least 160 x 160 px)"
        )));
    }
    Ok(())
}

fn entries(panel: &HistPanel) -> Vec<Entry> {
    (0..panel.series.len())
        .map(|i| Entry {
            name: panel.series[i].name.clone(),
            swatch: Swatch::Line(SeriesLook::outline(i)),
        })
        .collect()
}

/// Legends: one strip under the figure when every panel has the same series, else one under
/// each panel that has more than one; none when every panel has a single series.
enum Legends {
    None,
    Shared(Vec<Entry>, legend::Layout),
    PerPanel(i32),
}

fn legends(panels: &[HistPanel], width: u32, panel_size: (u32, u32), look: &Look) -> Legends {
    if panels.iter().all(|p| p.series.len() <= 1) {
        return Legends::None;
    }
    let names =
        |p: &HistPanel| -> Vec<String> { p.series.iter().map(|s| s.name.clone()).collect() };
    if panels.iter().all(|p| names(p) == names(&panels[0])) {
        let e = entries(&panels[0]);
        let l = legend::layout(&e, width, look);
        return Legends::Shared(e, l);
    }
    let h = panels
        .iter()
        .filter(|p| p.series.len() > 1)
        .map(|p| legend::layout(&entries(p), panel_size.0, look).height)
        .max()
        .unwrap_or(0);
    Legends::PerPanel(h)
}

/// Pixel size of the image [`histogram_panels`] writes: `columns.min(panels)` panels across,
/// as many rows as needed, plus a legend strip under them when every panel has the same
/// (several) series.
pub fn histogram_panels_size(
    panels: &[HistPanel],
    columns: usize,
    panel_size: (u32, u32),
) -> Result<(u32, u32), VizError> {
    validate(panels, panel_size)?;
    let (cols, rows) = grid_dims(panels.len(), columns)?;
    let width = panel_size.0 * cols as u32;
    let look = Look::for_panel(panel_size);
    let strip = match legends(panels, width, panel_size, &look) {
        Legends::Shared(_, l) => l.height as u32,
        _ => 0,
    };
    Ok((width, panel_size.1 * rows as u32 + strip))
}

/// Histogram panels in a grid of `columns` columns (rows as needed), each `panel_size` pixels,
/// into `path` (a `.png`) and the same figure as SVG beside it (see [`histogram_panels_size`]
/// for the image size).
///
/// Each series is a step outline, without fill so that no series hides another, in
/// `PALETTE` order with its own dash pattern (solid, dashed, dotted, ...); runs of empty bins
/// are left out rather than drawn along the floor. Counts are on a log10 axis labelled "count
/// (log scale)" whose floor is half the largest power of ten not above the smallest non-zero
/// count of the panel (so a count of 1 still stands out from an empty bin). `log_x` puts x on
/// a log10 axis too. The legend sits outside the plot area.
///
/// Errors: no panels, a panel without series, a series without bins, `edges.len() !=
/// counts.len() + 1`, edges not finite and strictly ascending (or not above zero with
/// `log_x`), `columns == 0`, panels smaller than 160 x 160 px, a path not ending in `.png`.
pub fn histogram_panels(
    path: &Path,
    panels: &[HistPanel],
    columns: usize,
    panel_size: (u32, u32),
) -> Result<(), VizError> {
    let size = histogram_panels_size(panels, columns, panel_size)?;
    let figure = HistFigure {
        panels,
        columns,
        panel_size,
    };
    write_figure(path, size, &figure)
}

struct HistFigure<'a> {
    panels: &'a [HistPanel],
    columns: usize,
    panel_size: (u32, u32),
}

impl Figure for HistFigure<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        path: &Path,
    ) -> Result<(), VizError> {
        let (cols, rows) = grid_dims(self.panels.len(), self.columns)?;
        let look = Look::for_panel(self.panel_size);
        let width = self.panel_size.0 * cols as u32;
        let legends = legends(self.panels, width, self.panel_size, &look);
        let below = match legends {
            Legends::PerPanel(h) => h,
            _ => 0,
        };
        let (grid, strip) = root.split_vertically(self.panel_size.1 * rows as u32);
        let areas = grid.split_evenly((rows, cols));
        for (area, panel) in areas.iter().zip(self.panels) {
            draw_panel(area, path, panel, &look, below)?;
            if below > 0 && panel.series.len() > 1 {
                let e = entries(panel);
                let l = legend::layout(&e, self.panel_size.0, &look);
                let y = self.panel_size.1 as i32 - below - look.pad / 2;
                legend::draw(area, path, (0, y), self.panel_size.0, &e, &l, &look)?;
            }
        }
        if let Legends::Shared(e, l) = &legends {
            legend::draw(&strip, path, (0, 0), width, e, l, &look)?;
        }
        Ok(())
    }
}

/// The log count axis of a panel: from half the largest power of ten not above the smallest
/// non-zero count to a little above the largest count.
fn count_axis(panel: &HistPanel) -> Axis {
    let counts = || panel.series.iter().flat_map(|h| h.counts.iter().copied());
    let (lo, hi) = match counts().filter(|&c| c > 0).min() {
        None => (0.5, 10.0),
        Some(m) => {
            let lo = 10f64.powf((m as f64).log10().floor()) * 0.5;
            let max_c = counts().max().unwrap_or(1) as f64;
            (lo, max_c * 10f64.powf((max_c / lo).log10() * 0.04 + 0.05))
        }
    };
    Axis::log(lo, hi)
}

/// The drawn pieces of a histogram's outline: each run of non-empty bins as a step line that
/// rises from `floor` at its left edge and falls back at its right edge.
fn outline(h: &Histogram, floor: f64) -> Vec<Vec<(f64, f64)>> {
    let mut pieces = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for (j, &c) in h.counts.iter().enumerate() {
        let (a, b) = (h.edges[j], h.edges[j + 1]);
        if c == 0 {
            if let Some(&(x, _)) = current.last() {
                current.push((x, floor));
                pieces.push(std::mem::take(&mut current));
            }
            continue;
        }
        if current.is_empty() {
            current.push((a, floor));
        }
        current.push((a, c as f64));
        current.push((b, c as f64));
    }
    if let Some(&(x, _)) = current.last() {
        current.push((x, floor));
        pieces.push(current);
    }
    pieces
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    path: &Path,
    panel: &HistPanel,
    look: &Look,
    below: i32,
) -> Result<(), VizError> {
    let (w, h) = area.dim_in_pixel();
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
    let y_axis = count_axis(panel);
    let rows = frame_rows(h, &panel.title, below, look);
    let frame = frame_in(w, rows, &y_axis, look);
    let x_axis = if panel.log_x {
        let pad = (x_hi / x_lo).powf(0.02);
        Axis::log(x_lo / pad, x_hi * pad)
    } else {
        let pad = (x_hi - x_lo) * 0.02;
        Axis::fitted(
            x_lo - pad,
            x_hi + pad,
            frame.right - frame.left,
            look.tick as i32 * 3,
            Ticks::Auto,
            Some(look.tick),
        )
    };
    let captions = Captions {
        title: &panel.title,
        x_label: &panel.x_label,
        y_label: "count (log scale)",
    };
    draw_axes(area, path, &frame, (&x_axis, &y_axis), &captions, look)?;
    for (i, hist) in panel.series.iter().enumerate() {
        let s = SeriesLook::outline(i);
        for piece in outline(hist, y_axis.lo) {
            let px: Vec<(f64, f64)> = piece
                .into_iter()
                .map(|p| frame.at(&x_axis, &y_axis, p))
                .collect();
            draw_line(area, path, &px, &s, look.line * 0.8)?;
        }
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
    fn outlines_skip_empty_runs() {
        let h = Histogram {
            name: "h".into(),
            edges: vec![0.0, 1.0, 2.0, 3.0, 4.0],
            counts: vec![2, 0, 0, 5],
        };
        assert_eq!(
            outline(&h, 0.5),
            vec![
                vec![(0.0, 0.5), (0.0, 2.0), (1.0, 2.0), (1.0, 0.5)],
                vec![(3.0, 0.5), (3.0, 5.0), (4.0, 5.0), (4.0, 0.5)],
            ]
        );
    }

    #[test]
    fn log_edges_are_even_in_log() {
        let e = log_edges(1e-4, 1.0, 4).unwrap();
        assert_eq!(e[0], 1e-4);
        assert_eq!(e[4], 1.0);
        assert!((e[2] - 1e-2).abs() < 1e-12);
        assert!(log_edges(0.0, 1.0, 4).is_err());
        assert_eq!(log_edges(1.0, 1.0, 1).unwrap(), vec![0.5, 2.0]);
    }
}
