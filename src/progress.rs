//! The one progress bar every long step shows (epochs, t-SNE iterations, downloads): done of
//! total in a unit, elapsed and estimated time left, and a message (loss, rate).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps counted in `unit` ("ex", "it", "B"), labelled `prefix`.
pub fn bar(len: u64, unit: &str, prefix: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template =
        format!("{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit}  {{elapsed}}<{{eta}}  {{msg}}");
    let style = ProgressStyle::with_template(&template)
        .expect("valid progress template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(prefix.into());
    bar
}
