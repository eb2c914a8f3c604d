//! Line charts: panels side by side, each series a line in its own colour, dash pattern and
//! marker, with optional error bars and dashed reference lines, and a legend outside the
//! plot area (e.g. training curves, F1 against the share of layers corrupted).

use crate::axes::{draw_axes, frame_in, frame_rows, Axis, Captions, Ticks};
use crate::legend::{self, Entry, Swatch};
use crate::output::{write_figure, Figure};
use crate::style::{draw_line, draw_marker, Look, SeriesLook};
use crate::util::invalid;
use crate::VizError;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// One named line of (x, y) points.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Half-length of an error bar at each point (e.g. the standard deviation over seeds),
    /// one per point; empty: no error bars. When several series of a panel have error bars,
    /// each is shifted sideways by a few pixels so that bars at the same x do not overlap.
    pub y_err: Vec<f64>,
    /// A reference line (e.g. the clean model's score): dark grey, evenly dashed, no markers,
    /// drawn under the other series.
    pub dashed: bool,
}

/// One panel of a figure.
#[derive(Debug, Clone, Default)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// [`Ticks::Integer`] for an x axis that counts (epochs, percent of layers).
    pub x_ticks: Ticks,
    pub y_ticks: Ticks,
}

/// How each series of a panel is drawn: regular series take the `PALETTE` colours, dash
/// patterns and markers in order; reference lines are numbered apart.
fn looks(panel: &Panel) -> Vec<SeriesLook> {
    let mut regular = 0;
    panel
        .series
        .iter()
        .map(|s| {
            if s.dashed {
                SeriesLook::reference()
            } else {
                regular += 1;
                SeriesLook::nth(regular - 1)
            }
        })
        .collect()
}

fn entries(panel: &Panel) -> Vec<Entry> {
    panel
        .series
        .iter()
        .zip(looks(panel))
        .map(|(s, look)| Entry {
            name: s.name.clone(),
            swatch: Swatch::Line(look),
        })
        .collect()
}

/// Legends: one strip under the figure when every panel has the same series, else one under
/// each panel that has more than one series; none when every panel has a single series.
enum Legends {
    None,
    Shared(Vec<Entry>, legend::Layout),
    PerPanel(Vec<Option<(Vec<Entry>, legend::Layout)>>, i32),
}

fn legends(panels: &[Panel], panel_size: (u32, u32), look: &Look) -> Legends {
    if panels.iter().all(|p| p.series.len() <= 1) {
        return Legends::None;
    }
    let names = |p: &Panel| -> Vec<(String, bool)> {
        p.series
            .iter()
            .map(|s| (s.name.clone(), s.dashed))
            .collect()
    };
    if panels.iter().all(|p| names(p) == names(&panels[0])) {
        let e = entries(&panels[0]);
        let width = panel_size.0 * panels.len() as u32;
        let l = legend::layout(&e, width, look);
        return Legends::Shared(e, l);
    }
    let each: Vec<Option<(Vec<Entry>, legend::Layout)>> = panels
        .iter()
        .map(|p| {
            (p.series.len() > 1).then(|| {
                let e = entries(p);
                let l = legend::layout(&e, panel_size.0, look);
                (e, l)
            })
        })
        .collect();
    let h = each
        .iter()
        .flatten()
        .map(|(_, l)| l.height)
        .max()
        .unwrap_or(0);
    Legends::PerPanel(each, h)
}

fn validate(panels: &[Panel], panel_size: (u32, u32)) -> Result<(), VizError> {
    if panels.is_empty() {
        return Err(VizError::Empty("line chart without panels".into()));
    }
    for p in panels {
        let finite = |s: &Series| s.points.iter().any(|(x, y)| x.is_finite() && y.is_finite());
        if !p.series.iter().any(finite) {
            return Err(VizError::Empty(format!(
                "line panel {:?} has no (finite) points",
                p.title
            )));
        }
        for s in &p.series {
            if !s.y_err.is_empty() && s.y_err.len() != s.points.len() {
                return Err(invalid(format!(
                    "series {:?} in panel {:?}: {} error bars for {} points (one each, or none)",
                    s.name,
                    p.title,
                    s.y_err.len(),
                    s.points.len()
                )));
            }
        }
    }
    if panel_size.0 < 120 || panel_size.1 < 100 {
        return Err(invalid(format!(
            "line panel size {panel_size:?} is too small (at least 120 x 100 px)"
        )));
    }
    Ok(())
}

