//! Grids of scatter panels coloured by class with one shared legend (e.g. t-SNE maps of
//! sentence embeddings, one panel per corruption setting).

use crate::legend::{self, Entry, Swatch};
use crate::output::{write_figure, Figure};
use crate::style::{draw_marker, Look, Marker};
use crate::util::{draw_err, draw_text, fit_font, grid_dims, invalid, tidy_title};
use crate::{VizError, PALETTE};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use std::path::Path;

/// One panel of a scatter grid.
#[derive(Debug, Clone, Default)]
pub struct ScatterPanel {
    pub title: String,
    /// One line drawn under the panel, e.g. "silhouette 0.41 · 5-NN acc 0.97"; may be empty.
    pub footer: String,
    pub points: Vec<(f64, f64)>,
    /// Class of each point: an index into `class_names`, same length as `points`.
    pub classes: Vec<usize>,
}

/// Marker shapes, in the order they are handed out once the colours run out.
const SHAPES: usize = 4;

/// The most classes `scatter_grid` can tell apart: each of the 8 `PALETTE` colours with each
/// of 4 marker shapes (circle, triangle, square, diamond). Classes 0-7 are circles in
/// `PALETTE` order, 8-15 triangles, 16-23 squares, 24-31 diamonds.
pub const SCATTER_MAX_CLASSES: usize = PALETTE.len() * SHAPES;

const SHAPES_IN_ORDER: [Marker; SHAPES] = [
    Marker::Circle,
    Marker::TriangleUp,
    Marker::Square,
    Marker::Diamond,
];

fn class_look(class: usize) -> (RGBColor, Marker) {
    (
        PALETTE[class % PALETTE.len()],
        SHAPES_IN_ORDER[(class / PALETTE.len()) % SHAPES],
    )
}

fn legend_entries(names: &[String]) -> Vec<Entry> {
    names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let (colour, shape) = class_look(k);
            Entry {
                name: name.clone(),
                swatch: Swatch::Marker(colour, shape),
            }
        })
        .collect()
}

/// Radius of the points of a panel: smaller than the legend's markers.
fn point_radius(look: &Look) -> i32 {
    (look.marker * 5 / 9).max(2)
}

/// Validates the input and returns (columns, rows, legend height) of the figure.
fn plan(
    panels: &[ScatterPanel],
    class_names: &[String],
    columns: usize,
    panel_size: (u32, u32),
) -> Result<(usize, usize, legend::Layout), VizError> {
    if panels.is_empty() {
        return Err(VizError::Empty("scatter grid without panels".into()));
    }
    if class_names.is_empty() {
        return Err(invalid("scatter grid without class names"));
    }
    if class_names.len() > SCATTER_MAX_CLASSES {
        return Err(invalid(format!(
            "{} classes, but a scatter grid tells apart at most {SCATTER_MAX_CLASSES} \
             (8 colours x 4 marker shapes)",
            class_names.len()
        )));
    }
    if panel_size.0 < 120 || panel_size.1 < 120 {
        return Err(invalid(format!(
            "scatter panel size {panel_size:?} is too small (at least 120 x 120 px)"
        )));
    }
    for p in panels {
        if p.points.len() != p.classes.len() {
            return Err(invalid(format!(
                "scatter panel {:?}: {} points but {} classes",
                p.title,
                p.points.len(),
                p.classes.len()
            )));
        }
        if !p.points.iter().any(|(x, y)| x.is_finite() && y.is_finite()) {
            return Err(VizError::Empty(format!(
                "scatter panel {:?} has no (finite) points",
                p.title
            )));
        }
        if let Some(c) = p.classes.iter().find(|&&c| c >= class_names.len()) {
            return Err(invalid(format!(
                "scatter panel {:?}: class {c} but only {} class names",
                p.title,
                class_names.len()
            )));
        }
    }
    let (cols, rows) = grid_dims(panels.len(), columns)?;
    let look = Look::for_panel(panel_size);
    let legend = legend::layout(
        &legend_entries(class_names),
        panel_size.0 * cols as u32,
        &look,
    );
    Ok((cols, rows, legend))
}

/// Pixel size of the image `scatter_grid` writes for these arguments: `columns.min(panels)`
/// panels across, as many rows as needed, plus the legend strip at the bottom (one row of
/// legend entries per ~`panel width x columns` of names).
pub fn scatter_grid_size(
    panels: &[ScatterPanel],
    class_names: &[String],
    columns: usize,
    panel_size: (u32, u32),
) -> Result<(u32, u32), VizError> {
    let (cols, rows, legend) = plan(panels, class_names, columns, panel_size)?;
    Ok((
        panel_size.0 * cols as u32,
        panel_size.1 * rows as u32 + legend.height as u32,
    ))
}

