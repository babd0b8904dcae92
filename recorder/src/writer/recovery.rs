//! Recovery after a killed recorder (the writer's module doc): the
//! `.partial` segment is discarded, finished staging episodes move into a
//! new segment, and episodes still being recorded are closed as incomplete
//! (`end_reason = "recovered"`), truncated to the steps every dataset holds.

use std::path::Path;

use anyhow::Result;
use tracing::{info, warn};

use super::*;

impl Writer {
    /// Recovery after a crash; see the module doc.
    pub(super) fn recover(&mut self) -> Result<()> {
        for entry in std::fs::read_dir(&self.opts.run_dir)? {
            let path = entry?.path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with(SEGMENT_PREFIX) && name.ends_with(PARTIAL_SUFFIX) {
                // Every episode in it still has its staging file.
                warn!("discarding {} left by a killed recorder; its episodes are recovered from staging", path.display());
                std::fs::remove_file(&path)?;
            }
        }
        let mut staged: Vec<PathBuf> = std::fs::read_dir(&self.staging)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "h5"))
            .collect();
        staged.sort();
        let mut recovered = 0;
        for path in staged {
            match self.recover_one(&path) {
                Ok(true) => recovered += 1,
                Ok(false) => {}
                Err(e) => {
                    let broken = path.with_extension("h5.broken");
                    warn!("cannot recover {}: {e:#}; kept as {}", path.display(), broken.display());
                    let _ = std::fs::rename(&path, &broken);
                }
            }
        }
        if recovered > 0 {
            info!(episodes = recovered, "recovered episodes left by a killed recorder");
            self.close_segment()?;
        }
        Ok(())
    }

    /// Returns whether the staging file was moved into the new segment.
    fn recover_one(&mut self, path: &Path) -> Result<bool> {
        let file = hdf5::File::open_rw(path)?;
        if let Ok(segment) = str_attr(&file, "segment") {
            // Copied before the crash: done if that segment was closed.
            let group = file.group(STAGING_GROUP)?;
            let uid = str_attr(&group, "uid")?;
            drop(group);
            let closed = self.opts.run_dir.join(&segment);
            let done = hdf5::File::open(&closed)
                .and_then(|f| f.group(EPISODES))
                .map(|g| g.link_exists(&uid))
                .unwrap_or(false);
            if done {
                drop(file);
                std::fs::remove_file(path)?;
                return Ok(false);
            }
        }
        let group = file.group(STAGING_GROUP)?;
        if self.opts.num_actions.is_none() && self.opts.model_config.is_none() {
            if let Ok(d) = group.dataset("policy_logits") {
                self.opts.num_actions = d.shape().get(1).copied();
            }
        }
        if str_attr(&group, "end_reason").is_err() {
            // Still being recorded when the recorder died: keep the steps every
            // dataset holds and mark the episode incomplete.
            // A chunk written after the last flush may have reused space that
            // the flushed metadata still points at: keep the prefix that reads back.
            let mut steps = usize::MAX;
            for name in group.member_names()? {
                steps = steps.min(readable_steps(&group.dataset(&name)?));
            }
            let steps = if steps == usize::MAX { 0 } else { steps };
            for name in group.member_names()? {
                let d = group.dataset(&name)?;
                let mut shape = d.shape();
                shape[0] = steps;
                d.resize(shape)?;
            }
            let versions: Vec<u64> = group.dataset(schema::PARAMS_VERSION)?.read_raw()?;
            set_attr(&group, "episode_return", f64::NAN)?;
            set_attr(&group, "length", steps as u64)?;
            set_attr(&group, "steps", steps as u64)?;
            set_attr(&group, "complete", 0u8)?;
            set_str_attr(&group, "end_reason", "recovered")?;
            if attr::<u32>(&group, "missing_chunks").is_err() {
                set_attr(&group, "missing_chunks", 0u32)?;
            }
            set_attr(&group, "params_version_first", versions.first().copied().unwrap_or(0))?;
            set_attr(&group, "params_version_last", versions.last().copied().unwrap_or(0))?;
            set_attr(&group, "finished_unix", now_unix())?;
            self.stats.incomplete += 1;
        }
        drop(group);
        let segment = self.segment_name()?;
        set_str_attr(&file, "segment", &segment)?;
        file.close()?;
        self.move_to_segment(path)?;
        self.stats.episodes += 1;
        Ok(true)
    }
}

/// Steps of a dataset that read back without error, reading chunk by chunk.
fn readable_steps(ds: &hdf5::Dataset) -> usize {
    let shape = ds.shape();
    let step = ds.chunk().map_or(1, |c| c[0].max(1));
    let mut t = 0;
    while t < shape[0] {
        let end = (t + step).min(shape[0]);
        let mut sel: Vec<hdf5::SliceOrIndex> = vec![(t..end).into()];
        sel.extend((1..shape.len()).map(|_| hdf5::SliceOrIndex::from(..)));
        let sel = hdf5::Hyperslab::from(sel);
        use hdf5::types::TypeDescriptor as T;
        let ok = match ds.dtype().and_then(|d| d.to_descriptor()) {
            Ok(T::Unsigned(hdf5::types::IntSize::U1)) => {
                ds.read_slice::<u8, _, ndarray::IxDyn>(sel).is_ok()
            }
            Ok(T::Unsigned(_)) => ds.read_slice::<u64, _, ndarray::IxDyn>(sel).is_ok(),
            Ok(T::Integer(_)) => ds.read_slice::<i64, _, ndarray::IxDyn>(sel).is_ok(),
            Ok(T::Float(_)) => ds.read_slice::<f32, _, ndarray::IxDyn>(sel).is_ok(),
            _ => false,
        };
        if !ok {
            return t;
        }
        t = end;
    }
    shape[0]
}
