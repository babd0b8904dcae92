//! Small helpers over the `hdf5` crate: attributes, extendible datasets and
//! the raw calls the high-level API lacks (object copy, unlink).

use std::ffi::CString;

use anyhow::{bail, Context, Result};
use hdf5::types::VarLenUnicode;
use hdf5::{Extent, H5Type, Location, SimpleExtents, SliceOrIndex};

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

/// Appends `data` (row-major, `n` rows of the dataset's trailing shape) to an
/// extendible dataset whose first axis is the step.
pub fn append<T: H5Type>(ds: &hdf5::Dataset, data: &[T]) -> Result<()> {
    let shape = ds.shape();
    let row: usize = shape[1..].iter().product();
    if row == 0 || !data.len().is_multiple_of(row) {
        bail!("{} values do not fill rows of {:?}", data.len(), &shape[1..]);
    }
    let n = data.len() / row;
    if n == 0 {
        return Ok(());
    }
    let old = shape[0];
    let mut new_shape = shape.clone();
    new_shape[0] = old + n;
    ds.resize(new_shape.clone())?;
    let mut view_shape = vec![n];
    view_shape.extend_from_slice(&shape[1..]);
    let view = ndarray::ArrayViewD::from_shape(view_shape, data)?;
    let mut sel: Vec<SliceOrIndex> = vec![(old..old + n).into()];
    sel.extend((1..shape.len()).map(|_| SliceOrIndex::from(..)));
    ds.write_slice(view, hdf5::Hyperslab::from(sel))?;
    Ok(())
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
