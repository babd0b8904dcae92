//! `recorder analyze`: how much of each head's attention falls on the objects
//! the environment reported, over training, against two baselines.
//!
//! For every recorded step, head and object kind (the object's name without a
//! `_<number>` suffix: `enemy_3` is an `enemy`):
//!
//! - **share**: the attention mass within `radius` frame pixels of the nearest
//!   object of the kind, each grid cell's mass placed at its centre;
//! - **peak distance**: frame pixels from the centre of the map's highest cell
//!   to the nearest object of the kind;
//! - **entropy** of the map, in nats (a head's, the same for every kind);
//!
//! and the same for two baselines: a **uniform** map (share = the fraction of
//! cell centres within the radius, peak distance = the mean distance over the
//! cells, as if the peak were a uniformly drawn cell, entropy = ln(h w)), and a
//! **time-shuffled** map (each map of an episode scored against the objects of
//! another step of the same episode, drawn by a seeded random cyclic
//! permutation, so no step keeps its own objects; its entropy is the map's).
//!
//! Cell (i, j) of an h x w grid over an H x W frame is centred at row
//! `(i + 0.5) H / h - 0.5`, column `(j + 0.5) W / w - 0.5`, in the coordinates
//! of the recorded objects (pixel (r, c) centred at (r, c)): the alignment
//! `recorder render` uses when it resizes maps onto frames. A step counts for
//! a kind when at least one object of the kind is present (not NaN); the
//! steps are grouped into buckets of equal width in params version, and each
//! table row is the mean over the steps of one bucket, head and kind.
//! docs/attention-analysis.md explains the measures for users.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdf5::types::VarLenUnicode;
use ndarray::{s, Array3, Array4};
use tracing::{info, warn};

use crate::h5util::attr;
use crate::image::Rgb;
use crate::plot::{lines_plot, Line};
use crate::reader::{list_episodes, EpisodeRef};
use crate::render::head_colour;
use crate::schema::EPISODES;

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// Run directories (their closed `episodes-*.h5`) or segment files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Radius in frame pixels of the disc around each object that counts as
    /// "on the object" (default: one grid cell, the larger of H/h and W/w).
    #[arg(long)]
    pub radius: Option<f32>,
    /// Number of params-version buckets (equal width from the lowest to the
    /// highest version recorded); 1 pools everything.
    #[arg(long, default_value_t = 8)]
    pub buckets: usize,
    /// Write the table as CSV to this file.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write a PNG of the share over training (one panel per object kind,
    /// one line per head, dashed baselines) to this file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Seed of the time shuffle.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Where the cells of an attention grid sit in the frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// Cells (h, w).
    pub cells: (usize, usize),
    /// Frame (H, W) in pixels.
    pub frame: (usize, usize),
    /// Centre (row, col) of each cell in frame pixels, row-major.
    pub centres: Vec<(f32, f32)>,
}

impl Grid {
    pub fn new(cells: (usize, usize), frame: (usize, usize)) -> Grid {
        let (h, w) = cells;
        let (sy, sx) = (frame.0 as f32 / h as f32, frame.1 as f32 / w as f32);
        let centres = (0..h)
            .flat_map(|i| {
                (0..w).map(move |j| ((i as f32 + 0.5) * sy - 0.5, (j as f32 + 0.5) * sx - 0.5))
            })
            .collect();
        Grid { cells, frame, centres }
    }

    /// One cell's larger side in frame pixels (the default radius).
    pub fn cell_size(&self) -> f32 {
        (self.frame.0 as f32 / self.cells.0 as f32).max(self.frame.1 as f32 / self.cells.1 as f32)
    }

    pub fn len(&self) -> usize {
        self.centres.len()
    }
}

/// Writes into `out` the distance in frame pixels from each cell centre to
/// the nearest of `points` (row, col). `points` must not be empty.
pub fn nearest_distance(grid: &Grid, points: &[(f32, f32)], out: &mut Vec<f32>) {
    debug_assert!(!points.is_empty());
    out.clear();
    out.extend(grid.centres.iter().map(|&(r, c)| {
        points
            .iter()
            .map(|&(pr, pc)| (r - pr) * (r - pr) + (c - pc) * (c - pc))
            .fold(f32::INFINITY, f32::min)
            .sqrt()
    }));
}

/// Share and peak distance of one map against one kind's distance field.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measures {
    /// Attention mass within the radius (the map is normalised first).
    pub share: f64,
    /// Distance from the highest cell's centre to the nearest object.
    pub peak_distance: f64,
}

/// The measures of `map` (one head, h * w cells) for the distance field `dist`.
pub fn measure(map: &[f32], dist: &[f32], radius: f32) -> Measures {
    let (mut total, mut within) = (0.0f64, 0.0f64);
    let mut peak = (0, f32::NEG_INFINITY);
    for (i, (&m, &d)) in map.iter().zip(dist).enumerate() {
        total += f64::from(m);
        if d <= radius {
            within += f64::from(m);
        }
        if m > peak.1 {
            peak = (i, m);
        }
    }
    Measures { share: within / total, peak_distance: f64::from(dist[peak.0]) }
}

