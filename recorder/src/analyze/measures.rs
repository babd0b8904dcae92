//! The measures of one map against one set of objects: share within a
//! radius, peak distance, entropy; the uniform baseline; the seeded cyclic
//! permutation that pairs each step with another for the time-shuffled one.

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

/// The kind of an object: its name without a `_<number>` suffix (one rule
/// for the environments that name the objects and for this analysis).
pub use env::ale::objects::kind as kind_of;

/// SplitMix64, for the shuffle (no dependency for six lines).
pub(super) fn splitmix64(state: &mut u64) -> u64 {
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
pub(super) fn episode_seed(seed: u64, name: &str) -> u64 {
    name.bytes()
        .fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}
