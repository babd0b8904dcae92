//! The recorder's TensorBoard events, in `runs/<xpid>/tb/recorder/` (a run of
//! its own beside the learner's scalars in `tb/`): each recorded episode's
//! return, and every `--tensorboard-picture-every`-th episode a picture of
//! one step as `recorder render`'s grid shows it (the frame and each head's
//! map over it), so the attention can be watched becoming focused while a run
//! trains. The step axis is the learner's params version the episode ended
//! with (the recorder does not know the frame count). The file is created
//! with the first recorded episode, flushed every 30 s and when the recorder
//! stops.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use wire::events::EventFile;
use wire::protocol::EpisodeChunk;

use crate::image::Rgb;
use crate::render::step_grid;
use crate::writer::EpisodeSummary;

/// Scalar tag of a recorded episode's return.
pub const RETURN_TAG: &str = "recorder/episode_return";
/// Image tag of the attention pictures.
pub const PICTURE_TAG: &str = "recorder/attention";

pub struct RecorderBoard {
    dir: PathBuf,
    picture_every: u64,
    episodes: u64,
    file: Option<EventFile>,
}

impl RecorderBoard {
    /// Events for the run at `run_root`; a picture every `picture_every`-th
    /// recorded episode (0: none).
    pub fn new(run_root: &Path, picture_every: u64) -> Self {
        RecorderBoard {
            dir: run_root.join("tb").join("recorder"),
            picture_every,
            episodes: 0,
            file: None,
        }
    }

    /// The event file, created with the first recorded episode.
    fn file(&mut self) -> Result<&mut EventFile> {
        if self.file.is_none() {
            self.file = Some(EventFile::create(&self.dir, "recorder")?);
        }
        Ok(self.file.as_mut().expect("just made"))
    }

    /// A finished episode, with its last chunk (whose middle step is the
    /// picture's when it is this episode's turn).
    pub fn episode(&mut self, summary: &EpisodeSummary, last: &EpisodeChunk) -> Result<()> {
        let step = last.params_version as i64;
        self.episodes += 1;
        if summary.episode_return.is_finite() {
            self.file()?.scalar(step, RETURN_TAG, summary.episode_return as f32)?;
        }
        if self.picture_every > 0
            && (self.episodes - 1).is_multiple_of(self.picture_every)
            && !last.is_empty()
        {
            let picture = picture(last)?;
            let size = (picture.width, picture.height);
            self.file()?.image(step, PICTURE_TAG, size, picture.png_bytes()?)?;
        }
        Ok(self.file()?.flush_if_due()?)
    }

    pub fn flush(&mut self) -> Result<()> {
        match &mut self.file {
            Some(file) => Ok(file.flush()?),
            None => Ok(()),
        }
    }
}

/// The middle step of `chunk` (validated) as `recorder render`'s grid (frame scaled to
/// about 160 px high, bias 0.3 as `render`'s default).
fn picture(chunk: &EpisodeChunk) -> Result<Rgb> {
    let i = chunk.len() / 2;
    let (heads, grid) = match chunk.attention.shape[..] {
        [_, heads, rows, columns] => (heads, (rows, columns)),
        _ => return Err(anyhow!("attention of shape {:?}", chunk.attention.shape)),
    };
    let (height, width) = (chunk.frame.shape[1], chunk.frame.shape[2]);
    let step_bytes = height * width * 3;
    let frame = Rgb::from_frame(width, height, &chunk.frame.data[i * step_bytes..][..step_bytes]);
    let maps = chunk.attention.to_f32("attention")?;
    let cells = grid.0 * grid.1;
    let scale = (160 / height.max(1)).max(1);
    let (grid_image, _) = step_grid(
        &frame,
        &format!("v{}", chunk.params_version),
        heads,
        |h| &maps[(i * heads + h) * cells..][..cells],
        grid,
        0.3,
        scale,
    );
    Ok(grid_image)
}