/// What a uniform map scores: the fraction of cells within the radius, and
/// the mean distance (its peak is any cell, all equally likely).
pub fn uniform(dist: &[f32], radius: f32) -> Measures {
    let n = dist.len() as f64;
    Measures {
        share: dist.iter().filter(|&&d| d <= radius).count() as f64 / n,
        peak_distance: dist.iter().map(|&d| f64::from(d)).sum::<f64>() / n,
    }
}

/// Entropy in nats of a map (normalised first).
pub fn entropy(map: &[f32]) -> f64 {
    let total: f64 = map.iter().map(|&v| f64::from(v)).sum();
    -map.iter().map(|&v| f64::from(v) / total).filter(|&p| p > 0.0).map(|p| p * p.ln()).sum::<f64>()
}

/// The kind of an object: its name without a `_<number>` suffix.
pub fn kind_of(name: &str) -> &str {
    match name.rsplit_once('_') {
        Some((kind, n))
            if !kind.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            kind
        }
        _ => name,
    }
}

/// SplitMix64, for the shuffle (no dependency for six lines).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniformly drawn cyclic permutation of `0..n` (Sattolo's algorithm): for
/// n >= 2 no index maps to itself.
pub fn cyclic_permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    let mut state = seed;
    for i in (1..n).rev() {
        let j = (splitmix64(&mut state) % i as u64) as usize;
        p.swap(i, j);
    }
    p
}

/// The shuffle's seed for one episode: the run's seed and the episode's name,
/// so results do not depend on the order files are read in.
fn episode_seed(seed: u64, name: &str) -> u64 {
    name.bytes()
        .fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// Buckets of equal width over params versions `lo..=hi`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Buckets {
    pub lo: u64,
    pub width: u64,
    pub count: usize,
}

impl Buckets {
    pub fn new(lo: u64, hi: u64, count: usize) -> Buckets {
        let count = count.max(1);
        Buckets { lo, width: (hi.saturating_sub(lo)) / count as u64 + 1, count }
    }

    pub fn of(&self, version: u64) -> usize {
        ((version.saturating_sub(self.lo) / self.width) as usize).min(self.count - 1)
    }

    /// Versions (first, last) of bucket `b`.
    pub fn range(&self, b: usize) -> (u64, u64) {
        let first = self.lo + b as u64 * self.width;
        (first, first + self.width - 1)
    }
}

#[derive(Clone, Debug, Default)]
struct KindSums {
    present: u64,
    share: f64,
    peak: f64,
    share_uniform: f64,
    peak_uniform: f64,
    shuffled: u64,
    share_shuffled: f64,
    peak_shuffled: f64,
}

#[derive(Clone, Debug, Default)]
struct HeadSums {
    steps: u64,
    entropy: f64,
    entropy_uniform: f64,
}

#[derive(Clone, Debug, Default)]
struct BucketSums {
    steps: u64,
    version_sum: f64,
    episodes: u64,
}

/// One episode, read for the analysis (all but its attention maps, which
/// are read in blocks: a long Atari episode's maps can be hundreds of MB).
pub struct Episode {
    pub grid: Grid,
    pub heads: usize,
    /// f32 [T, K, 2]: (row, col) in frame pixels, NaN where absent.
    pub objects: Vec<f32>,
    pub object_names: Vec<String>,
    /// u64 [T]
    pub params_version: Vec<u64>,
}

impl Episode {
    pub fn steps(&self) -> usize {
        self.params_version.len()
    }
}

/// Steps of attention maps read at once.
const BLOCK: usize = 1024;

/// Sums of the measures over steps, by (bucket, head, kind).
pub struct Analysis {
    pub radius: f32,
    pub buckets: Buckets,
    /// Kinds in order of first appearance.
    pub kinds: Vec<String>,
    heads: usize,
    kind_sums: BTreeMap<(usize, usize, usize), KindSums>,
    head_sums: BTreeMap<(usize, usize), HeadSums>,
    bucket_sums: BTreeMap<usize, BucketSums>,
    /// Maps that were not a distribution (sum not positive and finite): skipped.
    pub bad_maps: u64,
}

/// One row of the table: means over the steps of a bucket, for one head and kind.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub params_first: u64,
    pub params_last: u64,
    /// Mean params version of the bucket's steps (the plot's x).
    pub params_mean: f64,
    pub head: usize,
    pub kind: String,
    /// Episodes with steps in the bucket.
    pub episodes: u64,
    /// Steps of the bucket (with a valid map of this head).
    pub steps: u64,
    /// Steps where an object of the kind was present.
    pub present: u64,
    /// Steps whose shuffled partner step had an object of the kind.
    pub shuffled: u64,
    pub share: f64,
    pub share_shuffled: f64,
    pub share_uniform: f64,
    pub peak_distance: f64,
    pub peak_distance_shuffled: f64,
    pub peak_distance_uniform: f64,
    pub entropy: f64,
    pub entropy_uniform: f64,
}

