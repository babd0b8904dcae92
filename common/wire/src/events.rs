//! One TensorBoard event file, as every process writes them into the run's
//! `tb/` directory (the learner's scalars, the recorder's returns and
//! pictures, the evaluations' returns): created with TensorBoard's file name,
//! written through a buffer, flushed at least every 30 s by
//! [`EventFile::flush_if_due`] and at the end by [`EventFile::flush`].

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tboard::EventWriter;

/// How often a writer that calls [`EventFile::flush_if_due`] flushes at most.
pub const FLUSH_EVERY: Duration = Duration::from_secs(30);

/// An event file that could not be created or written, and why.
#[derive(Debug, thiserror::Error)]
#[error("TensorBoard events {path}: {message}")]
pub struct EventFileError {
    pub path: PathBuf,
    pub message: String,
}

pub struct EventFile {
    writer: EventWriter<BufWriter<File>>,
    path: PathBuf,
    flushed: Instant,
}

impl EventFile {
    /// A new file in `dir` (made if missing), named
    /// `events.out.tfevents.<time>.<writer>.<pid>`: TensorBoard reads every
    /// such file of a directory as one run, so a resumed session adds one.
    pub fn create(dir: &Path, writer: &str) -> Result<Self, EventFileError> {
        let fail = |path: &Path, e: &dyn std::fmt::Display| EventFileError {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(dir, &e))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let path =
            dir.join(format!("events.out.tfevents.{now:010}.{writer}.{}", std::process::id()));
        let file = File::create(&path).map_err(|e| fail(&path, &e))?;
        let writer = EventWriter::from_writer(BufWriter::new(file), Some(path.clone()))
            .map_err(|e| fail(&path, &e))?;
        Ok(EventFile { writer, path, flushed: Instant::now() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fail(&self, e: tboard::Error) -> EventFileError {
        EventFileError { path: self.path.clone(), message: e.to_string() }
    }

    pub fn scalar(&mut self, step: i64, tag: &str, value: f32) -> Result<(), EventFileError> {
        self.writer.write_scalar(step, tag, value).map_err(|e| self.fail(e))
    }

    /// An RGB picture, `png` being its PNG encoding.
    pub fn image(
        &mut self,
        step: i64,
        tag: &str,
        (width, height): (usize, usize),
        png: Vec<u8>,
    ) -> Result<(), EventFileError> {
        self.writer
            .write_image(step, tag, width as i32, height as i32, 3, png)
            .map_err(|e| self.fail(e))
    }

    /// Flushes when the last flush is [`FLUSH_EVERY`] old.
    pub fn flush_if_due(&mut self) -> Result<(), EventFileError> {
        if self.flushed.elapsed() >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), EventFileError> {
        self.flushed = Instant::now();
        self.writer.flush().map_err(|e| self.fail(e))
    }
}
