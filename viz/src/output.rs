//! Writing a figure: one drawing, rendered twice, into an RGB buffer saved as PNG (with the
//! resolution in its pHYs chunk) and into SVG (text kept as text, sized in inches), each file
//! written under a temporary name and renamed into place.

use crate::util::{draw_err, invalid};
use crate::{VizError, DPI};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// A figure that can draw itself on any plotters backend.
pub(crate) trait Figure {
    /// Draws onto `root` (already filled white); `path` names the figure in errors.
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        path: &Path,
    ) -> Result<(), VizError>;
}

/// The SVG every figure function writes beside the PNG `path` (same name, `.svg`); an error
/// for a path that does not end in `.png`, which no figure function accepts.
pub fn svg_path(path: &Path) -> Result<PathBuf, VizError> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if ext.as_deref() != Some("png") {
        return Err(invalid(format!(
            "{}: give a .png path (the .svg is written beside it)",
            path.display()
        )));
    }
    Ok(path.with_extension("svg"))
}

/// Draws `figure` at `size` pixels and writes `path` (PNG) and the SVG beside it.
pub(crate) fn write_figure(
    path: &Path,
    size: (u32, u32),
    figure: &impl Figure,
) -> Result<(), VizError> {
    let svg_path = svg_path(path)?;
    let (w, h) = size;
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
        figure.draw(&root, path)?;
        root.present().map_err(|e| draw_err(path, e))?;
    }
    let png = encode_png(&rgb, size).map_err(|e| draw_err(path, e))?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(&svg_path, e))?;
        figure.draw(&root, &svg_path)?;
        root.present().map_err(|e| draw_err(&svg_path, e))?;
    }
    let svg = in_inches(&svg, size);
    write_atomic(path, &png)?;
    write_atomic(&svg_path, svg.as_bytes())
}

/// 8-bit RGB PNG whose pHYs chunk states [`DPI`] (as pixels per metre, the unit PNG knows).
fn encode_png(rgb: &[u8], (w, h): (u32, u32)) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let ppm = (f64::from(DPI) / 0.0254).round() as u32;
    enc.set_pixel_dims(Some(png::PixelDimensions {
        xppu: ppm,
        yppu: ppm,
        unit: png::Unit::Meter,
    }));
    let mut writer = enc.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

/// Gives the SVG its printed size: plotters writes `width="W" height="H"` in pixels (with a
/// `viewBox` of the same pixels, which stays), made `W / DPI` by `H / DPI` inches here.
fn in_inches(svg: &str, (w, h): (u32, u32)) -> String {
    let inches = |px: u32| {
        let s = format!("{:.3}", f64::from(px) / f64::from(DPI));
        let s = s.trim_end_matches('0').trim_end_matches('.');
        format!("{s}in")
    };
    svg.replacen(
        &format!("width=\"{w}\" height=\"{h}\""),
        &format!("width=\"{}\" height=\"{}\"", inches(w), inches(h)),
        1,
    )
}

/// Writes `bytes` to `.NAME.heal-tmp-HOST-PID` beside `path` (heal's one pattern for temporary
/// names, whose leftovers heal's next write there cleans), then renames it to `path`: a reader
/// sees the old file or the new one, never half of one.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), VizError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().replace(['/', '\\'], "-"))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let tmp = path.with_file_name(format!(".{name}.heal-tmp-{host}-{}", std::process::id()));
    let io = |e: std::io::Error| VizError::Write {
        path: path.display().to_string(),
        cause: e,
    };
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_size_in_inches() {
        let svg = r#"<svg width="660" height="300" viewBox="0 0 660 300">"#;
        assert_eq!(
            in_inches(svg, (660, 300)),
            r#"<svg width="3.3in" height="1.5in" viewBox="0 0 660 300">"#
        );
    }

    #[test]
    fn only_png_paths() {
        assert_eq!(
            svg_path(Path::new("a/b.PNG")).unwrap(),
            PathBuf::from("a/b.svg")
        );
        assert!(svg_path(Path::new("a/b.svg")).is_err());
        assert!(svg_path(Path::new("a/b")).is_err());
    }
}