pub const CSV_COLUMNS: &str = "params_first,params_last,params_mean,head,kind,radius,episodes,\
steps,present,shuffled,share,share_shuffled,share_uniform,peak_distance,peak_distance_shuffled,\
peak_distance_uniform,entropy,entropy_uniform";

impl Analysis {
    pub fn new(radius: f32, buckets: Buckets) -> Analysis {
        Analysis {
            radius,
            buckets,
            kinds: Vec::new(),
            heads: 0,
            kind_sums: BTreeMap::new(),
            head_sums: BTreeMap::new(),
            bucket_sums: BTreeMap::new(),
            bad_maps: 0,
        }
    }

    fn kind_index(&mut self, kind: &str) -> usize {
        match self.kinds.iter().position(|k| k == kind) {
            Some(i) => i,
            None => {
                self.kinds.push(kind.to_string());
                self.kinds.len() - 1
            }
        }
    }

    /// Adds every step of `ep`; `seed` draws its time shuffle. `maps(t0, t1)`
    /// gives the attention maps of steps `t0..t1`, f32 [t1 - t0, heads, h, w].
    pub fn add(
        &mut self,
        ep: &Episode,
        seed: u64,
        mut maps: impl FnMut(usize, usize) -> Result<Vec<f32>>,
    ) -> Result<()> {
        let t_len = ep.steps();
        let n_obj = ep.object_names.len();
        let cells = ep.grid.len();
        self.heads = self.heads.max(ep.heads);
        // Objects of each kind, by the kind's index.
        let mut by_kind: Vec<(usize, Vec<usize>)> = Vec::new();
        for (k, name) in ep.object_names.iter().enumerate() {
            let kind = self.kind_index(kind_of(name));
            match by_kind.iter_mut().find(|(i, _)| *i == kind) {
                Some((_, objs)) => objs.push(k),
                None => by_kind.push((kind, vec![k])),
            }
        }
        let points = |t: usize, objs: &[usize], out: &mut Vec<(f32, f32)>| {
            out.clear();
            for &k in objs {
                let at = (t * n_obj + k) * 2;
                let (r, c) = (ep.objects[at], ep.objects[at + 1]);
                if r.is_finite() && c.is_finite() {
                    out.push((r, c));
                }
            }
        };
        let perm = cyclic_permutation(t_len, seed);
        let ln_cells = (cells as f64).ln();
        let mut buckets_seen = BTreeSet::new();
        let (mut pts, mut dist, mut dist_shuffled) = (Vec::new(), Vec::new(), Vec::new());
        let per_step = ep.heads * cells;
        let (mut block, mut block_start) = (Vec::new(), 0);
        for (t, &partner) in perm.iter().enumerate() {
            if t % BLOCK == 0 {
                let end = (t + BLOCK).min(t_len);
                block = maps(t, end)?;
                block_start = t;
                if block.len() != (end - t) * per_step {
                    bail!(
                        "maps of steps {t}..{end}: {} values, expected {}",
                        block.len(),
                        (end - t) * per_step
                    );
                }
            }
            let b = self.buckets.of(ep.params_version[t]);
            buckets_seen.insert(b);
            let bs = self.bucket_sums.entry(b).or_default();
            bs.steps += 1;
            bs.version_sum += ep.params_version[t] as f64;
            let maps = &block[(t - block_start) * per_step..][..per_step];
            let valid: Vec<bool> = maps
                .chunks(cells)
                .map(|m| {
                    let s: f32 = m.iter().sum();
                    s.is_finite() && s > 0.0
                })
                .collect();
            for (head, map) in maps.chunks(cells).enumerate() {
                if !valid[head] {
                    self.bad_maps += 1;
                    continue;
                }
                let hs = self.head_sums.entry((b, head)).or_default();
                hs.steps += 1;
                hs.entropy += entropy(map);
                hs.entropy_uniform += ln_cells;
            }
            for (kind, objs) in &by_kind {
                points(t, objs, &mut pts);
                let here = !pts.is_empty();
                if here {
                    nearest_distance(&ep.grid, &pts, &mut dist);
                }
                points(partner, objs, &mut pts);
                let shuffled = partner != t && !pts.is_empty();
                if shuffled {
                    nearest_distance(&ep.grid, &pts, &mut dist_shuffled);
                }
                if !here && !shuffled {
                    continue;
                }
                let u = here.then(|| uniform(&dist, self.radius));
                for (head, map) in maps.chunks(cells).enumerate() {
                    if !valid[head] {
                        continue;
                    }
                    let ks = self.kind_sums.entry((b, head, *kind)).or_default();
                    if let Some(u) = u {
                        let m = measure(map, &dist, self.radius);
                        ks.present += 1;
                        ks.share += m.share;
                        ks.peak += m.peak_distance;
                        ks.share_uniform += u.share;
                        ks.peak_uniform += u.peak_distance;
                    }
                    if shuffled {
                        let m = measure(map, &dist_shuffled, self.radius);
                        ks.shuffled += 1;
                        ks.share_shuffled += m.share;
                        ks.peak_shuffled += m.peak_distance;
                    }
                }
            }
        }
        for b in buckets_seen {
            self.bucket_sums.entry(b).or_default().episodes += 1;
        }
        Ok(())
    }

