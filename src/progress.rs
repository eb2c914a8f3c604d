//! The one progress display every long step shows (epochs, t-SNE iterations, downloads): how
//! far, elapsed and estimated time left, and a message (loss and rate, a file name).
//!
//! On a terminal it is an indicatif bar. Elsewhere (a Slurm log, a pipe) indicatif draws
//! nothing, so a plain log line is written instead, every [`LINE_SECONDS`] seconds
//! (`HEAL_PROGRESS_SECONDS` changes it; 0 writes one at every update):
//! `epoch 2/3  640/1780 ex  loss 0.4321  51.2 ex/s  lr 2.00e-5  elapsed 12s  left 22s`.

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Seconds between two plain progress lines when stderr is not a terminal.
pub const LINE_SECONDS: u64 = 30;

/// What a bar counts.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Examples,
    Iterations,
    /// Shown as KiB/MiB with a transfer rate.
    Bytes,
}

/// A progress display: a bar on a terminal, plain log lines elsewhere.
pub struct Progress(Display);

enum Display {
    Bar(ProgressBar),
    Lines(Mutex<Lines>),
}

/// The state behind the plain lines.
struct Lines {
    len: u64,
    unit: Unit,
    prefix: String,
    message: String,
    pos: u64,
    started: Instant,
    last_line: Instant,
    every: Duration,
}

/// A display of `len` steps of `unit`, labelled `prefix`.
pub fn bar(len: u64, unit: Unit, prefix: impl Into<String>) -> Progress {
    let prefix = prefix.into();
    if !std::io::stderr().is_terminal() {
        let now = Instant::now();
        return Progress(Display::Lines(Mutex::new(Lines {
            len,
            unit,
            prefix,
            message: String::new(),
            pos: 0,
            started: now,
            last_line: now,
            every: line_interval(),
        })));
    }
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
    bar.set_prefix(prefix);
    Progress(Display::Bar(bar))
}

/// `HEAL_PROGRESS_SECONDS`, else [`LINE_SECONDS`].
fn line_interval() -> Duration {
    let seconds = std::env::var("HEAL_PROGRESS_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(LINE_SECONDS as f64);
    Duration::from_secs_f64(seconds)
}

impl Progress {
    pub fn set_message(&self, message: impl Into<String>) {
        match &self.0 {
            Display::Bar(bar) => bar.set_message(message.into()),
            Display::Lines(lines) => lines.lock().expect("progress state").message = message.into(),
        }
    }

    pub fn set_position(&self, pos: u64) {
        match &self.0 {
            Display::Bar(bar) => bar.set_position(pos),
            Display::Lines(lines) => lines.lock().expect("progress state").moved_to(pos),
        }
    }

    pub fn inc(&self, delta: u64) {
        match &self.0 {
            Display::Bar(bar) => bar.inc(delta),
            Display::Lines(lines) => {
                let mut lines = lines.lock().expect("progress state");
                let pos = lines.pos + delta;
                lines.moved_to(pos);
            }
        }
    }

    /// Removes the bar; the plain lines need no closing line (the caller logs the outcome).
    pub fn finish_and_clear(&self) {
        if let Display::Bar(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Lines {
    fn moved_to(&mut self, pos: u64) {
        self.pos = pos.min(self.len);
        let now = Instant::now();
        if self.pos > 0 && now.duration_since(self.last_line) >= self.every {
            self.last_line = now;
            log::info!("{}", self.line(now.duration_since(self.started)));
        }
    }

    /// `PREFIX  POS/LEN UNIT  [RATE]  [MESSAGE]  elapsed E  left L`.
    fn line(&self, elapsed: Duration) -> String {
        let elapsed = elapsed.as_secs_f64();
        let counts = match self.unit {
            Unit::Examples => format!("{}/{} ex", self.pos, self.len),
            Unit::Iterations => format!("{}/{} it", self.pos, self.len),
            Unit::Bytes => format!(
                "{}/{}  {}/s",
                HumanBytes(self.pos),
                HumanBytes(self.len),
                HumanBytes((self.pos as f64 / elapsed.max(1e-9)) as u64)
            ),
        };
        let mut line = format!("{}  {counts}", self.prefix);
        if !self.message.is_empty() {
            line.push_str("  ");
            line.push_str(&self.message);
        }
        let left = elapsed / self.pos as f64 * (self.len - self.pos) as f64;
        line.push_str(&format!(
            "  elapsed {}  left {}",
            duration(elapsed),
            duration(left)
        ));
        line
    }
}

/// A duration as a person reads it in a log: `42s`, `3m 05s`, `2h 07m`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_a_person_would() {
        assert_eq!(duration(0.4), "0s");
        assert_eq!(duration(42.0), "42s");
        assert_eq!(duration(185.0), "3m 05s");
        assert_eq!(duration(7620.0), "2h 07m");
        assert_eq!(duration(-3.0), "0s");
    }

    #[test]
    fn a_plain_line_estimates_the_time_left_from_the_rate_so_far() {
        let now = Instant::now();
        let lines = Lines {
            len: 1780,
            unit: Unit::Examples,
            prefix: "epoch 2/3".into(),
            message: "loss 0.4321  51.2 ex/s".into(),
            pos: 640,
            started: now,
            last_line: now,
            every: Duration::ZERO,
        };
        // 640 examples in 12.5 s: 1140 more take 22.3 s.
        assert_eq!(
            lines.line(Duration::from_secs_f64(12.5)),
            "epoch 2/3  640/1780 ex  loss 0.4321  51.2 ex/s  elapsed 13s  left 22s"
        );
        let bytes = Lines {
            unit: Unit::Bytes,
            prefix: "download".into(),
            message: String::new(),
            len: 4096,
            pos: 1024,
            ..lines
        };
        assert_eq!(
            bytes.line(Duration::from_secs(2)),
            "download  1.00 KiB/4.00 KiB  512 B/s  elapsed 2s  left 6s"
        );
    }
}
