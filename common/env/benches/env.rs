//! Environment throughput: the wrapped Atari env (the preprocessing of
//! docs/architecture.md, Atari preprocessing) next to raw ALE `act()` on the
//! same game in the same run, and the built-in game.
//!
//! `cargo bench -p env --bench env [-- GAME [FRAMES]]` (default seaquest,
//! 200,000 emulator frames per configuration). Prints a markdown table; the
//! figures go to docs/performance.md.
//!
//! The dev machine is shared, so the configurations run interleaved in slices
//! of 5,000 frames (raw, paper, 84x84, catch, raw, ...) and both wall-clock and
//! process CPU time (from /proc/self/stat, 10 ms ticks) are summed per
//! configuration: load from other processes then hits all rows alike, and the
//! CPU-time column does not count time spent waiting for a core.

use std::time::Instant;

use env::ale::{Ale, AtariEnv};
use env::{catch::Catch, find_rom, EnvSpec, Environment};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

const SLICE: u64 = 5_000;

/// Totals of one configuration.
#[derive(Default)]
struct Totals {
    steps: u64,
    frames: u64,
    wall: f64,
    cpu: f64,
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|r| r.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs `slice` (returns agent steps and frames played) and adds its cost.
fn timed(t: &mut Totals, slice: impl FnOnce() -> (u64, u64)) {
    let (c0, w0) = (cpu_seconds(), Instant::now());
    let (steps, frames) = slice();
    t.wall += w0.elapsed().as_secs_f64();
    t.cpu += cpu_seconds() - c0;
    t.steps += steps;
    t.frames += frames;
}

/// Raw ALE: a random minimal-set action held for 4 frames, `act()` per frame,
/// `reset_game` at game over, nothing else.
struct Raw {
    ale: Ale,
    actions: Vec<i32>,
    rng: Pcg64,
    sum: i64,
}

impl Raw {
    fn run(&mut self, frames: u64) -> (u64, u64) {
        let (mut done, mut steps) = (0u64, 0u64);
        while done < frames {
            let a = self.actions[self.rng.gen_range(0..self.actions.len())];
            for _ in 0..4 {
                self.sum += i64::from(self.ale.act(a));
                done += 1;
                if self.ale.game_over() {
                    self.ale.reset_game();
                    break;
                }
            }
            steps += 1;
        }
        (steps, done)
    }
}

/// The wrapped env: `step` then `observation` into the model-input buffer,
/// `reset` at episode end, as the actor drives it.
struct Wrapped {
    env: AtariEnv,
    obs: Vec<u8>,
    rng: Pcg64,
}

impl Wrapped {
    fn new(spec: &EnvSpec) -> Self {
        let env = AtariEnv::new(spec, 1).unwrap();
        let (h, w, c) = env.observation_shape();
        Wrapped { env, obs: vec![0; h * w * c], rng: Pcg64::seed_from_u64(1) }
    }

    fn run(&mut self, frames: u64) -> (u64, u64) {
        let first = self.env.total_frames();
        let n = self.env.num_actions();
        let mut steps = 0;
        while self.env.total_frames() - first < frames {
            if self.env.step(self.rng.gen_range(0..n)).episode_over {
                self.env.reset();
            }
            self.env.observation(&mut self.obs);
            steps += 1;
        }
        (steps, self.env.total_frames() - first)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let game = args.first().cloned().unwrap_or_else(|| "seaquest".into());
    let frames: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200_000);

    let rom = find_rom(&game, None).expect("ROM");
    let ale = Ale::load(&rom, 1, 0.0).unwrap();
    let actions = ale.minimal_action_set();
    let mut raw = Raw { ale, actions, rng: Pcg64::seed_from_u64(1), sum: 0 };
    let paper_spec = EnvSpec::atari_default(game.clone());
    let small_spec =
        EnvSpec { obs_height: 84, obs_width: 84, grayscale: true, ..paper_spec.clone() };
    let mut paper = Wrapped::new(&paper_spec);
    let mut small = Wrapped::new(&small_spec);
    let catch_spec = EnvSpec::catch_default();
    let mut catch = Catch::new(&catch_spec, 1).unwrap();
    let mut catch_obs = vec![0u8; catch_spec.obs_height * catch_spec.obs_width * 3];
    let mut catch_rng = Pcg64::seed_from_u64(1);

    let mut t = [Totals::default(), Totals::default(), Totals::default(), Totals::default()];
    for _ in 0..frames.div_ceil(SLICE) {
        timed(&mut t[0], || raw.run(SLICE));
        timed(&mut t[1], || paper.run(SLICE));
        timed(&mut t[2], || small.run(SLICE));
        timed(&mut t[3], || {
            let n = SLICE * 20;
            for _ in 0..n {
                if catch.step(catch_rng.gen_range(0..3)).episode_over {
                    catch.reset();
                }
                catch.observation(&mut catch_obs);
            }
            (n, n)
        });
    }
    std::hint::black_box((raw.sum, &catch_obs));

    println!("env benchmark: {game}, {frames} emulator frames per configuration, interleaved\n");
    println!("| environment | agent steps/s | emulator frames/s | vs raw (wall) | frames per CPU s | vs raw (CPU) |");
    println!("|---|---:|---:|---:|---:|---:|");
    let fps = |x: &Totals| x.frames as f64 / x.wall;
    let cps = |x: &Totals| x.frames as f64 / x.cpu.max(1e-9);
    let rel = |a: f64, b: f64| format!("{:+.1}%", (a / b - 1.0) * 100.0);
    let names = [
        format!("raw ALE act(), {game} (4 frames per step)"),
        format!("AtariEnv {game}, paper: RGB 210x160, max-pool, obs copy"),
        format!("AtariEnv {game}, 84x84 gray: + area resize"),
        "catch 42x42 RGB (1 frame per step)".to_string(),
    ];
    for (i, (name, x)) in names.iter().zip(&t).enumerate() {
        let (vs_wall, vs_cpu) = match i {
            0 => ("-".to_string(), "-".to_string()),
            3 => (
                format!(
                    "{:.0}x agent steps/s",
                    (x.steps as f64 / x.wall) / (t[0].steps as f64 / t[0].wall)
                ),
                "-".to_string(),
            ),
            _ => (rel(fps(x), fps(&t[0])), rel(cps(x), cps(&t[0]))),
        };
        println!(
            "| {name} | {:.0} | {:.0} | {vs_wall} | {:.0} | {vs_cpu} |",
            x.steps as f64 / x.wall,
            fps(x),
            cps(x)
        );
    }
}