    /// The table: one row per bucket, head and kind, buckets in order.
    pub fn rows(&self) -> Vec<Row> {
        let mean = |sum: f64, n: u64| if n > 0 { sum / n as f64 } else { f64::NAN };
        let mut rows = Vec::new();
        for (&b, bs) in &self.bucket_sums {
            let (first, last) = self.buckets.range(b);
            for head in 0..self.heads {
                let hs = self.head_sums.get(&(b, head)).cloned().unwrap_or_default();
                for (k, kind) in self.kinds.iter().enumerate() {
                    let ks = self.kind_sums.get(&(b, head, k)).cloned().unwrap_or_default();
                    rows.push(Row {
                        params_first: first,
                        params_last: last,
                        params_mean: mean(bs.version_sum, bs.steps),
                        head,
                        kind: kind.clone(),
                        episodes: bs.episodes,
                        steps: hs.steps,
                        present: ks.present,
                        shuffled: ks.shuffled,
                        share: mean(ks.share, ks.present),
                        share_shuffled: mean(ks.share_shuffled, ks.shuffled),
                        share_uniform: mean(ks.share_uniform, ks.present),
                        peak_distance: mean(ks.peak, ks.present),
                        peak_distance_shuffled: mean(ks.peak_shuffled, ks.shuffled),
                        peak_distance_uniform: mean(ks.peak_uniform, ks.present),
                        entropy: mean(hs.entropy, hs.steps),
                        entropy_uniform: mean(hs.entropy_uniform, hs.steps),
                    });
                }
            }
        }
        rows
    }
}

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
    let Ok(objects) = g.dataset("objects") else { return Ok(None) };
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
        .dataset("params_version")
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
fn version_range(episodes: &[EpisodeRef]) -> Result<(u64, u64)> {
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

fn fmt_opt(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "-".into()
    }
}

/// The table as printed on the terminal.
pub fn table(rows: &[Row], radius: f32) -> String {
    let mut out = format!(
        "share: attention mass within {radius:.1} px of the kind's nearest object; \
         peak: px from the map's highest cell to it; shuf = time-shuffled, unif = uniform map\n"
    );
    let _ = writeln!(
        out,
        "{:>17} {:>4} {:<16} {:>7} {:>7} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "params",
        "head",
        "kind",
        "steps",
        "present",
        "share",
        "shuf",
        "unif",
        "peak",
        "shuf",
        "unif",
        "entropy",
        "unif"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:>17} {:>4} {:<16} {:>7} {:>7} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7}",
            format!("{}-{}", r.params_first, r.params_last),
            r.head,
            r.kind,
            r.steps,
            r.present,
            fmt_opt(r.share, 3),
            fmt_opt(r.share_shuffled, 3),
            fmt_opt(r.share_uniform, 3),
            fmt_opt(r.peak_distance, 1),
            fmt_opt(r.peak_distance_shuffled, 1),
            fmt_opt(r.peak_distance_uniform, 1),
            fmt_opt(r.entropy, 2),
            fmt_opt(r.entropy_uniform, 2),
        );
    }
    out
}

/// The table as CSV ([`CSV_COLUMNS`]); undefined means are empty fields.
pub fn csv(rows: &[Row], radius: f32) -> String {
    let f = |v: f64| if v.is_finite() { format!("{v:.6}") } else { String::new() };
    let mut out = format!("{CSV_COLUMNS}\n");
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.params_first,
            r.params_last,
            f(r.params_mean),
            r.head,
            r.kind,
            radius,
            r.episodes,
            r.steps,
            r.present,
            r.shuffled,
            f(r.share),
            f(r.share_shuffled),
            f(r.share_uniform),
            f(r.peak_distance),
            f(r.peak_distance_shuffled),
            f(r.peak_distance_uniform),
            f(r.entropy),
            f(r.entropy_uniform),
        );
    }
    out
}

const PANEL: (usize, usize) = (640, 260);

/// The share over training: one panel per kind that was ever present, a
/// solid line per head, the head's time-shuffled baseline dashed in its
/// colour, the uniform baseline dashed in grey.
pub fn share_plot(rows: &[Row], kinds: &[String], radius: f32) -> Option<Rgb> {
    let heads = rows.iter().map(|r| r.head + 1).max().unwrap_or(0);
    let mut panels = Vec::new();
    for kind in kinds {
        let of = |head: usize| rows.iter().filter(move |r| &r.kind == kind && r.head == head);
        if !rows.iter().any(|r| &r.kind == kind && r.present > 0) {
            continue;
        }
        let series = |head: usize, y: fn(&Row) -> f64| -> Vec<(f64, f64)> {
            of(head).map(|r| (r.params_mean, y(r))).filter(|p| p.1.is_finite()).collect()
        };
        let mut lines = Vec::new();
        for head in 0..heads {
            lines.push(Line {
                name: format!("head {head}"),
                points: series(head, |r| r.share),
                colour: head_colour(head),
                dashed: false,
            });
            lines.push(Line {
                name: String::new(),
                points: series(head, |r| r.share_shuffled),
                colour: head_colour(head),
                dashed: true,
            });
        }
        lines.push(Line {
            name: "time-shuffled (head colour)".into(),
            points: Vec::new(),
            colour: [60, 60, 60],
            dashed: true,
        });
        lines.push(Line {
            name: "uniform".into(),
            points: series(0, |r| r.share_uniform),
            colour: [150, 150, 150],
            dashed: true,
        });
        let title = format!("{kind}: share within {radius:.1} px");
        panels.push(lines_plot(
            &title,
            "params version",
            &lines,
            Some((0.0, 1.0)),
            PANEL.0,
            PANEL.1,
        ));
    }
    if panels.is_empty() {
        return None;
    }
    let mut all = Rgb::new(PANEL.0, PANEL.1 * panels.len(), [255, 255, 255]);
    for (k, p) in panels.iter().enumerate() {
        all.blit(p, 0, k * PANEL.1);
    }
    Some(all)
}

