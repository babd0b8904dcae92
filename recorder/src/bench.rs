//! `recorder bench`: throughput of the recorder's receive path (MessagePack
//! decode, validation, HDF5 append with compression, segment copy) on
//! episodes of real Atari frames, interleaved as many actors would send them.
//! Prints a table: raw frame MB/s in, steps/s, and bytes on disk per step.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use wire::config::{ModelConfig, Preset};
use wire::protocol::{decode, encode, Array, Body, EpisodeChunk, EpisodeEnd, EpisodeUid};

use crate::writer::{closed_segments, Outcome, Writer, WriterOptions};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Concurrent episodes (actors x envs) whose chunks interleave.
    #[arg(long, default_value_t = 8)]
    pub episodes: usize,
    /// Steps per chunk (the actor sends one chunk per unroll).
    #[arg(long, default_value_t = 50)]
    pub chunk_steps: usize,
    /// Chunks per episode.
    #[arg(long, default_value_t = 10)]
    pub chunks: usize,
    /// gzip levels to compare.
    #[arg(long, value_delimiter = ',', default_value = "0,1,4")]
    pub deflate: Vec<u8>,
    /// Atari game whose frames are used (random actions); `synthetic` for generated frames.
    #[arg(long, default_value = "seaquest")]
    pub game: String,
    /// Compression threads (default: the cores, at most 8).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Where to write, keeping the files (default: a temporary directory, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// `n` RGB frames [210, 160, 3] of `game` played with random actions.
/// Frames and their (height, width).
type Frames = (Vec<Vec<u8>>, (usize, usize));

fn atari_frames(game: &str, n: usize) -> Result<Frames> {
    use env::ale::Ale;
    let rom = env::find_rom(game, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut ale = Ale::load(&rom, 7, 0.0).map_err(|e| anyhow::anyhow!("{e}"))?;
    let actions = ale.minimal_action_set();
    let (h, w) = ale.screen_size();
    let mut frames = Vec::with_capacity(n);
    let mut state = 12345u64;
    while frames.len() < n {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let a = actions[(state >> 33) as usize % actions.len()];
        for _ in 0..4 {
            ale.act(a);
        }
        if ale.game_over() {
            ale.reset_game();
        }
        let mut buf = vec![0u8; h * w * 3];
        ale.screen_rgb(&mut buf);
        frames.push(buf);
    }
    Ok((frames, (h, w)))
}

/// Flat-coloured frames with a few moving boxes: a rough stand-in for Atari.
fn synthetic_frames(n: usize) -> Frames {
    let (h, w) = (210, 160);
    let frames = (0..n)
        .map(|t| {
            let mut f = vec![0u8; h * w * 3];
            for r in 0..h {
                for c in 0..w {
                    let band = (r / 30) as u8;
                    let in_box = (r + t) % 70 < 8 && (c + 3 * t) % 90 < 10;
                    let px = if in_box { [200, 200, 50] } else { [band * 20, 40, 120 + band * 10] };
                    f[(r * w + c) * 3..(r * w + c) * 3 + 3].copy_from_slice(&px);
                }
            }
            f
        })
        .collect();
    (frames, (h, w))
}

fn make_chunk(
    cfg: &ModelConfig,
    uid: EpisodeUid,
    seq: usize,
    n: usize,
    frames: &[Vec<u8>],
    (h, w): (usize, usize),
    last: bool,
) -> EpisodeChunk {
    let (gh, gw) = cfg.grid();
    let maps = n * cfg.heads * gh * gw;
    let mut frame = Vec::with_capacity(n * h * w * 3);
    let mut att = Vec::with_capacity(maps);
    let mut state = (uid.actor as u64 + 1) * 7919 + seq as u64;
    for i in 0..n {
        frame.extend_from_slice(&frames[(seq * n + i + uid.actor as usize * 37) % frames.len()]);
        // Softmax-like maps: random logits, normalised per head.
        for _ in 0..cfg.heads {
            let logits: Vec<f32> = (0..gh * gw)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0
                })
                .collect();
            let z: f32 = logits.iter().map(|l| l.exp()).sum();
            att.extend(logits.iter().map(|l| l.exp() / z));
        }
    }
    let logits: Vec<f32> = att.iter().map(|a| a.ln()).collect();
    let shape = vec![n, cfg.heads, gh, gw];
    EpisodeChunk {
        uid,
        sequence: seq as u32,
        params_version: 1,
        frame: Array::from_u8(vec![n, h, w, 3], frame),
        action: Array::from_i64(vec![n], &vec![1; n]),
        reward: Array::from_f32(vec![n], &vec![0.0; n]),
        baseline: Array::from_f32(vec![n], &vec![0.5; n]),
        policy_logits: Array::from_f32(vec![n, cfg.num_actions], &vec![0.1; n * cfg.num_actions]),
        attention: Array::from_f32(shape.clone(), &att),
        attention_content: Array::from_f32(shape.clone(), &logits),
        attention_place: Array::from_f32(
            shape,
            &logits.iter().map(|l| l * 0.5).collect::<Vec<_>>(),
        ),
        ram: Some(Array::from_u8(vec![n, 128], vec![7; n * 128])),
        objects: None,
        object_names: vec![],
        end: last.then_some(EpisodeEnd { episode_return: 1.0, length: 0, complete: true }),
    }
}