/// Pixel size of the image [`line_panels`] writes: the panels side by side, plus a legend strip
/// under them when every panel has the same (several) series.
pub fn line_panels_size(panels: &[Panel], panel_size: (u32, u32)) -> Result<(u32, u32), VizError> {
    validate(panels, panel_size)?;
    let look = Look::for_panel(panel_size);
    let strip = match legends(panels, panel_size, &look) {
        Legends::Shared(_, l) => l.height as u32,
        _ => 0,
    };
    Ok((panel_size.0 * panels.len() as u32, panel_size.1 + strip))
}

/// Draws panels side by side as line charts into `path` (a `.png`) and the same figure as SVG
/// beside it (see [`line_panels_size`] for the image size).
///
/// Series `i` of a panel (reference lines aside) is drawn in `PALETTE[i]` with its own dash
/// pattern and marker shape, so the lines stay apart in greyscale; error bars (`y_err`) have
/// caps; reference lines (`dashed`) are grey, evenly dashed and drawn first. Axes have a light
/// grid at the ticks, tick labels with only the decimals the step needs, and whole-number
/// ticks where the panel asks for [`Ticks::Integer`]. The legend sits outside the plot area.
/// Non-finite points are skipped.
///
/// Errors: no panels, a panel without finite points, `y_err` neither empty nor one per point,
/// panels under 120 x 100 px, a path not ending in `.png`.
pub fn line_panels(path: &Path, panels: &[Panel], panel_size: (u32, u32)) -> Result<(), VizError> {
    let size = line_panels_size(panels, panel_size)?;
    write_figure(path, size, &LineFigure { panels, panel_size })
}

struct LineFigure<'a> {
    panels: &'a [Panel],
    panel_size: (u32, u32),
}

impl Figure for LineFigure<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        path: &Path,
    ) -> Result<(), VizError> {
        let look = Look::for_panel(self.panel_size);
        let legends = legends(self.panels, self.panel_size, &look);
        let (grid, strip) = root.split_vertically(self.panel_size.1);
        let areas = grid.split_evenly((1, self.panels.len()));
        for (i, (area, panel)) in areas.iter().zip(self.panels).enumerate() {
            let below = match &legends {
                Legends::PerPanel(_, h) => *h,
                _ => 0,
            };
            draw_panel(area, path, panel, &look, below)?;
            if let Legends::PerPanel(each, h) = &legends {
                if let Some((e, l)) = &each[i] {
                    let y = self.panel_size.1 as i32 - h - look.pad / 2;
                    legend::draw(area, path, (0, y), self.panel_size.0, e, l, &look)?;
                }
            }
        }
        if let Legends::Shared(e, l) = &legends {
            let (w, _) = strip.dim_in_pixel();
            legend::draw(&strip, path, (0, 0), w, e, l, &look)?;
        }
        Ok(())
    }
}

/// `lo..hi` widened by 5% on each side (by 0.5 when flat).
fn padded(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values.fold(f64::NEG_INFINITY, f64::max);
    if (hi - lo).abs() < 1e-12 {
        (lo - 0.5, hi + 0.5)
    } else {
        let pad = (hi - lo) * 0.05;
        (lo - pad, hi + pad)
    }
}

