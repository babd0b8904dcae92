//! Small helpers over the `hdf5` crate: attributes, extendible datasets, the
//! [`Column`] that fills one chunk by chunk with compression off the HDF5
//! thread, and the raw calls the high-level API lacks (object copy, unlink).

use std::ffi::CString;

use anyhow::{bail, Context, Result};
use hdf5::types::VarLenUnicode;
use hdf5::{Extent, H5Type, Location, SimpleExtents};
use wire::protocol::DType;

/// Writes (or replaces) a scalar attribute.
pub fn set_attr<T: H5Type>(loc: &Location, name: &str, value: T) -> Result<()> {
    if loc.attr(name).is_ok() {
        loc.delete_attr(name)?;
    }
    loc.new_attr::<T>()
        .create(name)?
        .write_scalar(&value)
        .with_context(|| format!("attribute {name}"))?;
    Ok(())
}

/// Writes (or replaces) a variable-length UTF-8 string attribute (h5py reads it as `str`).
pub fn set_str_attr(loc: &Location, name: &str, value: &str) -> Result<()> {
    let value: VarLenUnicode =
        value.parse().map_err(|e| anyhow::anyhow!("attribute {name}: {e:?}"))?;
    set_attr(loc, name, value)
}

pub fn str_attr(loc: &Location, name: &str) -> Result<String> {
    let v: VarLenUnicode =
        loc.attr(name)?.read_scalar().with_context(|| format!("attribute {name}"))?;
    Ok(v.as_str().to_owned())
}

pub fn attr<T: H5Type>(loc: &Location, name: &str) -> Result<T> {
    loc.attr(name)?.read_scalar::<T>().with_context(|| format!("attribute {name}"))
}

/// Creates an extendible dataset of shape [0, rest...], chunked as [chunk_steps, rest...].
pub fn create_extendible<T: H5Type>(
    group: &hdf5::Group,
    name: &str,
    rest: &[usize],
    chunk_steps: usize,
    deflate: Option<u8>,
    shuffle: bool,
) -> Result<hdf5::Dataset> {
    let mut extents = vec![Extent::new(0, None)];
    extents.extend(rest.iter().map(|&d| Extent::from(d)));
    let mut chunk = vec![chunk_steps.max(1)];
    chunk.extend_from_slice(rest);
    let mut builder = group.new_dataset::<T>().chunk(chunk);
    if shuffle {
        builder = builder.shuffle();
    }
    if let Some(level) = deflate {
        builder = builder.deflate(level);
    }
    builder
        .shape(SimpleExtents::from(extents))
        .create(name)
        .with_context(|| format!("create dataset {name}"))
}

/// Copies object `src_name` under `src` (with its attributes and raw, still
/// compressed, chunks) to `dst_name` under `dst`: H5Ocopy.
pub fn copy_object(src: &Location, src_name: &str, dst: &Location, dst_name: &str) -> Result<()> {
    let s = CString::new(src_name)?;
    let d = CString::new(dst_name)?;
    let rc = hdf5::sync::sync(|| unsafe {
        hdf5_sys::h5o::H5Ocopy(
            src.id(),
            s.as_ptr(),
            dst.id(),
            d.as_ptr(),
            hdf5_sys::h5p::H5P_DEFAULT,
            hdf5_sys::h5p::H5P_DEFAULT,
        )
    });
    if rc < 0 {
        bail!("H5Ocopy {src_name} -> {dst_name} failed");
    }
    Ok(())
}

/// Writes one already filtered (shuffled and deflated) chunk at `offset`,
/// bypassing HDF5's filter pipeline: H5Dwrite_chunk. Lets the recorder
/// compress chunks on several threads while HDF5 itself stays single-threaded.
pub fn write_raw_chunk(ds: &hdf5::Dataset, offset: &[u64], data: &[u8]) -> Result<()> {
    let rc = hdf5::sync::sync(|| unsafe {
        hdf5_sys::h5d::H5Dwrite_chunk(
            ds.id(),
            hdf5_sys::h5p::H5P_DEFAULT,
            0,
            offset.as_ptr(),
            data.len(),
            data.as_ptr().cast(),
        )
    });
    if rc < 0 {
        bail!("H5Dwrite_chunk at {offset:?} failed");
    }
    Ok(())
}

/// What HDF5's shuffle + deflate filters would produce for one chunk:
/// bytes regrouped by significance (for `elem`-byte elements), then a zlib stream.
pub fn filter_chunk(raw: &[u8], elem: usize, shuffle: bool, level: u8) -> Vec<u8> {
    use std::io::Write;
    let shuffled;
    let input = if shuffle && elem > 1 {
        let n = raw.len() / elem;
        let mut out = vec![0u8; raw.len()];
        for (i, e) in raw.chunks_exact(elem).enumerate() {
            for (j, &b) in e.iter().enumerate() {
                out[j * n + i] = b;
            }
        }
        shuffled = out;
        &shuffled[..]
    } else {
        raw
    };
    let mut enc = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(input.len() / 4),
        flate2::Compression::new(level.into()),
    );
    enc.write_all(input).expect("in-memory write");
    enc.finish().expect("in-memory write")
}

/// The element type of a [`Column`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    U8,
    I64,
    U64,
    F32,
}

impl Elem {
    /// The dataset type of a wire array's dtype.
    pub fn of(dtype: DType) -> Elem {
        match dtype {
            DType::U8 => Elem::U8,
            DType::I64 => Elem::I64,
            DType::F32 => Elem::F32,
        }
    }

