//! Reading one recorded episode's maps, frames and objects from HDF5.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use hdf5::types::VarLenUnicode;
use ndarray::{s, Array3, Array4};

use crate::h5util::attr;
use crate::reader::EpisodeRef;
use crate::schema::EPISODES;

use super::*;

/// An episode open for reading: its objects and versions in memory, its maps on disk.
pub struct OpenEpisode {
    pub episode: Episode,
    attention: hdf5::Dataset,
    _file: hdf5::File,
}

impl OpenEpisode {
    /// Attention maps of steps `t0..t1`, f32 [t1 - t0, heads, h, w].
    pub fn maps(&self, t0: usize, t1: usize) -> Result<Vec<f32>> {
        let a: Array4<f32> = self.attention.read_slice(s![t0..t1, .., .., ..])?;
        Ok(a.into_iter().collect())
    }
}

/// Opens one episode; `Ok(None)` when it has no `objects` dataset.
pub fn read_episode(ep: &EpisodeRef) -> Result<Option<OpenEpisode>> {
    let where_ = || format!("episode {} in {}", ep.name, ep.file.display());
    let f = hdf5::File::open(&ep.file).with_context(|| format!("open {}", ep.file.display()))?;
    let g = f.group(&format!("{EPISODES}/{}", ep.name)).with_context(where_)?;
    let Ok(objects) = g.dataset(crate::schema::OBJECTS) else { return Ok(None) };
    let att = g.dataset("attention").with_context(|| {
        format!("{}: no `attention` dataset (not written by `recorder serve`?)", where_())
    })?;
    let shape = att.shape();
    if shape.len() != 4 {
        bail!("{}: `attention` has shape {shape:?}, expected [T, heads, h, w]", where_());
    }
    let (heads, h, w) = (shape[1], shape[2], shape[3]);
    let names: Vec<VarLenUnicode> = objects
        .attr("object_names")
        .with_context(|| format!("{}: `objects` has no `object_names` attribute", where_()))?
        .read_raw()?;
    let object_names: Vec<String> = names.iter().map(|n| n.as_str().to_owned()).collect();
    let oshape = objects.shape();
    if oshape.len() != 3 || oshape[1] != object_names.len() || oshape[2] != 2 {
        bail!(
            "{}: `objects` has shape {oshape:?} for {} names, expected [T, K, 2]",
            where_(),
            object_names.len()
        );
    }
    let versions: Vec<u64> = g
        .dataset(crate::schema::PARAMS_VERSION)
        .with_context(|| format!("{}: no `params_version` dataset", where_()))?
        .read_raw()?;
    let frame =
        (attr::<u32>(&g, "frame_height")? as usize, attr::<u32>(&g, "frame_width")? as usize);
    let t_len = shape[0].min(oshape[0]).min(versions.len());
    let o: Array3<f32> = objects.read_slice(s![0..t_len, .., ..])?;
    Ok(Some(OpenEpisode {
        episode: Episode {
            grid: Grid::new((h, w), frame),
            heads,
            objects: o.into_iter().collect(),
            object_names,
            params_version: versions[..t_len].to_vec(),
        },
        attention: att,
        _file: f,
    }))
}

/// The episodes' params versions (first, last) from their attributes.
pub(super) fn version_range(episodes: &[EpisodeRef]) -> Result<(u64, u64)> {
    let (mut lo, mut hi) = (u64::MAX, 0);
    let mut open: HashMap<PathBuf, hdf5::File> = HashMap::new();
    for ep in episodes {
        if !open.contains_key(&ep.file) {
            open.insert(ep.file.clone(), hdf5::File::open(&ep.file)?);
        }
        let g = open[&ep.file].group(&format!("{EPISODES}/{}", ep.name))?;
        lo = lo.min(attr::<u64>(&g, "params_version_first")?);
        hi = hi.max(attr::<u64>(&g, "params_version_last")?);
    }
    Ok((lo.min(hi), hi))
}
