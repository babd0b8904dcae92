//! Finds and loads recorded episodes from closed segment files, for the
//! offline subcommands (`inspect`, `render`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ndarray::s;

use crate::h5util::{attr, str_attr};
use crate::schema::EPISODES;
use crate::writer::closed_segments;

/// One episode group in one segment file.
#[derive(Clone, Debug)]
pub struct EpisodeRef {
    pub file: PathBuf,
    /// Group name under `episodes/` (the uid, with a `-dupK` suffix if repeated).
    pub name: String,
    pub steps: u64,
    pub episode_return: f64,
    pub complete: bool,
    pub end_reason: String,
    pub params_version_last: u64,
    pub finished_unix: f64,
}

/// The segment files named by `paths`: a run directory stands for its closed
/// segments, a file for itself.
pub fn segment_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(closed_segments(p)?);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            bail!("{} does not exist", p.display());
        }
    }
    Ok(files)
}

pub fn list_episodes(paths: &[PathBuf]) -> Result<Vec<EpisodeRef>> {
    let mut out = Vec::new();
    for file in segment_files(paths)? {
        let f = hdf5::File::open(&file).with_context(|| format!("open {}", file.display()))?;
        let group = f
            .group(EPISODES)
            .with_context(|| format!("{}: no group {EPISODES}", file.display()))?;
        for name in group.member_names()? {
            let g = group.group(&name)?;
            out.push(EpisodeRef {
                file: file.clone(),
                steps: attr(&g, "steps")?,
                episode_return: attr(&g, "episode_return")?,
                complete: attr::<u8>(&g, "complete")? != 0,
                end_reason: str_attr(&g, "end_reason")?,
                params_version_last: attr(&g, "params_version_last")?,
                finished_unix: attr(&g, "finished_unix")?,
                name,
            });
        }
    }
    Ok(out)
}

/// Picks an episode: `best` (highest return), `latest` (finished last) or a uid.
pub fn select<'a>(episodes: &'a [EpisodeRef], which: &str) -> Result<&'a EpisodeRef> {
    let pick = match which {
        "best" => episodes
            .iter()
            .filter(|e| e.episode_return.is_finite() && e.steps > 0)
            .max_by(|a, b| a.episode_return.total_cmp(&b.episode_return)),
        "latest" => episodes
            .iter()
            .filter(|e| e.steps > 0)
            .max_by(|a, b| a.finished_unix.total_cmp(&b.finished_unix)),
        uid => episodes.iter().find(|e| e.name == uid),
    };
    match pick {
        Some(e) => Ok(e),
        None if episodes.is_empty() => bail!("no recorded episodes found"),
        None => bail!(
            "no episode {which:?} among {} recorded episodes (try `recorder inspect`)",
            episodes.len()
        ),
    }
}

/// The steps of one episode that a render needs.
pub struct EpisodeData {
    /// Indices of the loaded steps within the episode.
    pub steps: Vec<usize>,
    pub height: usize,
    pub width: usize,
    pub heads: usize,
    pub grid: (usize, usize),
    /// u8 [n, H, W, 3]
    pub frames: Vec<u8>,
    /// f32 [n, heads, h, w]
    pub attention: Vec<f32>,
    pub content: Vec<f32>,
    pub place: Vec<f32>,
}

impl EpisodeData {
    pub fn frame(&self, i: usize) -> &[u8] {
        let len = self.height * self.width * 3;
        &self.frames[i * len..(i + 1) * len]
    }
    fn map_len(&self) -> usize {
        self.grid.0 * self.grid.1
    }
    pub fn map<'a>(&'a self, which: &'a [f32], i: usize, head: usize) -> &'a [f32] {
        let len = self.map_len();
        let at = (i * self.heads + head) * len;
        &which[at..at + len]
    }
}

/// Loads steps `start, start+stride, ...` (at most `max_steps`) of an episode.
pub fn load(ep: &EpisodeRef, start: usize, stride: usize, max_steps: usize) -> Result<EpisodeData> {
    let f = hdf5::File::open(&ep.file)?;
    let g = f.group(&format!("{EPISODES}/{}", ep.name))?;
    let frame = g.dataset("frame")?;
    let shape = frame.shape();
    let (t_len, height, width) = (shape[0], shape[1], shape[2]);
    let steps: Vec<usize> = (start..t_len).step_by(stride.max(1)).take(max_steps).collect();
    if steps.is_empty() {
        bail!("episode {} has {} steps; nothing from step {start}", ep.name, t_len);
    }
    let att = g.dataset("attention")?;
    let ashape = att.shape();
    let (heads, gh, gw) = (ashape[1], ashape[2], ashape[3]);
    let mut data = EpisodeData {
        steps: steps.clone(),
        height,
        width,
        heads,
        grid: (gh, gw),
        frames: Vec::with_capacity(steps.len() * height * width * 3),
        attention: Vec::new(),
        content: Vec::new(),
        place: Vec::new(),
    };
    let content = g.dataset("attention_content")?;
    let place = g.dataset("attention_place")?;
    for &t in &steps {
        let fr: ndarray::Array3<u8> = frame.read_slice(s![t, .., .., ..])?;
        data.frames.extend(fr.iter());
        for (ds, out) in
            [(&att, &mut data.attention), (&content, &mut data.content), (&place, &mut data.place)]
        {
            let m: ndarray::Array3<f32> = ds.read_slice(s![t, .., .., ..])?;
            out.extend(m.iter());
        }
    }
    Ok(data)
}

/// A printable table of episodes.
pub fn table(episodes: &[EpisodeRef]) -> String {
    let mut out = format!(
        "{:<22} {:>8} {:>10} {:>8} {:>17} {:>8}  {}\n",
        "uid", "steps", "return", "complete", "end", "params", "file"
    );
    for e in episodes {
        out.push_str(&format!(
            "{:<22} {:>8} {:>10.1} {:>8} {:>17} {:>8}  {}\n",
            e.name,
            e.steps,
            e.episode_return,
            if e.complete { "yes" } else { "no" },
            e.end_reason,
            e.params_version_last,
            e.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        ));
    }
    let total: u64 = episodes.iter().map(|e| e.steps).sum();
    out.push_str(&format!("{} episodes, {} steps\n", episodes.len(), total));
    out
}

pub fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}