pub fn bench(args: BenchArgs) -> Result<()> {
    let cfg = ModelConfig::paper(18);
    let (frames, size) = if args.game == "synthetic" {
        synthetic_frames(500)
    } else {
        atari_frames(&args.game, 2000).with_context(|| {
            format!("frames of {} (use --game synthetic without ROMs)", args.game)
        })?
    };
    let tmp = tempfile_dir(&args.dir)?;
    println!(
        "recorder bench: {} interleaved episodes x {} chunks x {} steps, {} frames {}x{}, paper preset ({} heads, grid {:?})",
        args.episodes, args.chunks, args.chunk_steps, args.game, size.0, size.1, cfg.heads, cfg.grid()
    );
    println!(
        "{:>7} {:>9} {:>9} {:>12} {:>9} {:>12} {:>13} {:>9}",
        "deflate",
        "steps",
        "seconds",
        "frame MB/s",
        "steps/s",
        "disk B/step",
        "frame B/step",
        "raw/disk"
    );
    for &level in &args.deflate {
        let dir = tmp.join(format!("deflate{level}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut writer = Writer::new(WriterOptions {
            run_dir: dir.clone(),
            run_id: "bench".into(),
            model: wire::config::ModelChoice::preset(Preset::Paper),
            model_config: Some(cfg.clone()),
            num_actions: None,
            env: serde_json::json!({"game": args.game}),
            rotate_every: Duration::from_secs(30),
            deflate: level,
            episode_timeout: Duration::from_secs(3600),
            compress_threads: args.threads.unwrap_or_else(crate::serve::default_threads),
        })?;
        let mut busy = Duration::ZERO;
        let mut steps = 0u64;
        let mut frame_bytes = 0u64;
        let mut raw = 0u64;
        for seq in 0..args.chunks {
            for e in 0..args.episodes {
                let uid = EpisodeUid { actor: e as u32, env: 0, counter: 1 };
                let chunk = make_chunk(
                    &cfg,
                    uid,
                    seq,
                    args.chunk_steps,
                    &frames,
                    size,
                    seq + 1 == args.chunks,
                );
                let bytes = encode("bench", &Body::EpisodeChunk(Box::new(chunk)))?;
                let start = Instant::now();
                let Body::EpisodeChunk(chunk) = decode(&bytes, "bench")? else { unreachable!() };
                if let Outcome::Dropped(why) = writer.accept(&chunk)? {
                    anyhow::bail!("bench chunk dropped: {why}");
                }
                busy += start.elapsed();
                steps += chunk.len() as u64;
                frame_bytes += chunk.frame.data.len() as u64;
                raw += crate::writer::raw_bytes(&chunk);
            }
        }
        let start = Instant::now();
        writer.shutdown()?;
        busy += start.elapsed();
        let (disk, frame_disk) = bytes_on_disk(&dir)?;
        let secs = busy.as_secs_f64();
        println!(
            "{:>7} {:>9} {:>9.2} {:>12.1} {:>9.0} {:>12.0} {:>13.0} {:>9.1}",
            level,
            steps,
            secs,
            frame_bytes as f64 / secs / 1e6,
            steps as f64 / secs,
            disk as f64 / steps as f64,
            frame_disk as f64 / steps as f64,
            raw as f64 / disk as f64
        );
        if args.dir.is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(())
}

/// Bytes of the closed segments in `dir`, and of their frame datasets.
fn bytes_on_disk(dir: &std::path::Path) -> Result<(u64, u64)> {
    let segments = closed_segments(dir)?;
    let disk: u64 = segments.iter().map(|p| crate::reader::file_size(p)).sum();
    let mut frame_disk = 0u64;
    for p in &segments {
        let f = hdf5::File::open(p)?;
        let g = f.group(crate::schema::EPISODES)?;
        for name in g.member_names()? {
            frame_disk += g.dataset(&format!("{name}/frame"))?.storage_size();
        }
    }
    Ok((disk, frame_disk))
}

fn tempfile_dir(dir: &Option<PathBuf>) -> Result<PathBuf> {
    let d = match dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("recorder-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
