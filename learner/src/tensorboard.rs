//! TensorBoard event files in `runs/<xpid>/tb/`, next to `logs.csv` and with
//! the same scalars: one per column, tagged with the column's name, the step
//! axis being environment frames. Each value is the number `logs.csv` shows
//! (parsed back from the row's field), so the two never disagree; undefined
//! values (no episode ended in the batch) are left out, as the CSV leaves
//! them empty. Written through a buffer and flushed every 30 s and when the
//! learner ends, so a run on a cluster is followed from a laptop with
//! `tensorboard --logdir runs`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use wire::events::EventFile;

use crate::metrics::{Row, COLUMNS};

/// The directory of a run's event files.
pub fn dir(run_root: &Path) -> PathBuf {
    run_root.join("tb")
}

pub struct TensorBoard {
    file: EventFile,
}

impl TensorBoard {
    /// A new event file in `dir` (a resumed run adds one per session).
    pub fn create(dir: &Path) -> Result<Self> {
        Ok(TensorBoard { file: EventFile::create(dir, "learner")? })
    }

    /// The row's scalars at step = its frames; flushed if the last flush is
    /// 30 s old.
    pub fn write(&mut self, row: &Row) -> Result<()> {
        let step = row.frames as i64;
        for (name, field) in COLUMNS.iter().zip(row.fields()) {
            let Ok(value) = field.parse::<f64>() else { continue };
            self.file.scalar(step, name, value as f32)?;
        }
        Ok(self.file.flush_if_due()?)
    }

    pub fn flush(&mut self) -> Result<()> {
        Ok(self.file.flush()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

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
        let events = tboard::SummaryReader::new(File::open(tb.file.path()).unwrap());
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
