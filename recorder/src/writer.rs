//! Appends the `EpisodeChunk`s of many concurrent episodes to HDF5.
//!
//! Durability by closed files (no SWMR), in two stages:
//!
//! 1. **Staging.** Each episode being recorded has its own HDF5 file
//!    `<run>/episodes.staging/<uid>.h5`; chunks are appended to extendible,
//!    compressed datasets in its group `/episode`, so no episode is held in
//!    memory however long it runs. When the last chunk arrives the episode's
//!    attributes are written and the staging file is *closed*: from then on it
//!    is a complete, valid HDF5 file that a `kill -9` cannot damage.
//! 2. **Segments.** Finished episodes are copied (H5Ocopy: the compressed
//!    chunks as they are, no recompression) into the open segment
//!    `episodes-<k>.h5.partial`. Every `rotate_every` the segment is closed,
//!    fsynced and renamed to `episodes-<k>.h5`; only then are the staging files
//!    of its episodes deleted. Readers (h5py, `recorder inspect`) read closed
//!    segments only, so they never see a file that is being written.
//!
//! A `kill -9` at any moment therefore loses no finished episode: those not yet
//! in a closed segment still have their closed staging file. Staging files of
//! episodes in progress are flushed after every chunk, so they are usually
//! recoverable too (all but the one being written at the moment of the kill). On start, the
//! writer recovers what a killed recorder left ([`Writer::new`]): it discards
//! the `.partial` segment (every episode in it still has its staging file),
//! moves finished staging episodes into a new segment, and closes episodes that
//! were still being recorded as incomplete (`end_reason = "recovered"`),
//! truncated to the steps every dataset holds.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use hdf5::types::VarLenUnicode;
use tracing::{info, warn};
use wire::config::{ModelChoice, ModelConfig};
use wire::protocol::{EpisodeChunk, EpisodeEnd, EpisodeSteps, EpisodeUid, RAM_BYTES};

use crate::h5util::{attr, copy_object, set_attr, set_str_attr, str_attr, ChunkJobs, Column, Elem};
use crate::schema::{self, EPISODES, PARTIAL_SUFFIX, SEGMENT_PREFIX, SEGMENT_SUFFIX, STAGING_DIR};

/// Name of the episode group inside a staging file.
mod recovery;

const STAGING_GROUP: &str = "episode";

#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// The run directory; segments go here.
    pub run_dir: PathBuf,
    /// The run id (xpid), a root attribute.
    pub run_id: String,
    /// The architecture the run's flags choose (preset and overrides).
    pub model: ModelChoice,
    /// The full model config when known (meta.json); else built from
    /// `model` with `num_actions` (given, or learned from the first chunk).
    pub model_config: Option<ModelConfig>,
    pub num_actions: Option<usize>,
    /// Environment settings, stored as the root attribute `env` (JSON).
    pub env: serde_json::Value,
    /// Close the open segment this long after its first episode.
    pub rotate_every: Duration,
    /// gzip level of every dataset (0: none).
    pub deflate: u8,
    /// An episode with no chunk for this long is closed as incomplete ("timeout").
    pub episode_timeout: Duration,
    /// Threads that compress chunks (HDF5 itself writes on one thread).
    pub compress_threads: usize,
}

/// What became of one chunk.
#[derive(Debug)]
pub enum Outcome {
    Appended,
    Finished(EpisodeSummary),
    /// Refused without touching any file; the reason is for the log line.
    Dropped(String),
}

#[derive(Clone, Debug)]
pub struct EpisodeSummary {
    pub uid: EpisodeUid,
    pub steps: u64,
    pub episode_return: f64,
    pub complete: bool,
    pub end_reason: &'static str,
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub chunks: u64,
    pub steps: u64,
    /// Raw (uncompressed) frame bytes received.
    pub frame_bytes: u64,
    /// All raw bytes of per-step arrays received.
    pub raw_bytes: u64,
    pub episodes: u64,
    pub incomplete: u64,
    pub dropped: u64,
    pub segments: u64,
}

/// The per-step datasets of one episode: one per field of the episode
/// chunk's layout (`wire::layout`), plus the weights version of each step and
/// the RAM and object positions when the actor sends them.
struct Datasets {
    steps: EpisodeSteps<Column>,
    params_version: Column,
    ram: Option<Column>,
    objects: Option<Column>,
}

