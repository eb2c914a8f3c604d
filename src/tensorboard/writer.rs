//! An event file being written: records appended as they come, flushed when asked, so that
//! TensorBoard can read a file that a running job still writes.

use super::event::{file_version_event, summary_event, wall_time, Value};
use super::record::write_record;
use anyhow::Context;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct EventWriter {
    path: PathBuf,
    file: BufWriter<File>,
}

impl EventWriter {
    /// Creates the file (replacing one of the same name) and writes the file-version record.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut writer = EventWriter {
            path: path.to_path_buf(),
            file: BufWriter::new(file),
        };
        writer.append(&file_version_event(wall_time()))?;
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&mut self, event: &[u8]) -> anyhow::Result<()> {
        write_record(&mut self.file, event)
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// Appends one event holding `values` at `step`, stamped with the current time.
    pub fn write(&mut self, step: usize, values: &[Value]) -> anyhow::Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        self.append(&summary_event(wall_time(), step as i64, values))
    }

    /// Pushes what is buffered to the file, for a reader watching it.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.file
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensorboard::record::tests::read_records;

    #[test]
    fn a_file_is_the_version_record_then_the_events() {
        let dir = std::env::temp_dir().join(format!("heal-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.out.tfevents.test");
        let mut w = EventWriter::create(&path).unwrap();
        w.write(10, &[Value::scalar("train/loss", 0.5)]).unwrap();
        w.write(11, &[]).unwrap();
        w.flush().unwrap();
        let records = read_records(&std::fs::read(&path).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(records.len(), 2);
        assert!(records[0].ends_with(b"brain.Event:2"));
        assert!(records[1].windows(10).any(|w| w == b"train/loss"));
    }
}
