//! Legends as strips outside the plot area (under a panel or under the whole figure), so that
//! they never cover data: entries centred in rows, wrapped to the strip's width.

use crate::style::{draw_line, draw_marker, Look, Marker, SeriesLook};
use crate::util::{draw_text, text_size};
use crate::VizError;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use std::path::Path;

/// What an entry shows before its name.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Swatch {
    /// A short stretch of the series' line, with its marker in the middle if it has one.
    Line(SeriesLook),
    /// A marker alone (scatter classes).
    Marker(RGBColor, Marker),
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub name: String,
    pub swatch: Swatch,
}

/// Entries placed in rows: (entry index, x of the swatch's left end within the row).
pub(crate) struct Layout {
    rows: Vec<Vec<(usize, i32)>>,
    row_widths: Vec<i32>,
    row_h: i32,
    /// Height of the strip, padding included.
    pub height: i32,
}

fn swatch_w(swatch: &Swatch, look: &Look) -> i32 {
    match swatch {
        Swatch::Line(_) => look.legend as i32 * 2,
        Swatch::Marker(..) => 2 * look.marker + 2,
    }
}

/// Lays out `entries` in rows at most `width` pixels wide.
pub(crate) fn layout(entries: &[Entry], width: u32, look: &Look) -> Layout {
    let font = look.legend;
    let spacing = font as i32 * 3 / 2;
    let max_w = width as i32 - 2 * look.pad;
    let mut rows: Vec<Vec<(usize, i32)>> = vec![vec![]];
    let mut row_widths = vec![0];
    for (k, e) in entries.iter().enumerate() {
        let item_w =
            swatch_w(&e.swatch, look) + font as i32 / 3 + text_size(&e.name, font).0 as i32;
        let last = rows.len() - 1;
        let used = row_widths[last];
        let start = if used == 0 { 0 } else { used + spacing };
        if used > 0 && start + item_w > max_w {
            rows.push(vec![(k, 0)]);
            row_widths.push(item_w);
        } else {
            rows[last].push((k, start));
            row_widths[last] = start + item_w;
        }
    }
    let row_h = font as i32 * 13 / 10;
    Layout {
        height: rows.len() as i32 * row_h + 2 * look.gap,
        rows,
        row_widths,
        row_h,
    }
}

/// Draws the strip with its top-left corner at `(x, y)` of `area`, `width` pixels wide.
pub(crate) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    path: &Path,
    (x, y): (i32, i32),
    width: u32,
    entries: &[Entry],
    layout: &Layout,
    look: &Look,
) -> Result<(), VizError> {
    for (row, (items, &row_w)) in layout.rows.iter().zip(&layout.row_widths).enumerate() {
        let left = x + (width as i32 - row_w) / 2;
        let cy = y + look.gap + row as i32 * layout.row_h + layout.row_h / 2;
        for &(k, dx) in items {
            let e = &entries[k];
            let sx = left + dx;
            let sw = swatch_w(&e.swatch, look);
            match e.swatch {
                Swatch::Line(s) => {
                    let (x0, x1) = (f64::from(sx), f64::from(sx + sw));
                    let y = f64::from(cy);
                    draw_line(area, path, &[(x0, y), (x1, y)], &s, look.line * s.weight)?;
                    if let Some(m) = s.marker {
                        draw_marker(
                            area,
                            path,
                            (sx + sw / 2, cy),
                            m,
                            look.marker,
                            s.colour.filled(),
                        )?;
                    }
                }
                Swatch::Marker(colour, m) => {
                    draw_marker(
                        area,
                        path,
                        (sx + sw / 2, cy),
                        m,
                        look.marker,
                        colour.filled(),
                    )?;
                }
            }
            draw_text(
                area,
                path,
                &e.name,
                look.legend,
                &BLACK,
                (sx + sw + look.legend as i32 / 3, cy),
                (HPos::Left, VPos::Center),
            )?;
        }
    }
    Ok(())
}