impl Datasets {
    fn all_mut(&mut self) -> impl Iterator<Item = &mut Column> {
        let extra = [Some(&mut self.params_version), self.ram.as_mut(), self.objects.as_mut()];
        self.steps.iter_mut().map(|(_, c)| c).chain(extra.into_iter().flatten())
    }

    /// Writes the last, partial chunks.
    fn finish(&mut self, threads: usize) -> Result<()> {
        let mut b = ChunkJobs::default();
        for column in self.all_mut() {
            column.take(true, &mut b)?;
        }
        b.run(threads)
    }
}

struct OpenEpisode {
    file: hdf5::File,
    group: hdf5::Group,
    ds: Datasets,
    path: PathBuf,
    frame_shape: Vec<usize>,
    object_names: Vec<String>,
    steps: u64,
    next_sequence: u32,
    missing_chunks: u32,
    params_first: u64,
    params_last: u64,
    last_seen: Instant,
}

struct Segment {
    file: hdf5::File,
    episodes: hdf5::Group,
    partial: PathBuf,
    path: PathBuf,
    opened: Instant,
    /// Staging files of the episodes copied in, deleted once the segment is closed.
    staged: Vec<PathBuf>,
}

pub struct Writer {
    opts: WriterOptions,
    staging: PathBuf,
    open: HashMap<EpisodeUid, OpenEpisode>,
    finished: HashSet<EpisodeUid>,
    segment: Option<Segment>,
    next_segment: u32,
    pub stats: Stats,
}

fn now_unix() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Index k of `episodes-<k>.h5[.partial]`.
fn segment_index(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(SEGMENT_PREFIX)?;
    let digits = rest.strip_suffix(SEGMENT_SUFFIX).or_else(|| {
        rest.strip_suffix(PARTIAL_SUFFIX).and_then(|r| r.strip_suffix(SEGMENT_SUFFIX))
    })?;
    digits.parse().ok()
}

