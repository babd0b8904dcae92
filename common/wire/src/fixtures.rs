//! Synthetic messages with the right shapes for a config, for tests and
//! benchmarks in every crate. The contents are pseudo-random, not meaningful.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::config::ModelConfig;
use crate::protocol::{
    Array, EpisodeChunk, EpisodeEnd, EpisodeUid, Observations, RecurrentState, Trajectory,
};

fn random_f32(rng: &mut Pcg64, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

fn random_u8(rng: &mut Pcg64, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rng.fill(&mut v[..]);
    v
}

/// A zero recurrent state of the right shapes.
pub fn zero_state(cfg: &ModelConfig) -> RecurrentState {
    let (h, w) = cfg.grid();
    let vision = vec![cfg.convlstm_channels, h, w];
    let n = vision.iter().product::<usize>();
    RecurrentState {
        vision_h: Array::from_f32(vision.clone(), &vec![0.0; n]),
        vision_c: Array::from_f32(vision, &vec![0.0; n]),
        core_h: Array::from_f32(vec![cfg.core_units], &vec![0.0; cfg.core_units]),
        core_c: Array::from_f32(vec![cfg.core_units], &vec![0.0; cfg.core_units]),
    }
}

/// A valid trajectory of `unroll_length` + 1 steps with random contents.
pub fn trajectory(cfg: &ModelConfig, unroll_length: usize, seed: u64) -> Trajectory {
    let mut rng = Pcg64::seed_from_u64(seed);
    let n = unroll_length + 1;
    let actions: Vec<i64> = (0..n).map(|_| rng.gen_range(0..cfg.num_actions as i64)).collect();
    let last_actions: Vec<i64> = (0..n).map(|_| rng.gen_range(0..cfg.num_actions as i64)).collect();
    let done: Vec<u8> = (0..n).map(|_| u8::from(rng.gen_bool(0.05))).collect();
    let steps: Vec<i64> = (0..n as i64).collect();
    Trajectory {
        actor_id: rng.gen_range(0..16),
        env_index: rng.gen_range(0..8),
        params_version: rng.gen_range(0..1000),
        frame: Array::from_u8(
            vec![n, cfg.height, cfg.width, cfg.in_channels],
            random_u8(&mut rng, n * cfg.frame_len()),
        ),
        reward: Array::from_f32(vec![n], &random_f32(&mut rng, n)),
        done: Array::from_u8(vec![n], done),
        last_action: Array::from_i64(vec![n], &last_actions),
        action: Array::from_i64(vec![n], &actions),
        policy_logits: Array::from_f32(
            vec![n, cfg.num_actions],
            &random_f32(&mut rng, n * cfg.num_actions),
        ),
        episode_return: Array::from_f32(vec![n], &random_f32(&mut rng, n)),
        episode_step: Array::from_i64(vec![n], &steps),
        initial_state: zero_state(cfg),
    }
}

/// A valid episode chunk of `steps` steps with frames of `frame_hw`.
pub fn episode_chunk(
    cfg: &ModelConfig,
    steps: usize,
    frame_hw: (usize, usize),
    seed: u64,
    last: bool,
) -> EpisodeChunk {
    let mut rng = Pcg64::seed_from_u64(seed);
    let (h, w) = cfg.grid();
    let maps = steps * cfg.heads * h * w;
    let attention: Vec<f32> = (0..maps).map(|_| 1.0 / (h * w) as f32).collect();
    let actions: Vec<i64> = (0..steps).map(|_| rng.gen_range(0..cfg.num_actions as i64)).collect();
    EpisodeChunk {
        uid: EpisodeUid { actor: 1, env: 2, counter: seed },
        sequence: 0,
        params_version: 7,
        frame: Array::from_u8(
            vec![steps, frame_hw.0, frame_hw.1, 3],
            random_u8(&mut rng, steps * frame_hw.0 * frame_hw.1 * 3),
        ),
        action: Array::from_i64(vec![steps], &actions),
        reward: Array::from_f32(vec![steps], &random_f32(&mut rng, steps)),
        baseline: Array::from_f32(vec![steps], &random_f32(&mut rng, steps)),
        policy_logits: Array::from_f32(
            vec![steps, cfg.num_actions],
            &random_f32(&mut rng, steps * cfg.num_actions),
        ),
        attention: Array::from_f32(vec![steps, cfg.heads, h, w], &attention),
        attention_content: Array::from_f32(
            vec![steps, cfg.heads, h, w],
            &random_f32(&mut rng, maps),
        ),
        attention_place: Array::from_f32(vec![steps, cfg.heads, h, w], &random_f32(&mut rng, maps)),
        ram: Some(Array::from_u8(
            vec![steps, crate::protocol::RAM_BYTES],
            random_u8(&mut rng, steps * 128),
        )),
        objects: None,
        object_names: Vec::new(),
        end: last.then_some(EpisodeEnd {
            episode_return: 12.5,
            length: steps as u64,
            complete: true,
        }),
    }
}

/// A valid central-inference request for `envs` environments with random
/// frames; `record` marks which are recorded.
pub fn observations(
    cfg: &ModelConfig,
    envs: usize,
    stream: u64,
    seq: u64,
    record: &[bool],
    seed: u64,
) -> Observations {
    let mut rng = Pcg64::seed_from_u64(seed);
    let done: Vec<u8> = (0..envs).map(|_| u8::from(rng.gen_bool(0.1))).collect();
    Observations {
        actor_id: 1,
        stream,
        seq,
        first_env: 0,
        frame: Array::from_u8(
            vec![envs, cfg.height, cfg.width, cfg.in_channels],
            random_u8(&mut rng, envs * cfg.frame_len()),
        ),
        reward: Array::from_f32(vec![envs], &random_f32(&mut rng, envs)),
        done: Array::from_u8(vec![envs], done),
        episode_return: Array::from_f32(vec![envs], &random_f32(&mut rng, envs)),
        episode_step: Array::from_i64(vec![envs], &vec![seq as i64; envs]),
        record: Array::from_u8(
            vec![envs],
            (0..envs).map(|i| u8::from(record.get(i).copied().unwrap_or(false))).collect(),
        ),
    }
}

/// Environment variable naming the file where [`skip_test`] records skipped
/// tests; `scripts/test.sh` sets it and lists them at the end of its output.
pub const SKIP_LOG_VAR: &str = "AAA_SKIP_LOG";

/// Says that a test cannot run on this machine, and why, then the test
/// returns. Rust's test harness has no skip at run time, so cargo counts the
/// test as passed; this makes the skip loud instead: a line on the terminal
/// that the harness does not capture, and a line in the file `AAA_SKIP_LOG`
/// names, which `scripts/test.sh` lists as skipped, apart from the passes.
/// With `AAA_NO_SKIP=1` a skip fails the test instead (for a CI machine that
/// must run everything).
pub fn skip_test(test: &str, reason: &str) {
    if std::env::var_os("AAA_NO_SKIP").is_some_and(|v| v == "1") {
        panic!("SKIPPED {test}: {reason}, and AAA_NO_SKIP=1 forbids skipping");
    }
    announce(&format!("SKIPPED {test}: {reason}"));
}

/// For a test that checks less on this machine or in this run than it is
/// meant to (a shorter check, a second try; it says which and why): as loud
/// as [`skip_test`], listed apart by `scripts/test.sh`.
pub fn note_checked_less(test: &str, what: &str) {
    announce(&format!("CHECKED LESS {test}: {what}"));
}

/// A line on the terminal that the harness does not capture, and in the
/// file `AAA_SKIP_LOG` names.
fn announce(line: &str) {
    use std::io::Write;
    // Straight to the file descriptor: libtest captures only print! and eprint!.
    let _ = writeln!(std::io::stderr(), "\n{line}");
    if let Some(path) = std::env::var_os(SKIP_LOG_VAR).filter(|p| !p.is_empty()) {
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(file, "{line}");
        }
    }
}
