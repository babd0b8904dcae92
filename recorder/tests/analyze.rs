//! `recorder analyze` on files written by a real `recorder serve`: episodes
//! whose objects and attention maps we place ourselves, so the answer is
//! known. Checks the CSV's columns and values, the terminal table, the PNG,
//! and the errors for bad input.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::*;
use wire::protocol::{Array, EpisodeChunk};

const CSV_COLUMNS: &str = "params_first,params_last,params_mean,head,kind,radius,episodes,steps,\
present,shuffled,share,share_shuffled,share_uniform,peak_distance,peak_distance_shuffled,\
peak_distance_uniform,entropy,entropy_uniform";

/// Centre (row, col) in frame pixels of grid cell `cell`, as
/// docs/attention-analysis.md defines it.
fn cell_centre(cell: usize) -> (f32, f32) {
    let (gh, gw) = cfg().grid();
    let (i, j) = (cell / gw, cell % gw);
    ((i as f32 + 0.5) * H as f32 / gh as f32 - 0.5, (j as f32 + 0.5) * W as f32 / gw as f32 - 0.5)
}

/// `chunk` with objects: a `ball` that jumps from cell centre to cell
/// centre, and a `paddle` in the bottom row's middle cell, absent every third
/// step. Head 0 attends to the ball's cell only; the other heads are uniform.
fn with_objects(mut c: EpisodeChunk, first_step: usize) -> EpisodeChunk {
    let cfg = cfg();
    let (gh, gw) = cfg.grid();
    let cells = gh * gw;
    let n = c.len();
    let mut att = vec![1.0 / cells as f32; n * cfg.heads * cells];
    let mut objects = Vec::new();
    for i in 0..n {
        let t = first_step + i;
        let ball = (t * 13 + c.uid.counter as usize * 5) % cells;
        let m = &mut att[i * cfg.heads * cells..][..cells];
        m.fill(0.0);
        m[ball] = 1.0;
        let (r, col) = cell_centre(ball);
        let (pr, pc) =
            if t % 3 == 2 { (f32::NAN, f32::NAN) } else { cell_centre(cells - gw / 2 - 1) };
        objects.extend_from_slice(&[r, col, pr, pc]);
    }
    let shape = vec![n, cfg.heads, gh, gw];
    c.attention = Array::from_f32(shape, &att);
    c.objects = Some(Array::from_f32(vec![n, 2, 2], &objects));
    c.object_names = vec!["ball".into(), "paddle".into()];
    c
}

fn record(root: &Path, episodes: &[(u64, bool)]) {
    let rec = Recorder::start(root, &["--rotate-seconds", "0.1"]);
    let push = push(root);
    for &(counter, objects) in episodes {
        let mut step = 0;
        for c in episode(uid(0, 0, counter), &[8, 12], true) {
            let n = c.len();
            let c = if objects { with_objects(c, step) } else { c };
            send(&push, &c);
            step += n;
        }
    }
    let want = episodes.len();
    wait_for(20.0, "the episodes", || rec.log().matches("episode recorded").count() >= want);
    rec.stop();
}

fn analyze(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(recorder_bin()).arg("analyze").args(args).args(paths).output().unwrap()
}

fn num(v: &str) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.parse().unwrap()
    }
}

#[test]
fn analyze_writes_the_table_csv_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    record(root, &[(1, true), (2, true)]);
    let (csv, png) = (root.join("a.csv"), root.join("a.png"));
    let out = analyze(
        &["--radius", "3", "--buckets", "2", "--csv", csv.to_str().unwrap(), "--plot"],
        &[&png, &run_dir(root)],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("present") && stdout.contains("ball"), "{stdout}");

    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header, CSV_COLUMNS.split(',').collect::<Vec<_>>());
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let heads = cfg().heads;
    // Chunks carry params versions 10 and 11 (support::chunk): two buckets.
    assert_eq!(rows.len(), 2 * heads * 2, "buckets x heads x kinds:\n{text}");
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for row in &rows {
        let (head, kind) = (row[at("head")], row[at("kind")]);
        let share = num(row[at("share")]);
        assert_eq!(row[at("radius")], "3");
        assert_eq!(row[at("episodes")], "2");
        let steps: u64 = row[at("steps")].parse().unwrap();
        assert_eq!(steps, if row[at("params_first")] == "10" { 16 } else { 24 });
        let present: u64 = row[at("present")].parse().unwrap();
        match (head, kind) {
            ("0", "ball") => {
                assert_eq!(present, steps);
                assert_eq!(share, 1.0, "{row:?}");
                // Zero up to the rounding of the cell centres in f32.
                assert!(num(row[at("peak_distance")]) < 1e-3, "{row:?}");
                assert_eq!(num(row[at("entropy")]), 0.0);
                assert!(num(row[at("share_shuffled")]) < 0.3, "{row:?}");
            }
            (_, "ball") => {
                // A uniform head scores the uniform baseline.
                assert!((share - num(row[at("share_uniform")])).abs() < 1e-5, "{row:?}");
                let cells = (cfg().grid().0 * cfg().grid().1) as f64;
                assert!((num(row[at("entropy")]) - cells.ln()).abs() < 1e-4, "{row:?}");
            }
            (_, "paddle") => {
                // Absent at every third step of the episode (t % 3 == 2).
                let expect =
                    (if steps == 16 { 0..8 } else { 8..20 }).filter(|t| t % 3 != 2).count();
                assert_eq!(present, 2 * expect as u64, "{row:?}");
            }
            other => panic!("unexpected row {other:?}"),
        }
    }

    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let info = dec.read_info().unwrap();
    let (w, h) = (info.info().width, info.info().height);
    assert_eq!((w, h), (640, 2 * 260), "one panel per kind");
}