/// Closed segments of a run directory, oldest first.
pub fn closed_segments(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(SEGMENT_SUFFIX) {
            if let Some(k) = segment_index(&name) {
                found.push((k, dir.join(name)));
            }
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

fn fsync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Writer {
    /// Opens the writer on a run directory, first recovering whatever a killed
    /// recorder left there.
    pub fn new(opts: WriterOptions) -> Result<Self> {
        let staging = opts.run_dir.join(STAGING_DIR);
        std::fs::create_dir_all(&staging)
            .with_context(|| format!("create {}", staging.display()))?;
        let mut next_segment = 0;
        for entry in std::fs::read_dir(&opts.run_dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(k) = segment_index(&name) {
                next_segment = next_segment.max(k + 1);
            }
        }
        let mut writer = Writer {
            opts,
            staging,
            open: HashMap::new(),
            finished: HashSet::new(),
            segment: None,
            next_segment,
            stats: Stats::default(),
        };
        writer.recover()?;
        Ok(writer)
    }

    /// The model config chunks are checked against, once known.
    pub fn model_config(&self) -> Option<ModelConfig> {
        if let Some(cfg) = &self.opts.model_config {
            return Some(cfg.clone());
        }
        self.opts.num_actions.map(|a| self.opts.model.config(a))
    }

    /// Episodes being recorded now.
    pub fn open_episodes(&self) -> usize {
        self.open.len()
    }

    /// Validates `chunk` against the run's config and appends it.
    /// An `Err` is an I/O failure of the writer; a bad chunk is `Ok(Dropped)`.
    pub fn accept(&mut self, chunk: &EpisodeChunk) -> Result<Outcome> {
        let cfg = match self.model_config() {
            Some(cfg) => cfg,
            None => {
                // Learn the action count from the first chunk that is valid with it.
                let a = chunk.policy_logits.shape.get(1).copied().unwrap_or(0);
                let cfg = self.opts.model.config(a.max(1));
                if chunk.validate(&cfg).is_ok() {
                    info!(num_actions = a, "learned the action count from the first episode chunk");
                    self.opts.num_actions = Some(a);
                }
                cfg
            }
        };
        if let Err(e) = chunk.validate(&cfg) {
            return Ok(self.drop_chunk(chunk, e.to_string()));
        }
        self.append(chunk)
    }

    fn drop_chunk(&mut self, chunk: &EpisodeChunk, why: String) -> Outcome {
        self.stats.dropped += 1;
        Outcome::Dropped(format!("chunk {} of episode {}: {why}", chunk.sequence, chunk.uid))
    }

    /// Appends an already validated chunk.
    fn append(&mut self, chunk: &EpisodeChunk) -> Result<Outcome> {
        let uid = chunk.uid;
        if self.finished.contains(&uid) {
            return Ok(self.drop_chunk(chunk, "the episode has already ended".into()));
        }
        if !self.open.contains_key(&uid) {
            let episode = self.create_episode(chunk)?;
            self.open.insert(uid, episode);
        }
        let ep = self.open.get_mut(&uid).expect("just inserted");
        if chunk.sequence < ep.next_sequence {
            let why = format!("duplicate or out of order (expected sequence {})", ep.next_sequence);
            return Ok(self.drop_chunk(chunk, why));
        }
        if chunk.frame.shape[1..] != ep.frame_shape[..] {
            let why = format!(
                "frame shape {:?} differs from the episode's {:?}",
                &chunk.frame.shape[1..],
                ep.frame_shape
            );
            return Ok(self.drop_chunk(chunk, why));
        }
        if chunk.ram.is_some() != ep.ds.ram.is_some()
            || chunk.objects.is_some() != ep.ds.objects.is_some()
            || (chunk.objects.is_some() && chunk.object_names != ep.object_names)
        {
            let why = "ram/objects present in some chunks of the episode only".to_string();
            return Ok(self.drop_chunk(chunk, why));
        }
        let n = chunk.len();
        // Flushing after every chunk keeps the staging file consistent on disk
        // between chunks, so a killed recorder loses at most the chunk it was writing.
        if let Err(e) = write_chunk(&mut ep.ds, chunk, self.opts.compress_threads)
            .and_then(|()| Ok(ep.file.flush()?))
        {
            // The staging file may now be inconsistent: close it; recovery truncates it.
            warn!(uid = %uid, "cannot append to {}: {e:#}; episode closed", ep.path.display());
            self.open.remove(&uid);
            self.finished.insert(uid);
            return Err(e);
        }
        if chunk.sequence > ep.next_sequence {
            ep.missing_chunks += chunk.sequence - ep.next_sequence;
        }
        if ep.steps == 0 {
            ep.params_first = chunk.params_version;
        }
        ep.params_last = chunk.params_version;
        ep.next_sequence = chunk.sequence + 1;
        ep.steps += n as u64;
        ep.last_seen = Instant::now();
        self.stats.chunks += 1;
        self.stats.steps += n as u64;
        self.stats.frame_bytes += chunk.frame.data.len() as u64;
        self.stats.raw_bytes += raw_bytes(chunk);
        match chunk.end {
            Some(end) => Ok(Outcome::Finished(self.finish(uid, Some(end), "end")?)),
            None => Ok(Outcome::Appended),
        }
    }

    fn create_episode(&mut self, chunk: &EpisodeChunk) -> Result<OpenEpisode> {
        let uid = chunk.uid;
        let path = self.staging.join(format!("{}.h5", schema::uid_name(&uid)));
        let file =
            hdf5::File::create(&path).with_context(|| format!("create {}", path.display()))?;
        let group = file.create_group(STAGING_GROUP)?;
        set_str_attr(&group, "uid", &schema::uid_name(&uid))?;
        set_attr(&group, "actor", uid.actor)?;
        set_attr(&group, "env", uid.env)?;
        set_attr(&group, "counter", uid.counter)?;
        let frame_shape = chunk.frame.shape[1..].to_vec();
        set_attr(&group, "frame_height", frame_shape[0] as u32)?;
        set_attr(&group, "frame_width", frame_shape[1] as u32)?;
        let level = (self.opts.deflate > 0).then_some(self.opts.deflate);
        let steps = chunk.steps().try_map(|field, array| {
            Column::new(&group, field.name, Elem::of(field.dtype), &array.shape[1..], level)
        })?;
        let ds = Datasets {
            steps,
            params_version: Column::new(&group, schema::PARAMS_VERSION, Elem::U64, &[], level)?,
            ram: match chunk.ram {
                Some(_) => Some(Column::new(&group, schema::RAM, Elem::U8, &[RAM_BYTES], level)?),
                None => None,
            },
            objects: match &chunk.objects {
                Some(o) => {
                    Some(Column::new(&group, schema::OBJECTS, Elem::F32, &o.shape[1..], level)?)
                }
                None => None,
            },
        };
        for field in schema::step_fields() {
            let Ok(d) = group.dataset(field.name) else { continue };
            set_str_attr(&d, "axes", &field.axes)?;
            set_str_attr(&d, "units", field.units)?;
            set_str_attr(&d, "description", field.description)?;
        }
        if let Some(objects) = ds.objects.as_ref().map(Column::dataset) {
            let names: Vec<VarLenUnicode> = chunk
                .object_names
                .iter()
                .map(|s| s.parse().map_err(|e| anyhow!("object name {s:?}: {e:?}")))
                .collect::<Result<_>>()?;
            objects
                .new_attr::<VarLenUnicode>()
                .shape(names.len())
                .create("object_names")?
                .write_raw(&names)?;
        }
        Ok(OpenEpisode {
            file,
            group,
            ds,
            path,
            frame_shape,
            object_names: chunk.object_names.clone(),
            steps: 0,
            next_sequence: chunk.sequence,
            missing_chunks: chunk.sequence,
            params_first: chunk.params_version,
            params_last: chunk.params_version,
            last_seen: Instant::now(),
        })
    }

    /// Writes the episode's end attributes, closes its staging file and copies
    /// it into the open segment.
    fn finish(
        &mut self,
        uid: EpisodeUid,
        end: Option<EpisodeEnd>,
        reason: &'static str,
    ) -> Result<EpisodeSummary> {
        let ep = self.open.remove(&uid).ok_or_else(|| anyhow!("episode {uid} is not open"))?;
        self.finished.insert(uid);
        let OpenEpisode {
            file,
            group,
            ds,
            path,
            steps,
            missing_chunks,
            params_first,
            params_last,
            ..
        } = ep;
        let mut ds = ds;
        ds.finish(self.opts.compress_threads)?;
        drop(ds);
        let summary = EpisodeSummary {
            uid,
            steps,
            episode_return: end.map(|e| e.episode_return).unwrap_or(f64::NAN),
            complete: end.map(|e| e.complete).unwrap_or(false),
            end_reason: reason,
        };
        set_attr(&group, "episode_return", summary.episode_return)?;
        set_attr(&group, "length", end.map(|e| e.length).unwrap_or(steps))?;
        set_attr(&group, "steps", steps)?;
        set_attr(&group, "complete", u8::from(summary.complete))?;
        set_str_attr(&group, "end_reason", reason)?;
        set_attr(&group, "missing_chunks", missing_chunks)?;
        set_attr(&group, "params_version_first", params_first)?;
        set_attr(&group, "params_version_last", params_last)?;
        set_attr(&group, "finished_unix", now_unix())?;
        drop(group);
        let segment = self.segment_name()?;
        set_str_attr(&file, "segment", &segment)?;
        file.close().with_context(|| format!("close {}", path.display()))?;
        self.stats.episodes += 1;
        if !summary.complete {
            self.stats.incomplete += 1;
        }
        self.move_to_segment(&path)?;
        Ok(summary)
    }

    /// File name of the open segment (opening one if none is).
    fn segment_name(&mut self) -> Result<String> {
        Ok(self.segment()?.path.file_name().unwrap().to_string_lossy().into_owned())
    }

    /// Copies the closed staging file `path` (which already names the segment
    /// in its root attribute `segment`) into the open segment. The staging file
    /// is only read, so a crash here cannot damage it.
    fn move_to_segment(&mut self, path: &Path) -> Result<()> {
        let segment = self.segment()?;
        let staged = hdf5::File::open(path)?;
        let group = staged.group(STAGING_GROUP)?;
        let uid = str_attr(&group, "uid")?;
        drop(group);
        let mut name = uid.clone();
        let mut k = 1;
        while segment.episodes.link_exists(&name) {
            name = format!("{uid}-dup{k}");
            k += 1;
        }
        copy_object(&staged, STAGING_GROUP, &segment.episodes, &name)?;
        staged.close()?;
        segment.staged.push(path.to_owned());
        Ok(())
    }

    fn segment(&mut self) -> Result<&mut Segment> {
        if self.segment.is_none() {
            let k = self.next_segment;
            self.next_segment += 1;
            let path = self.opts.run_dir.join(format!("{SEGMENT_PREFIX}{k:05}{SEGMENT_SUFFIX}"));
            let partial = PathBuf::from(format!("{}{PARTIAL_SUFFIX}", path.display()));
            let file = hdf5::File::create(&partial)
                .with_context(|| format!("create {}", partial.display()))?;
            set_str_attr(&file, "format", schema::FORMAT)?;
            set_attr(&file, "format_version", schema::FORMAT_VERSION)?;
            set_str_attr(&file, "run_id", &self.opts.run_id)?;
            let cfg = self.model_config();
            set_str_attr(&file, "model_config", &serde_json::to_string(&cfg)?)?;
            set_str_attr(&file, "env", &self.opts.env.to_string())?;
            set_attr(&file, "created_unix", now_unix())?;
            set_attr(&file, "segment_index", k)?;
            set_str_attr(&file, "recorder_version", env!("CARGO_PKG_VERSION"))?;
            set_str_attr(
                &file,
                "layout",
                "episodes/<uid>/{frame,action,reward,baseline,policy_logits,attention,attention_content,\
                 attention_place,params_version[,ram,objects]}; first axis = step; see docs/hdf5-schema.md",
            )?;
            let episodes = file.create_group(EPISODES)?;
            self.segment = Some(Segment {
                file,
                episodes,
                partial,
                path,
                opened: Instant::now(),
                staged: Vec::new(),
            });
        }
        Ok(self.segment.as_mut().expect("just opened"))
    }

    /// Closes the open segment: flush, fsync, rename to its final name, then
    /// delete the staging files it made redundant.
    pub fn close_segment(&mut self) -> Result<Option<PathBuf>> {
        let Some(segment) = self.segment.take() else { return Ok(None) };
        let Segment { file, episodes, partial, path, staged, .. } = segment;
        drop(episodes);
        file.close().with_context(|| format!("close {}", partial.display()))?;
        std::fs::File::open(&partial)?.sync_all()?;
        std::fs::rename(&partial, &path)
            .with_context(|| format!("rename {}", partial.display()))?;
        fsync_dir(&self.opts.run_dir);
        for p in &staged {
            let _ = std::fs::remove_file(p);
        }
        self.stats.segments += 1;
        info!(segment = %path.display(), episodes = staged.len(), "closed segment");
        Ok(Some(path))
    }

    /// Periodic work: rotation of the segment and closing of idle episodes.
    pub fn tick(&mut self) -> Result<()> {
        let now = Instant::now();
        let idle: Vec<EpisodeUid> = self
            .open
            .iter()
            .filter(|(_, e)| now.duration_since(e.last_seen) >= self.opts.episode_timeout)
            .map(|(&uid, _)| uid)
            .collect();
        for uid in idle {
            warn!(uid = %uid, "no chunk for {:?}: closing the episode as incomplete", self.opts.episode_timeout);
            self.finish(uid, None, "timeout")?;
        }
        if self.segment.as_ref().is_some_and(|s| s.opened.elapsed() >= self.opts.rotate_every) {
            self.close_segment()?;
        }
        Ok(())
    }

    /// Closes every open episode as incomplete and the segment (Ctrl-C).
    pub fn shutdown(mut self) -> Result<Stats> {
        let uids: Vec<EpisodeUid> = self.open.keys().copied().collect();
        for uid in uids {
            if let Err(e) = self.finish(uid, None, "recorder_shutdown") {
                warn!(uid = %uid, "cannot close episode: {e:#}");
            }
        }
        self.close_segment()?;
        Ok(self.stats.clone())
    }
}

/// Raw bytes of the per-step arrays of a chunk (what compression works on),
/// with the params version stored per step.
pub fn raw_bytes(chunk: &EpisodeChunk) -> u64 {
    (chunk.bulk_bytes() + 8 * chunk.len()) as u64
}

fn write_chunk(ds: &mut Datasets, chunk: &EpisodeChunk, threads: usize) -> Result<()> {
    let mut b = ChunkJobs::default();
    for ((_, column), (_, array)) in ds.steps.iter_mut().zip(chunk.steps().iter()) {
        column.push(&array.data, &mut b)?;
    }
    let versions: Vec<u8> =
        std::iter::repeat_n(chunk.params_version.to_le_bytes(), chunk.len()).flatten().collect();
    ds.params_version.push(&versions, &mut b)?;
    if let (Some(d), Some(a)) = (&mut ds.ram, &chunk.ram) {
        d.push(&a.data, &mut b)?;
    }
    if let (Some(d), Some(a)) = (&mut ds.objects, &chunk.objects) {
        d.push(&a.data, &mut b)?;
    }
    b.run(threads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::config::Preset;
    use wire::protocol::EPISODE_STEPS;

    /// A dataset's elements as the wire's little-endian bytes.
    fn dataset_bytes(ds: &hdf5::Dataset, elem: Elem) -> Vec<u8> {
        match elem {
            Elem::U8 => ds.read_raw::<u8>().unwrap(),
            Elem::I64 => {
                ds.read_raw::<i64>().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect()
            }
            Elem::U64 => {
                ds.read_raw::<u64>().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect()
            }
            Elem::F32 => {
                ds.read_raw::<f32>().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect()
            }
        }
    }

    /// Every field of the chunk layout, compressed or not, reads back as the
    /// chunks sent it, across whole and partial HDF5 chunks (300 steps: one
    /// whole chunk of 256 scalars and a partial one).
    #[test]
    fn every_layout_field_reads_back_as_sent_with_and_without_compression() {
        let cfg = ModelConfig::preset(Preset::Small, 3);
        for deflate in [0, 4] {
            let dir = tempfile::tempdir().unwrap();
            let mut writer = Writer::new(WriterOptions {
                run_dir: dir.path().to_path_buf(),
                run_id: "r".into(),
                model: ModelChoice::preset(Preset::Small),
                model_config: Some(cfg.clone()),
                num_actions: None,
                env: serde_json::json!({}),
                rotate_every: Duration::from_secs(3600),
                deflate,
                episode_timeout: Duration::from_secs(3600),
                compress_threads: 2,
            })
            .unwrap();
            let mut chunks = vec![
                wire::fixtures::episode_chunk(&cfg, 300, (20, 16), 1, false),
                wire::fixtures::episode_chunk(&cfg, 45, (20, 16), 2, true),
            ];
            chunks[1].uid = chunks[0].uid;
            chunks[1].sequence = 1;
            for chunk in &chunks {
                writer.accept(chunk).unwrap();
            }
            writer.shutdown().unwrap();
            let segments = closed_segments(dir.path()).unwrap();
            assert_eq!(segments.len(), 1, "deflate {deflate}");
            let file = hdf5::File::open(&segments[0]).unwrap();
            let group =
                file.group(&format!("{EPISODES}/{}", schema::uid_name(&chunks[0].uid))).unwrap();
            for field in EPISODE_STEPS {
                let ds = group.dataset(field.name).unwrap();
                let sent: Vec<u8> = chunks
                    .iter()
                    .flat_map(|c| {
                        c.steps().iter().find(|(f, _)| f.name == field.name).unwrap().1.data.clone()
                    })
                    .collect();
                assert_eq!(ds.shape()[0], 345, "{} (deflate {deflate})", field.name);
                assert!(
                    dataset_bytes(&ds, Elem::of(field.dtype)) == sent,
                    "{} differs (deflate {deflate})",
                    field.name
                );
            }
            let versions = dataset_bytes(&group.dataset("params_version").unwrap(), Elem::U64);
            assert_eq!(versions.len(), 345 * 8);
        }
    }

    /// Without meta.json (the recorder may start before the learner writes
    /// it), the architecture comes from the run's flags, overrides included:
    /// a run with `--heads N` has chunks of N heads, which a config built
    /// from the preset alone would refuse.
    #[test]
    fn without_meta_json_the_flags_overrides_decide_the_shapes() {
        let heads = ModelConfig::small(3).heads + 1;
        let choice = ModelChoice { heads: Some(heads), ..ModelChoice::preset(Preset::Small) };
        let cfg = choice.config(3);
        assert_eq!(cfg.heads, heads);
        let dir = tempfile::tempdir().unwrap();
        let mut writer = Writer::new(WriterOptions {
            run_dir: dir.path().to_path_buf(),
            run_id: "r".into(),
            model: choice,
            model_config: None,
            num_actions: None,
            env: serde_json::json!({}),
            rotate_every: Duration::from_secs(3600),
            deflate: 0,
            episode_timeout: Duration::from_secs(3600),
            compress_threads: 1,
        })
        .unwrap();
        let chunk = wire::fixtures::episode_chunk(&cfg, 10, (42, 42), 1, true);
        let outcome = writer.accept(&chunk).unwrap();
        assert!(!matches!(outcome, Outcome::Dropped(_)), "{outcome:?}");
        assert_eq!(writer.model_config(), Some(cfg));
        let preset_only =
            wire::fixtures::episode_chunk(&ModelConfig::small(3), 10, (42, 42), 2, true);
        assert!(matches!(writer.accept(&preset_only).unwrap(), Outcome::Dropped(_)));
        writer.shutdown().unwrap();
    }
}
