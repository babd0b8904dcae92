//! TensorBoard event files in `runs/<xpid>/tb/`, next to `logs.csv` and with
//! the same scalars: one per column, tagged with the column's name, the step
//! axis being environment frames. Each value is the number `logs.csv` shows
//! (parsed back from the row's field), so the two never disagree; undefined
//! values (no episode ended in the batch) are left out, as the CSV leaves
//! them empty. Written through a buffer and flushed every 30 s and when the
//! learner ends, so a run on a cluster is followed from a laptop with
//! `tensorboard --logdir runs`.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tboard::EventWriter;

use crate::metrics::{Row, COLUMNS};

/// How often the event file is flushed at most.
const FLUSH_EVERY: Duration = Duration::from_secs(30);

/// The directory of a run's event files.
pub fn dir(run_root: &Path) -> PathBuf {
    run_root.join("tb")
}

pub struct TensorBoard {
    writer: EventWriter<BufWriter<File>>,
    path: PathBuf,
    flushed: Instant,
}

impl TensorBoard {
    /// A new event file in `dir` (TensorBoard reads every file there, so a
    /// resumed run adds one per session).
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let now = crate::metrics::unix_seconds() as u64;
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        let path = dir.join(format!("events.out.tfevents.{now:010}.{host}.{}", std::process::id()));
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let writer = EventWriter::from_writer(BufWriter::new(file), Some(path.clone()))
            .map_err(|e| anyhow::anyhow!("starting {}: {e}", path.display()))?;
        Ok(TensorBoard { writer, path, flushed: Instant::now() })
    }

    /// The row's scalars at step = its frames; flushed if the last flush is
    /// 30 s old.
    pub fn write(&mut self, row: &Row) -> Result<()> {
        let step = row.frames as i64;
        for (name, field) in COLUMNS.iter().zip(row.fields()) {
            let Ok(value) = field.parse::<f64>() else { continue };
            self.writer
                .write_scalar(step, name, value as f32)
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", self.path.display()))?;
        }
        if self.flushed.elapsed() >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        self.flushed = Instant::now();
        self.writer.flush().map_err(|e| anyhow::anyhow!("flushing {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the file holds reads back with the same library: every defined
    /// column of the row, at step = frames, with the value the CSV shows.
    #[test]
    fn rows_read_back_as_logs_csv_shows_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut tb = TensorBoard::create(dir.path()).unwrap();
        let row = Row {
            time: 1.7e9 + 0.123456,
            step: 3,
            frames: 4800,
            sps: 123.456,
            total_loss: 0.25,
            mean_episode_return: f64::NAN,
            learning_rate: 6e-4,
            ..Row::default()
        };
        tb.write(&row).unwrap();
        tb.flush().unwrap();
        let events = tboard::SummaryReader::new(File::open(&tb.path).unwrap());
        let mut seen = std::collections::HashMap::new();
        for event in events {
            let event = event.unwrap();
            let Some(tboard::tensorboard::event::What::Summary(summary)) = event.what else {
                continue;
            };
            for value in summary.value {
                let Some(tboard::tensorboard::summary::value::Value::SimpleValue(v)) = value.value
                else {
                    panic!("{} is not a scalar", value.tag)
                };
                assert_eq!(event.step, 4800, "{}", value.tag);
                seen.insert(value.tag, v);
            }
        }
        assert_eq!(seen.len(), COLUMNS.len() - 1, "all but the undefined mean return: {seen:?}");
        assert!(!seen.contains_key("mean_episode_return"));
        assert_eq!(seen["sps"], 123.5, "the CSV's value, rounded as it shows it");
        assert_eq!(seen["learning_rate"], 6e-4f32);
        assert_eq!(seen["step"], 3.0);
    }
}
