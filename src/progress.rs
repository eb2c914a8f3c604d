//! The one progress bar every long step shows (epochs, t-SNE iterations, downloads): how far,
//! elapsed and estimated time left, and a message (loss and rate, a file name).

use indicatif::{ProgressBar, ProgressStyle};

/// What a bar counts.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Examples,
    Iterations,
    /// Shown as KiB/MiB with a transfer rate.
    Bytes,
}

/// A bar of `len` steps of `unit`, labelled `prefix`.
pub fn bar(len: u64, unit: Unit, prefix: impl Into<String>) -> ProgressBar {
    let counts = match unit {
        Unit::Examples => "{pos}/{len} ex",
        Unit::Iterations => "{pos}/{len} it",
        Unit::Bytes => "{bytes}/{total_bytes} {bytes_per_sec}",
    };
    let template = format!("{{prefix}} [{{bar:30}}] {counts}  {{elapsed}}<{{eta}}  {{msg}}");
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&template)
            .expect("valid progress template")
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix.into());
    bar
}