    pub fn size(self) -> usize {
        match self {
            Elem::U8 => 1,
            Elem::I64 | Elem::U64 => 8,
            Elem::F32 => 4,
        }
    }
}

/// An extendible dataset filled step by step with little-endian bytes (as
/// the wire carries them), fed whole chunks only: rows wait in `pending`
/// until a chunk is full, so no chunk is ever written twice. (Rewriting a
/// chunk frees its old space, which HDF5 may reuse before the next flush
/// while the flushed metadata still points there: a `kill -9` would then
/// leave wrong data behind.) Chunks are filtered (shuffle + deflate) by
/// [`filter_chunk`] on worker threads when compressed, and written with
/// [`write_raw_chunk`].
pub struct Column {
    ds: hdf5::Dataset,
    elem: usize,
    chunk_steps: usize,
    /// Bytes of one step.
    row: usize,
    pending: Vec<u8>,
    /// (gzip level, shuffle) when compressed.
    filter: Option<(u8, bool)>,
}

/// Steps per chunk for steps of `row` bytes: one frame (about 100 KB for the
/// paper's 210x160 RGB); 8 steps of attention maps (about 70 KB for the
/// paper's 4 x 27 x 20); 256 steps of scalars and logits.
fn chunk_steps(row: usize) -> usize {
    match row {
        r if r > 16 * 1024 => 1,
        r if r > 256 => 8,
        _ => 256,
    }
}

/// Chunks gathered from all columns of one episode chunk, filtered together.
#[derive(Default)]
pub struct ChunkJobs {
    targets: Vec<(hdf5::Dataset, Vec<u64>)>,
    jobs: Vec<ChunkJob>,
}

/// One chunk to filter (off the HDF5 thread) and then write.
struct ChunkJob {
    raw: Vec<u8>,
    elem: usize,
    filter: Option<(u8, bool)>,
}

impl ChunkJobs {
    /// Filters the chunks on `threads` threads, then writes each to its dataset.
    pub fn run(mut self, threads: usize) -> Result<()> {
        if self.jobs.is_empty() {
            return Ok(());
        }
        let per = self.jobs.len().div_ceil(threads.max(1)).max(1);
        std::thread::scope(|s| {
            for part in self.jobs.chunks_mut(per) {
                s.spawn(move || {
                    for j in part {
                        if let Some((level, shuffle)) = j.filter {
                            j.raw = filter_chunk(&j.raw, j.elem, shuffle, level);
                        }
                    }
                });
            }
        });
        for ((ds, offset), job) in self.targets.iter().zip(&self.jobs) {
            write_raw_chunk(ds, offset, &job.raw)?;
        }
        Ok(())
    }
}

impl Column {
    /// A dataset `name` of `elem`s with steps of shape `rest`, compressed with
    /// gzip at `level` (shuffled first for multi-byte elements) or not at all.
    pub fn new(
        group: &hdf5::Group,
        name: &str,
        elem: Elem,
        rest: &[usize],
        level: Option<u8>,
    ) -> Result<Self> {
        let row = rest.iter().product::<usize>().max(1) * elem.size();
        let steps = chunk_steps(row);
        // Shuffle only under compression: chunks are written raw, so the
        // dataset's filters must be exactly what filter_chunk applied.
        let shuffle = level.is_some() && elem.size() > 1;
        let ds = match elem {
            Elem::U8 => create_extendible::<u8>(group, name, rest, steps, level, shuffle),
            Elem::I64 => create_extendible::<i64>(group, name, rest, steps, level, shuffle),
            Elem::U64 => create_extendible::<u64>(group, name, rest, steps, level, shuffle),
            Elem::F32 => create_extendible::<f32>(group, name, rest, steps, level, shuffle),
        }?;
        Ok(Column {
            ds,
            elem: elem.size(),
            chunk_steps: steps,
            row,
            pending: Vec::new(),
            filter: level.map(|l| (l, shuffle)),
        })
    }

    pub fn dataset(&self) -> &hdf5::Dataset {
        &self.ds
    }

    /// Adds whole steps of little-endian bytes; whole chunks go to `jobs`.
    pub fn push(&mut self, bytes: &[u8], jobs: &mut ChunkJobs) -> Result<()> {
        if !bytes.len().is_multiple_of(self.row) {
            bail!("{} bytes are not whole steps of {} bytes", bytes.len(), self.row);
        }
        self.pending.extend_from_slice(bytes);
        self.take(false, jobs)
    }

    /// Moves whole chunks (with `all`, also the last partial one) out of `pending`.
    pub fn take(&mut self, all: bool, jobs: &mut ChunkJobs) -> Result<()> {
        let chunk_len = self.row * self.chunk_steps;
        let n = if all { self.pending.len() } else { self.pending.len() / chunk_len * chunk_len };
        if n == 0 {
            return Ok(());
        }
        let mut shape = self.ds.shape();
        let old = shape[0];
        shape[0] = old + n / self.row;
        self.ds.resize(shape.clone())?;
        for (k, piece) in self.pending[..n].chunks(chunk_len).enumerate() {
            let mut raw = piece.to_vec();
            raw.resize(chunk_len, 0); // a partial last chunk is stored full-size
            let mut offset = vec![0u64; shape.len()];
            offset[0] = (old + k * self.chunk_steps) as u64;
            jobs.targets.push((self.ds.clone(), offset));
            jobs.jobs.push(ChunkJob { raw, elem: self.elem, filter: self.filter });
        }
        self.pending.drain(..n);
        Ok(())
    }
}
