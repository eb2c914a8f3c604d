//! Plotting for heal: typed data in, paper-ready figures out. No tch, no run-directory I/O;
//! callers hand in numbers and a `.png` path.
//!
//! Figures: [`line_panels`] (curves, with error bars and dashed reference lines),
//! [`scatter_grid`] (class-coloured point clouds such as t-SNE maps), [`histogram_panels`]
//! (overlaid histogram outlines on a log count axis, with the [`histogram`], [`linear_edges`]
//! and [`log_edges`] binning helpers) and [`heatmap`] (viridis, with a colour bar).
//!
//! Every figure is written twice from the same drawing: `NAME.png` at [`DPI`] (stated in the
//! file's pHYs chunk) and `NAME.svg` beside it (text as text, sized in inches), each under a
//! temporary name renamed into place. Text is sans-serif, set in points (7-9 pt), on white;
//! grids are light, legends sit outside the plot area, and series differ in dash pattern and
//! marker as well as colour, so figures stay readable in greyscale. Titles lose doubled
//! parentheses: "a (b) (c)" is drawn "a (b, c)".

use plotters::prelude::RGBColor;

mod axes;
mod heatmap;
mod hist;
mod legend;
mod line;
mod output;
mod scatter;
mod style;
mod util;

pub use axes::Ticks;
pub use heatmap::{heatmap, heatmap_size, viridis, Heatmap, VIRIDIS_ANCHORS};
pub use hist::{
    histogram, histogram_panels, histogram_panels_size, linear_edges, log_edges, HistPanel,
    Histogram,
};
pub use line::{line_panels, line_panels_size, Panel, Series};
pub use output::svg_path;
pub use scatter::{scatter_grid, scatter_grid_size, ScatterPanel, SCATTER_MAX_CLASSES};

/// Resolution of the PNGs, in pixels per inch, written into each file's pHYs chunk. Sizes in
/// pixels are inches times this; text is set in points at this resolution.
pub const DPI: u32 = 200;
/// Width in pixels of a figure that fits one column of a two-column paper (3.3 in).
pub const COLUMN_WIDTH: u32 = 660;
/// Width in pixels of a figure that spans a page's text width (6.9 in).
pub const PAGE_WIDTH: u32 = 1380;

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
    /// The cause is in the message, not the error chain, so that a chain printed whole
    /// (`{:#}`) names it once.
    #[error("writing {path}: {cause}")]
    Write { path: String, cause: std::io::Error },
    /// Input that cannot be drawn as given: mismatched lengths, bad edges, a class index
    /// out of range, a zero column count, a size too small for the content, ...
    #[error("invalid plot input: {0}")]
    Invalid(String),
}