pub fn analyze(args: AnalyzeArgs) -> Result<()> {
    let episodes: Vec<EpisodeRef> =
        list_episodes(&args.paths)?.into_iter().filter(|e| e.steps > 0).collect();
    if episodes.is_empty() {
        bail!(
            "no recorded episodes with steps in {} (closed episodes-*.h5 segments; \
             `recorder inspect` lists them)",
            show(&args.paths)
        );
    }
    let (lo, hi) = version_range(&episodes)?;
    let buckets = Buckets::new(lo, hi, args.buckets);
    let files: BTreeSet<&Path> = episodes.iter().map(|e| e.file.as_path()).collect();
    let total_steps: u64 = episodes.iter().map(|e| e.steps).sum();
    info!(
        "{} episodes ({total_steps} steps) in {} files, params versions {lo}..={hi} in {} buckets",
        episodes.len(),
        files.len(),
        buckets.count
    );
    let mut analysis: Option<Analysis> = None;
    let (mut without_objects, mut done_steps) = (Vec::new(), 0u64);
    let (started, mut last_log) = (Instant::now(), Instant::now());
    for (i, ep) in episodes.iter().enumerate() {
        let Some(open) = read_episode(ep)? else {
            without_objects.push(ep.name.clone());
            continue;
        };
        let data = &open.episode;
        let a = analysis.get_or_insert_with(|| {
            let radius = args.radius.unwrap_or_else(|| data.grid.cell_size());
            info!(
                "radius {radius:.2} px (grid {}x{} over {}x{} frames)",
                data.grid.cells.0, data.grid.cells.1, data.grid.frame.0, data.grid.frame.1
            );
            Analysis::new(radius, buckets)
        });
        a.add(data, episode_seed(args.seed, &ep.name), |t0, t1| open.maps(t0, t1))
            .with_context(|| format!("episode {} in {}", ep.name, ep.file.display()))?;
        done_steps += ep.steps;
        if last_log.elapsed() > Duration::from_secs(2) {
            last_log = Instant::now();
            info!(
                "analysed {}/{} episodes, {done_steps}/{total_steps} steps ({:.0} steps/s)",
                i + 1,
                episodes.len(),
                done_steps as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    let Some(analysis) = analysis else {
        bail!(
            "none of the {} episodes in {} has an `objects` dataset: no object positions were \
             recorded. Actors record them for games that report them (the built-in `catch`, and \
             `seaquest` from its RAM); record episodes of one of those to analyse attention \
             (docs/attention-analysis.md)",
            episodes.len(),
            show(&args.paths)
        );
    };
    if !without_objects.is_empty() {
        warn!(
            "{} of {} episodes have no `objects` dataset and were skipped (first: {})",
            without_objects.len(),
            episodes.len(),
            without_objects[0]
        );
    }
    if analysis.bad_maps > 0 {
        warn!(
            "{} maps were not distributions (NaN or zero sum) and were skipped",
            analysis.bad_maps
        );
    }
    let rows = analysis.rows();
    if rows.iter().all(|r| r.present == 0) {
        bail!(
            "the episodes record objects ({}) but none is ever present (all NaN): nothing to measure",
            analysis.kinds.join(", ")
        );
    }
    print!("{}", table(&rows, analysis.radius));
    if let Some(path) = &args.csv {
        std::fs::write(path, csv(&rows, analysis.radius))
            .with_context(|| format!("write {}", path.display()))?;
        println!("{}", path.display());
    }
    if let Some(path) = &args.plot {
        if let Some(img) = share_plot(&rows, &analysis.kinds, analysis.radius) {
            img.write_png(path)?;
            println!("{}", path.display());
        }
    }
    Ok(())
}

fn show(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_centres_align_with_the_frame() {
        // 2 x 4 cells over a 10 x 20 frame: cells are 5 x 5 pixels, the first
        // covering pixel rows 0..5 and columns 0..5, centred at (2, 2).
        let g = Grid::new((2, 4), (10, 20));
        assert_eq!(g.centres[0], (2.0, 2.0));
        assert_eq!(g.centres[1], (2.0, 7.0));
        assert_eq!(g.centres[7], (7.0, 17.0));
        assert_eq!(g.cell_size(), 5.0);
        // The paper's grid: 27 x 20 over 210 x 160.
        let g = Grid::new((27, 20), (210, 160));
        assert_eq!(g.centres.len(), 540);
        let (r, c) = g.centres[26 * 20 + 19];
        assert!((r - (26.5 * 210.0 / 27.0 - 0.5)).abs() < 1e-4 && (c - 155.5).abs() < 1e-4);
    }

    #[test]
    fn kinds_drop_numbered_suffixes_only() {
        assert_eq!(kind_of("enemy_11"), "enemy");
        assert_eq!(kind_of("enemy_missile_2"), "enemy_missile");
        assert_eq!(kind_of("player_missile"), "player_missile");
        assert_eq!(kind_of("ball"), "ball");
        assert_eq!(kind_of("_3"), "_3");
        assert_eq!(kind_of("a_"), "a_");
    }

    #[test]
    fn cyclic_permutations_move_every_step() {
        for n in [2, 3, 10, 257] {
            let p = cyclic_permutation(n, n as u64);
            let mut sorted = p.clone();
            sorted.sort();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>());
            assert!(p.iter().enumerate().all(|(i, &j)| i != j), "{p:?}");
        }
        assert_eq!(cyclic_permutation(1, 0), vec![0]);
        assert_ne!(cyclic_permutation(50, 1), cyclic_permutation(50, 2));
        assert_eq!(cyclic_permutation(50, 1), cyclic_permutation(50, 1));
    }

    #[test]
    fn measures_of_hand_made_maps() {
        let g = Grid::new((3, 3), (30, 30)); // centres at 4.5, 14.5, 24.5
        let mut dist = Vec::new();
        nearest_distance(&g, &[(4.5, 4.5), (24.5, 24.5)], &mut dist);
        assert_eq!(dist[0], 0.0);
        assert_eq!(dist[8], 0.0);
        assert_eq!(dist[4], (200f32).sqrt());
        // Half the mass on the top-left object, half in the middle (unnormalised).
        let mut map = vec![0.0f32; 9];
        map[0] = 2.0;
        map[4] = 2.0;
        let m = measure(&map, &dist, 5.0);
        assert!((m.share - 0.5).abs() < 1e-12);
        assert_eq!(m.peak_distance, 0.0, "ties go to the first cell");
        let u = uniform(&dist, 5.0);
        assert!((u.share - 2.0 / 9.0).abs() < 1e-12);
        assert!((entropy(&map) - 2f64.ln()).abs() < 1e-12);
        assert!((entropy(&[1.0; 9]) - 9f64.ln()).abs() < 1e-12);
        assert_eq!(entropy(&[0.0, 1.0, 0.0]), 0.0);
    }

    #[test]
    fn buckets_cover_the_range_in_equal_widths() {
        let b = Buckets::new(0, 100, 8);
        assert_eq!(b.width, 13);
        assert_eq!((b.of(0), b.of(12), b.of(13), b.of(100)), (0, 0, 1, 7));
        assert_eq!(b.range(7), (91, 103));
        let one = Buckets::new(5, 5, 8);
        assert_eq!((one.of(5), one.range(0)), (0, (5, 5)));
    }

    /// A synthetic episode on a 10 x 10 grid over a 100 x 100 frame: one
    /// object `ball` walking along the cells' centres, a second kind
    /// `wall_0`/`wall_1` (absent half the time); head 0 looks at the ball,
    /// head 1 is uniform. Returns the episode and its maps.
    fn synthetic(t_len: usize, versions: impl Fn(usize) -> u64) -> (Episode, Vec<f32>) {
        let grid = Grid::new((10, 10), (100, 100));
        let (heads, cells) = (2, 100);
        let mut attention = vec![0.0f32; t_len * heads * cells];
        let mut objects = vec![f32::NAN; t_len * 3 * 2];
        for t in 0..t_len {
            let cell = (t * 37) % cells;
            let (r, c) = grid.centres[cell];
            objects[t * 6] = r;
            objects[t * 6 + 1] = c;
            if t % 2 == 0 {
                objects[t * 6 + 2] = 95.0;
                objects[t * 6 + 3] = 5.0;
            }
            attention[t * heads * cells + cell] = 1.0;
            for v in &mut attention[(t * heads + 1) * cells..(t * heads + 2) * cells] {
                *v = 0.01;
            }
        }
        let ep = Episode {
            grid,
            heads,
            objects,
            object_names: vec!["ball".into(), "wall_0".into(), "wall_1".into()],
            params_version: (0..t_len).map(versions).collect(),
        };
        (ep, attention)
    }

    /// Adds `ep` with its maps held in memory.
    fn add(a: &mut Analysis, ep: &Episode, maps: &[f32], seed: u64) {
        let per_step = ep.heads * ep.grid.len();
        a.add(ep, seed, |t0, t1| Ok(maps[t0 * per_step..t1 * per_step].to_vec())).unwrap();
    }

    #[test]
    fn attention_on_the_object_scores_one_and_uniform_scores_the_disc_area() {
        // Longer than two blocks of maps, so the blocks must line up with the objects.
        let t_len = 2 * BLOCK + 57;
        let (ep, maps) = synthetic(t_len, |_| 7);
        let radius = 25.0;
        let mut a = Analysis::new(radius, Buckets::new(7, 7, 4));
        add(&mut a, &ep, &maps, 3);
        let rows = a.rows();
        assert_eq!(a.kinds, vec!["ball", "wall"]);
        assert_eq!(rows.len(), 2 * 2, "one bucket x two heads x two kinds");
        let row = |head: usize, kind: &str| {
            rows.iter().find(|r| r.head == head && r.kind == kind).unwrap()
        };
        let on = row(0, "ball");
        let n = t_len as u64;
        assert_eq!((on.steps, on.present, on.episodes), (n, n, 1));
        assert!((on.share - 1.0).abs() < 1e-9 && on.peak_distance == 0.0, "{on:?}");
        assert!((on.entropy - 0.0).abs() < 1e-9);
        // The shuffled baseline pairs each map with another step's ball, which
        // is anywhere: it scores about what a uniform map scores.
        assert_eq!(on.shuffled, n);
        assert!((on.share_shuffled - on.share_uniform).abs() < 0.1, "{on:?}");
        assert!((on.peak_distance_shuffled - on.peak_distance_uniform).abs() < 10.0, "{on:?}");
        // Uniform head: share = the uniform baseline, which is the share of
        // cells within the radius; far from the edges that is the disc's
        // area over the frame's (pi 25^2 / 100^2 = 0.196; 21 cell centres of
        // 100 lie within 25 px of a cell centre).
        let flat = row(1, "ball");
        assert!((flat.share - flat.share_uniform).abs() < 1e-6, "{flat:?}");
        assert!((flat.entropy - 100f64.ln()).abs() < 1e-5);
        assert!((flat.entropy_uniform - 100f64.ln()).abs() < 1e-9);
        let mut dist = Vec::new();
        nearest_distance(&ep.grid, &[ep.grid.centres[55]], &mut dist);
        let inside = uniform(&dist, radius).share;
        assert_eq!(inside, 21.0 / 100.0);
        assert!((inside - std::f64::consts::PI * 25.0 * 25.0 / 1e4).abs() < 0.02);
        // A kind absent half the time counts only the steps it is present.
        let wall = row(0, "wall");
        assert_eq!(wall.present, n.div_ceil(2));
        // Present at even steps only: the shuffle finds one in about half the partners.
        assert!(wall.shuffled > n * 4 / 10 && wall.shuffled < n * 6 / 10, "{wall:?}");
    }

    #[test]
    fn uniform_share_matches_the_disc_area_over_the_grid() {
        // A fine grid over a large frame, an object in the middle: the share of
        // a uniform map is pi R^2 / (H W) for discs inside the frame.
        let g = Grid::new((100, 100), (200, 200));
        let mut dist = Vec::new();
        nearest_distance(&g, &[(99.5, 99.5)], &mut dist);
        for radius in [10.0f32, 20.0, 40.0] {
            let want = std::f64::consts::PI * f64::from(radius * radius) / 4e4;
            let got = uniform(&dist, radius).share;
            assert!((got - want).abs() < 0.05 * want, "R {radius}: {got} vs {want}");
            let flat = vec![1.0f32; g.len()];
            assert!((measure(&flat, &dist, radius).share - got).abs() < 1e-9);
        }
    }

    #[test]
    fn steps_fall_into_buckets_by_their_params_version() {
        // Versions 0..100 over 200 steps; head 0 looks at the ball only from version 50 on.
        let (ep, mut maps) = synthetic(200, |t| t as u64 / 2);
        for t in 0..100 {
            let m = &mut maps[t * 200..t * 200 + 100];
            m.fill(0.0);
            m[0] = 1.0;
        }
        let mut a = Analysis::new(5.0, Buckets::new(0, 99, 2));
        add(&mut a, &ep, &maps, 1);
        let rows = a.rows();
        let ball: Vec<&Row> = rows.iter().filter(|r| r.head == 0 && r.kind == "ball").collect();
        assert_eq!(ball.len(), 2);
        assert_eq!((ball[0].params_first, ball[0].params_last, ball[0].steps), (0, 49, 100));
        assert!((ball[0].params_mean - 24.5).abs() < 1e-9);
        assert!(ball[0].share < 0.1, "{:?}", ball[0]);
        assert!((ball[1].share - 1.0).abs() < 1e-9);
        let text = table(&rows, 5.0);
        assert!(text.contains("0-49") && text.contains("50-99"), "{text}");
        let csv = csv(&rows, 5.0);
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some(CSV_COLUMNS));
        assert_eq!(lines.count(), rows.len());
    }

    #[test]
    fn nan_maps_are_skipped_and_counted() {
        let (ep, mut maps) = synthetic(10, |_| 0);
        maps[..100].fill(f32::NAN);
        let mut a = Analysis::new(5.0, Buckets::new(0, 0, 1));
        add(&mut a, &ep, &maps, 1);
        assert_eq!(a.bad_maps, 1);
        let rows = a.rows();
        assert_eq!(rows.iter().find(|r| r.head == 0 && r.kind == "ball").unwrap().present, 9);
    }

    /// Episodes written by the recorder's own writer read back as sent; an
    /// episode without objects reads as `None`.
    #[test]
    fn reads_what_the_writer_wrote() {
        use crate::writer::{Writer, WriterOptions};
        use wire::config::{ModelConfig, Preset};
        use wire::protocol::{Array, EpisodeChunk, EpisodeEnd, EpisodeUid};

        let dir = tempfile::tempdir().unwrap();
        let cfg = ModelConfig::small(3);
        let (gh, gw) = cfg.grid();
        let (n, fh, fw) = (12, 42, 42);
        let grid = Grid::new((gh, gw), (fh, fw));
        let mut writer = Writer::new(WriterOptions {
            run_dir: dir.path().to_path_buf(),
            run_id: "analyze-test".into(),
            preset: Preset::Small,
            model_config: Some(cfg.clone()),
            num_actions: None,
            env: serde_json::json!({"game": "catch"}),
            rotate_every: std::time::Duration::from_secs(3600),
            deflate: 1,
            episode_timeout: std::time::Duration::from_secs(3600),
            compress_threads: 1,
        })
        .unwrap();
        let cells = gh * gw;
        let chunk = |counter: u64, with_objects: bool| {
            let mut att = vec![0.0f32; n * cfg.heads * cells];
            let mut objects = Vec::new();
            for t in 0..n {
                let cell = (t * 7) % cells;
                att[t * cfg.heads * cells + cell] = 1.0;
                for head in 1..cfg.heads {
                    let m = &mut att[(t * cfg.heads + head) * cells..][..cells];
                    m.fill(1.0 / cells as f32);
                }
                let (r, c) = grid.centres[cell];
                objects.extend_from_slice(&[r, c, f32::NAN, f32::NAN]);
            }
            let maps = vec![n, cfg.heads, gh, gw];
            EpisodeChunk {
                uid: EpisodeUid { actor: 0, env: 0, counter },
                sequence: 0,
                params_version: 40 + counter,
                frame: Array::from_u8(vec![n, fh, fw, 3], vec![0; n * fh * fw * 3]),
                action: Array::from_i64(vec![n], &vec![0; n]),
                reward: Array::from_f32(vec![n], &vec![0.0; n]),
                baseline: Array::from_f32(vec![n], &vec![0.0; n]),
                policy_logits: Array::from_f32(vec![n, 3], &vec![0.0; n * 3]),
                attention: Array::from_f32(maps.clone(), &att),
                attention_content: Array::from_f32(maps.clone(), &att),
                attention_place: Array::from_f32(maps, &att),
                ram: None,
                objects: with_objects.then(|| Array::from_f32(vec![n, 2, 2], &objects)),
                object_names: if with_objects {
                    vec!["ball".into(), "paddle".into()]
                } else {
                    vec![]
                },
                end: Some(EpisodeEnd { episode_return: 1.0, length: n as u64, complete: true }),
            }
        };
        writer.accept(&chunk(1, true)).unwrap();
        writer.accept(&chunk(2, false)).unwrap();
        writer.shutdown().unwrap();

        let episodes = list_episodes(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(episodes.len(), 2);
        let with = episodes.iter().find(|e| e.name.ends_with("n1")).unwrap();
        let without = episodes.iter().find(|e| e.name.ends_with("n2")).unwrap();
        assert!(read_episode(without).unwrap().is_none());
        let open = read_episode(with).unwrap().unwrap();
        let ep = &open.episode;
        assert_eq!(ep.grid, grid);
        assert_eq!((ep.heads, ep.steps()), (cfg.heads, n));
        assert_eq!(ep.object_names, vec!["ball", "paddle"]);
        assert_eq!(ep.params_version, vec![41; n]);
        assert_eq!(ep.objects[4 * 3..4 * 3 + 2], [grid.centres[21].0, grid.centres[21].1]);
        assert!(ep.objects[3].is_nan());
        assert_eq!(version_range(&episodes).unwrap(), (41, 42));

        let mut a = Analysis::new(grid.cell_size(), Buckets::new(41, 42, 4));
        a.add(ep, 5, |t0, t1| open.maps(t0, t1)).unwrap();
        let rows = a.rows();
        let ball = rows.iter().find(|r| r.head == 0 && r.kind == "ball").unwrap();
        assert_eq!((ball.present, ball.share, ball.peak_distance), (n as u64, 1.0, 0.0));
        let paddle = rows.iter().find(|r| r.head == 0 && r.kind == "paddle").unwrap();
        assert_eq!((paddle.present, paddle.shuffled), (0, 0), "never present");
        assert!(paddle.share.is_nan());
        let img = share_plot(&rows, &a.kinds, a.radius).unwrap();
        assert_eq!(
            (img.width, img.height),
            (PANEL.0, PANEL.1),
            "no panel for a kind never present"
        );
    }
}
