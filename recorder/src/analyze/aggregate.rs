//! Sums of the measures per bucket of params versions, head and object kind,
//! fed episode by episode, and the table rows they become.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};

use super::*;

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
pub(super) const BLOCK: usize = 1024;

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

    /// Adds each head's attention entropy at one step (`maps`: [heads,
    /// cells]) to bucket `b`; returns which heads' maps are valid (finite,
    /// with mass), counting the others as bad.
    fn add_entropies(&mut self, b: usize, maps: &[f32], cells: usize, ln_cells: f64) -> Vec<bool> {
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
        valid
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
            let valid = self.add_entropies(b, maps, cells, ln_cells);
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