/// Scatter panels in a grid of `columns` columns (rows as needed), each `panel_size` pixels,
/// above one legend strip of `class_names` shared by the whole figure (see
/// [`scatter_grid_size`] for the exact image size).
///
/// Each panel has its title above a thin frame, its footer below, and the points as filled,
/// slightly transparent markers coloured by class, drawn in input order so that no class is
/// systematically painted over another. Both axes share one scale (t-SNE distances are
/// isotropic), and there are no ticks since the axes carry no meaning. Non-finite points are
/// skipped.
///
/// Classes 0-7 get the `PALETTE` colours as circles; up to [`SCATTER_MAX_CLASSES`] (32)
/// classes are told apart by cycling the colours with further marker shapes (triangle,
/// square, diamond). More classes than that is an error, as are: no panels, a panel with no
/// finite points, `points` and `classes` of different lengths, a class index not below
/// `class_names.len()`, `columns == 0`, and panels smaller than 120 x 120 px.
pub fn scatter_grid(
    path: &Path,
    panels: &[ScatterPanel],
    class_names: &[String],
    columns: usize,
    panel_size: (u32, u32),
) -> Result<(), VizError> {
    let (w, h) = scatter_grid_size(panels, class_names, columns, panel_size)?;
    let figure = ScatterFigure {
        panels,
        class_names,
        columns,
        panel_size,
    };
    write_figure(path, (w, h), &figure)
}

struct ScatterFigure<'a> {
    panels: &'a [ScatterPanel],
    class_names: &'a [String],
    columns: usize,
    panel_size: (u32, u32),
}

impl Figure for ScatterFigure<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        path: &Path,
    ) -> Result<(), VizError> {
        let (cols, rows, layout) =
            plan(self.panels, self.class_names, self.columns, self.panel_size)?;
        let look = Look::for_panel(self.panel_size);
        let grid_h = self.panel_size.1 * rows as u32;
        let (grid, legend_area) = root.split_vertically(grid_h);
        let areas = grid.split_evenly((rows, cols));
        for (area, panel) in areas.iter().zip(self.panels) {
            draw_panel(area, path, panel, &look)?;
        }
        let width = self.panel_size.0 * cols as u32;
        let entries = legend_entries(self.class_names);
        legend::draw(&legend_area, path, (0, 0), width, &entries, &layout, &look)
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    path: &Path,
    panel: &ScatterPanel,
    look: &Look,
) -> Result<(), VizError> {
    let (w, h) = area.dim_in_pixel();
    let pad = look.pad;
    let title_h = (look.title * 13 / 10) as i32;
    let footer_h = if panel.footer.is_empty() {
        pad
    } else {
        (look.note * 16 / 10) as i32
    };
    let (x0, x1) = (pad, w as i32 - pad);
    let (y0, y1) = (pad / 2 + title_h, h as i32 - footer_h);
    if x1 - x0 < 20 || y1 - y0 < 20 {
        return Err(invalid("scatter panel too small for its title and footer"));
    }
    let text_w = (w as i32 - 2 * pad) as u32;
    let title = tidy_title(&panel.title);
    let title_font = fit_font(&title, look.title, 9, text_w);
    draw_text(
        area,
        path,
        &title,
        title_font,
        &BLACK,
        (w as i32 / 2, pad / 2 + title_h / 2),
        (HPos::Center, VPos::Center),
    )?;
    let footer_font = fit_font(&panel.footer, look.note, 9, text_w);
    draw_text(
        area,
        path,
        &panel.footer,
        footer_font,
        &RGBColor(40, 40, 40),
        (w as i32 / 2, y1 + footer_h / 2),
        (HPos::Center, VPos::Center),
    )?;
    area.draw(&Rectangle::new(
        [(x0, y0), (x1, y1)],
        RGBColor(90, 90, 90).stroke_width(1),
    ))
    .map_err(|e| draw_err(path, e))?;

    // One scale for both axes, centred in the frame.
    let finite = || {
        panel
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let (mut lo_x, mut hi_x, mut lo_y, mut hi_y) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in finite() {
        lo_x = lo_x.min(x);
        hi_x = hi_x.max(x);
        lo_y = lo_y.min(y);
        hi_y = hi_y.max(y);
    }
    let radius = point_radius(look);
    let margin = f64::from(radius) * 1.4 + 6.0;
    let avail_w = f64::from(x1 - x0) - 2.0 * margin;
    let avail_h = f64::from(y1 - y0) - 2.0 * margin;
    let span_x = (hi_x - lo_x).max(1e-12);
    let span_y = (hi_y - lo_y).max(1e-12);
    let k = (avail_w / span_x).min(avail_h / span_y);
    let (cx, cy) = ((lo_x + hi_x) / 2.0, (lo_y + hi_y) / 2.0);
    let (mx, my) = (f64::from(x0 + x1) / 2.0, f64::from(y0 + y1) / 2.0);
    for (&(x, y), &class) in panel.points.iter().zip(&panel.classes) {
        if !(x.is_finite() && y.is_finite()) {
            continue;
        }
        let at = (
            (mx + (x - cx) * k).round() as i32,
            (my - (y - cy) * k).round() as i32,
        );
        let (colour, shape) = class_look(class);
        draw_marker(area, path, at, shape, radius, colour.mix(0.75).filled())?;
    }
    Ok(())
}
