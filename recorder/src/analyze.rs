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

mod aggregate;
mod measures;
mod output;
mod reading;

pub use aggregate::*;
pub use measures::*;
pub use output::*;
pub use reading::*;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tracing::{info, warn};

use crate::reader::{list_episodes, EpisodeRef};

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

pub fn analyze(args: AnalyzeArgs) -> Result<()> {
    let episodes: Vec<EpisodeRef> =
        list_episodes(&args.paths)?.into_iter().filter(|e| e.steps > 0).collect();
    if episodes.is_empty() {
        bail!(
            "no recorded episodes with steps in {} (closed episodes-*.h5 segments; \
             `recorder inspect` lists them). Games whose episodes carry object positions: \
             catch and, from the RAM, {}.",
            show(&args.paths),
            env::ale::games_with_objects().join(" ")
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
             from the RAM: {}); record episodes of one of those to analyse attention \
             (docs/attention-analysis.md)",
            episodes.len(),
            show(&args.paths),
            env::ale::games_with_objects().join(", ")
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
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(header.len(), CSV_COLUMNS.len());
        assert_eq!(header[0], "params_first");
        let ball_row = lines.find(|l| l.contains(",ball,")).unwrap();
        let fields: Vec<&str> = ball_row.split(',').collect();
        assert_eq!(fields.len(), header.len(), "{ball_row}");
        let at = |name: &str| fields[header.iter().position(|h| *h == name).unwrap()];
        assert_eq!((at("head"), at("kind"), at("radius"), at("steps")), ("0", "ball", "5", "100"));
        assert_eq!(csv.lines().count(), rows.len() + 1);
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
            model: wire::config::ModelChoice::preset(Preset::Small),
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
