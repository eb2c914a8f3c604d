//! Plotting for heal: typed data in, PNG out. No tch, no run-directory I/O; callers hand in
//! numbers and a path.
//!
//! Figures: [`line_panels`] (curves), [`scatter_grid`] (class-coloured point clouds such as
//! t-SNE maps), [`histogram_panels`] (overlaid histograms on a log count axis, with the
//! [`histogram`] and [`linear_edges`] binning helpers) and [`heatmap`] (viridis, with a
//! colour bar). Output is PNG; fonts are sans-serif on a white background.

use plotters::prelude::RGBColor;

mod heatmap;
mod hist;
mod line;
mod scatter;
mod util;

pub use heatmap::{heatmap, heatmap_size, viridis, Heatmap, VIRIDIS_ANCHORS};
pub use hist::{histogram, histogram_panels, linear_edges, HistPanel, Histogram};
pub use line::{line_panels, Panel, Series};
pub use scatter::{scatter_grid, scatter_grid_size, ScatterPanel, SCATTER_MAX_CLASSES};

/// Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

#[derive(Debug, thiserror::Error)]
pub enum VizError {
    #[error("nothing to plot: {0}")]
    Empty(String),
    #[error("drawing {path}: {message}")]
    Draw { path: String, message: String },
    /// Input that cannot be drawn as given: mismatched lengths, bad edges, a class index
    /// out of range, a zero column count, a size too small for the content, ...
    #[error("invalid plot input: {0}")]
    Invalid(String),
}