#[test]
fn analyze_says_what_to_do_when_nothing_can_be_measured() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    record(root, &[(1, false)]);
    let out = analyze(&[], &[&run_dir(root)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("`objects` dataset") && stderr.contains("seaquest"),
        "the error names the missing dataset and the games that record it: {stderr}"
    );

    let out = analyze(&[], &[&root.join("nope")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));

    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = analyze(&[], &[&empty]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no recorded episodes"));
}

/// Seaquest played through `common`'s ALE env, recorded as the actor records
/// (frames, objects from the RAM with every name each step), with head 0
/// attending to the cell nearest the player's submarine and head 1 uniform:
/// `analyze` groups the numbered objects into kinds and finds head 0 on the
/// player.
#[test]
fn analyze_seaquest_objects_from_the_ram() {
    use env::{make_env, EnvSpec};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cfg = cfg();
    let (gh, gw) = cfg.grid();
    let cells = gh * gw;
    let mut env = make_env(&EnvSpec::atari_default("seaquest"), 5).unwrap();
    let rec = Recorder::start(root, &["--rotate-seconds", "0.1"]);
    let push = push(root);
    let (steps, chunk_steps) = (160, 32);
    let mut names: Vec<String> = Vec::new();
    let mut with_player = 0;
    for (sequence, first) in (0..steps).step_by(chunk_steps).enumerate() {
        let mut c = chunk(uid(0, 0, 1), sequence as u32, first, chunk_steps, None);
        let (mut frames, mut att, mut objects) = (Vec::new(), Vec::new(), Vec::new());
        for t in first..first + chunk_steps {
            let (h, w, pixels) = env.render_rgb();
            assert_eq!((h, w), (210, 160));
            frames.extend_from_slice(pixels);
            let seen = env.objects();
            if names.is_empty() {
                names = seen.iter().map(|o| o.0.to_string()).collect();
            }
            assert_eq!(seen.len(), names.len(), "every name at every step");
            objects.extend(seen.iter().flat_map(|o| [o.1, o.2]));
            let (_, r, col) = seen[0];
            let mut map = vec![1.0 / cells as f32; cells];
            if r.is_finite() {
                let (i, j) = ((r / 210.0 * gh as f32) as usize, (col / 160.0 * gw as f32) as usize);
                map.fill(0.0);
                map[i.min(gh - 1) * gw + j.min(gw - 1)] = 1.0;
                with_player += 1;
            }
            att.extend_from_slice(&map);
            att.extend(std::iter::repeat_n(1.0 / cells as f32, cells * (cfg.heads - 1)));
            if env.step([5, 3, 4, 2][t / 20 % 4]).episode_over {
                env.reset();
            }
        }
        c.frame = Array::from_u8(vec![chunk_steps, 210, 160, 3], frames);
        c.attention = Array::from_f32(vec![chunk_steps, cfg.heads, gh, gw], &att);
        c.objects = Some(Array::from_f32(vec![chunk_steps, names.len(), 2], &objects));
        c.object_names = names.clone();
        if first + chunk_steps >= steps {
            c.end = Some(wire::protocol::EpisodeEnd {
                episode_return: 0.0,
                length: steps as u64,
                complete: false,
            });
        }
        send(&push, &c);
    }
    wait_for(30.0, "the episode", || rec.log().contains("episode recorded"));
    rec.stop();
    assert!(with_player > 100, "the submarine was on screen {with_player} times");

    let csv = root.join("seaquest.csv");
    let plot = root.join("seaquest.png");
    let out = analyze(
        &["--buckets", "1", "--csv", csv.to_str().unwrap(), "--plot", plot.to_str().unwrap()],
        &[&run_dir(root)],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    println!("{stdout}");
    if let Some(keep) = std::env::var_os("AAA_KEEP_ANALYSIS") {
        std::fs::copy(&plot, Path::new(&keep).join("seaquest.png")).unwrap();
        std::fs::copy(&csv, Path::new(&keep).join("seaquest.csv")).unwrap();
    }
    let text = std::fs::read_to_string(&csv).unwrap();
    let kinds: std::collections::BTreeSet<&str> =
        text.lines().skip(1).map(|l| l.split(',').nth(4).unwrap()).collect();
    let want = ["diver", "enemy", "enemy_missile", "oxygen", "player", "player_missile"];
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), want, "numbered names grouped into kinds");
    let player_head0 = text
        .lines()
        .find(|l| l.split(',').nth(3) == Some("0") && l.split(',').nth(4) == Some("player"))
        .unwrap();
    let f: Vec<&str> = player_head0.split(',').collect();
    assert_eq!(f[8], with_player.to_string(), "present steps");
    assert_eq!(num(f[10]), 1.0, "head 0 sits on the player: {player_head0}");
}