/// A finite point and its error bar, if any.
type Point = ((f64, f64), Option<f64>);

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    path: &Path,
    panel: &Panel,
    look: &Look,
    below: i32,
) -> Result<(), VizError> {
    let (w, h) = area.dim_in_pixel();
    let finite = |s: &'_ Series| {
        s.points
            .iter()
            .enumerate()
            .filter(|(_, (x, y))| x.is_finite() && y.is_finite())
            .map(|(i, &p)| (p, s.y_err.get(i).copied().filter(|e| e.is_finite())))
            .collect::<Vec<_>>()
    };
    let data: Vec<Vec<Point>> = panel.series.iter().map(finite).collect();
    let all = || data.iter().flatten();
    let (x0, x1) = padded(all().map(|((x, _), _)| *x));
    let (y0, y1) = padded(all().flat_map(|((_, y), e)| {
        let e = e.unwrap_or(0.0).abs();
        [y - e, y + e]
    }));
    let rows = frame_rows(h, &panel.title, below, look);
    let y_axis = Axis::fitted(
        y0,
        y1,
        rows.1 - rows.0,
        look.tick as i32 * 2,
        panel.y_ticks,
        None,
    );
    let frame = frame_in(w, rows, &y_axis, look);
    let x_axis = Axis::fitted(
        x0,
        x1,
        frame.right - frame.left,
        look.tick as i32 * 3,
        panel.x_ticks,
        Some(look.tick),
    );
    let captions = Captions {
        title: &panel.title,
        x_label: &panel.x_label,
        y_label: &panel.y_label,
    };
    draw_axes(area, path, &frame, (&x_axis, &y_axis), &captions, look)?;
    let looks = looks(panel);
    // Series with error bars are shifted apart by a few pixels, so that bars at the same x
    // stay apart.
    let with_bars: Vec<usize> = (0..data.len())
        .filter(|&i| !panel.series[i].dashed && data[i].iter().any(|(_, e)| e.is_some()))
        .collect();
    let dodge = |i: usize| match with_bars.iter().position(|&j| j == i) {
        Some(k) if with_bars.len() > 1 => {
            (k as f64 - (with_bars.len() - 1) as f64 / 2.0) * f64::from(look.marker) * 1.6
        }
        _ => 0.0,
    };
    // References first, so that the series are drawn over them.
    let order = (0..data.len())
        .filter(|&i| panel.series[i].dashed)
        .chain((0..data.len()).filter(|&i| !panel.series[i].dashed));
    for i in order {
        let (points, s) = (&data[i], &looks[i]);
        let shift = dodge(i);
        let px = |p: (f64, f64)| {
            let (x, y) = frame.at(&x_axis, &y_axis, p);
            (x + shift, y)
        };
        let bar = (look.line * 0.6).max(1.0);
        let cap = f64::from(look.marker);
        for &((x, y), e) in points {
            if let Some(e) = e.filter(|e| *e > 0.0) {
                let (cx, top) = px((x, y + e));
                let (_, bottom) = px((x, y - e));
                let solid = SeriesLook { dash: &[], ..*s };
                for seg in [
                    [(cx, top), (cx, bottom)],
                    [(cx - cap, top), (cx + cap, top)],
                    [(cx - cap, bottom), (cx + cap, bottom)],
                ] {
                    draw_line(area, path, &seg, &solid, bar)?;
                }
            }
        }
        let line: Vec<(f64, f64)> = points.iter().map(|(p, _)| px(*p)).collect();
        draw_line(area, path, &line, s, look.line * s.weight)?;
        if let Some(m) = s.marker {
            for &(x, y) in &line {
                let at = (x.round() as i32, y.round() as i32);
                draw_marker(area, path, at, m, look.marker + 1, WHITE.filled())?;
                draw_marker(area, path, at, m, look.marker, s.colour.filled())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_of_the_asked_size() {
        let dir = std::env::temp_dir().join(format!("viz-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("curves.png");
        let panel = Panel {
            title: "loss".into(),
            x_label: "epoch".into(),
            y_label: "loss".into(),
            series: vec![Series {
                name: "train".into(),
                points: vec![(1.0, 1.2), (2.0, 0.4), (3.0, 0.2)],
                ..Default::default()
            }],
            x_ticks: Ticks::Integer,
            ..Default::default()
        };
        line_panels(&path, &[panel.clone(), panel], (400, 300)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        // IHDR width and height, big-endian, at bytes 16..24.
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!((w, h), (800, 300));
        assert!(path.with_extension("svg").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_input_is_an_error() {
        let panel = Panel {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            ..Default::default()
        };
        assert!(line_panels(Path::new("/tmp/never.png"), &[panel], (10, 10)).is_err());
    }

    #[test]
    fn shared_legend_only_for_the_same_series() {
        let two = |a: &str, b: &str| Panel {
            series: [a, b]
                .iter()
                .map(|n| Series {
                    name: n.to_string(),
                    points: vec![(0.0, 1.0), (1.0, 2.0)],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let same = line_panels_size(&[two("a", "b"), two("a", "b")], (400, 300)).unwrap();
        assert_eq!(same.0, 800);
        assert!(same.1 > 300);
        let differ = line_panels_size(&[two("a", "b"), two("c", "d")], (400, 300)).unwrap();
        assert_eq!(differ, (800, 300));
    }
}
