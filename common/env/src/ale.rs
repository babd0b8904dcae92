//! Atari 2600 games through the Arcade Learning Environment (ALE 0.6, the
//! atari-py C wrapper vendored by `atari-env-sys`).
//!
//! Three parts:
//! - [`Ale`] ([`emulator`]): a safe owner of one `ALEInterface*` (freed on
//!   drop). It checks the ROM before ALE sees it, because ALE 0.6 calls
//!   `exit(1)` on a missing or unreadable ROM and dereferences null on a game
//!   it does not know.
//! - the palette fast path ([`palette`]): indices to RGB by table.
//! - [`AtariEnv`]: the paper's preprocessing on top (docs/architecture.md,
//!   Atari preprocessing), done here in Rust (ALE runs with `frame_skip` 1) so
//!   each step is testable: no-op starts, action repeat
//!   with the maximum over the last two frames, the frame cap, sticky actions,
//!   minimal or full action set, episodic life, fire on reset, resize/grayscale.
//!
//! Object positions for analysis come from the RAM where a decoder exists
//! ([`object_decoder`]): Seaquest's own ([`seaquest`]), and the games declared
//! as tables ([`games`], read by [`objects`]); other games report none.

mod emulator;
pub mod games;
pub mod objects;
mod palette;
pub mod seaquest;

pub use emulator::*;

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::preprocess::{max_pool, rgb_to_gray, Resizer};
use crate::{find_rom, EnvError, EnvSpec, Environment, StepResult};
use palette::{indices_to_rgb, max_pool_indices};

/// An Atari game with the paper's preprocessing (docs/architecture.md, Atari
/// preprocessing). See [`EnvSpec`] for each flag.
pub struct AtariEnv {
    ale: Ale,
    /// Agent action index -> ALE action id.
    actions: Vec<i32>,
    rng: Pcg64,
    noop_max: u32,
    action_repeat: u32,
    max_frames: u64,
    episodic_life: bool,
    fire_reset: bool,
    grayscale: bool,
    /// Map palette indices through [`NTSC_PALETTE`] (checked at every game
    /// reset); false: ask ALE for RGB frames.
    palette_ok: bool,
    /// The last two emulator frames of a step: palette indices [210, 160]
    /// (or RGB [210, 160, 3] when `palette_ok` is false).
    frames: [Vec<u8>; 2],
    /// The current frame before resize: RGB max of the last two frames.
    pooled: Vec<u8>,
    /// The model input of the current frame, when it differs from `pooled`.
    obs: Vec<u8>,
    resizer: Option<Resizer>,
    obs_shape: (usize, usize, usize),
    /// Emulator frames since the last game reset (no-ops included).
    episode_frames: u64,
    /// Emulator frames since construction (benchmarks count these).
    total_frames: u64,
    lives: i32,
    /// The game must be reset at the next `reset` (game over, frame cap).
    game_ended: bool,
    last_noops: u32,
    /// Reads object positions from the RAM, for games that have a decoder.
    decode_objects: Option<ObjectDecoder>,
}

/// Reads object positions from the 128-byte RAM: (name, row, col) in frame
/// pixels, every name of the game each time, NaN where the object is absent.
#[derive(Clone, Copy)]
pub enum ObjectDecoder {
    Seaquest,
    Table(&'static objects::Game),
}

impl ObjectDecoder {
    pub fn decode(self, ram: &[u8; RAM_SIZE]) -> Vec<(&'static str, f32, f32)> {
        match self {
            ObjectDecoder::Seaquest => seaquest::objects(ram),
            ObjectDecoder::Table(game) => game.positions(ram),
        }
    }
}

/// The RAM decoder of `game`'s objects, if this crate has one.
pub fn object_decoder(game: &str) -> Option<ObjectDecoder> {
    match game {
        "seaquest" => Some(ObjectDecoder::Seaquest),
        _ => games::table(game).map(ObjectDecoder::Table),
    }
}

/// The games whose objects are read from the RAM, by ROM name.
pub fn games_with_objects() -> Vec<&'static str> {
    std::iter::once("seaquest").chain(games::TABLES.iter().map(|g| g.name)).collect()
}

impl AtariEnv {
    /// Loads the game's ROM (see [`find_rom`]) and resets it.
    pub fn new(spec: &EnvSpec, seed: u64) -> Result<AtariEnv, EnvError> {
        spec.validate()?;
        let rom = find_rom(&spec.game, spec.rom_dir.as_deref())?;
        let sticky = if spec.sticky_actions { STICKY_ACTION_PROBABILITY } else { 0.0 };
        let ale = Ale::load(&rom, ale_seed(seed), sticky)?;
        let actions =
            if spec.full_action_set { ale.legal_action_set() } else { ale.minimal_action_set() };
        if actions.is_empty() {
            return Err(EnvError::Ale { rom, message: "ALE reports no actions".into() });
        }
        let screen = ale.screen_size();
        let pixels = ale.screen_pixels();
        let same_size = (spec.obs_height, spec.obs_width) == screen;
        let resizer = (!same_size).then(|| Resizer::new(screen, (spec.obs_height, spec.obs_width)));
        let obs_shape = (spec.obs_height, spec.obs_width, spec.obs_channels());
        let mut env = AtariEnv {
            ale,
            actions,
            rng: Pcg64::seed_from_u64(seed),
            noop_max: spec.noop_max,
            action_repeat: spec.action_repeat.max(1),
            max_frames: spec.max_frames,
            episodic_life: spec.episodic_life,
            fire_reset: spec.fire_reset,
            grayscale: spec.grayscale,
            palette_ok: true,
            frames: [vec![0; pixels], vec![0; pixels]],
            pooled: vec![0; pixels * 3],
            obs: vec![0; obs_shape.0 * obs_shape.1 * obs_shape.2],
            resizer,
            obs_shape,
            episode_frames: 0,
            total_frames: 0,
            lives: 0,
            game_ended: true,
            last_noops: 0,
            decode_objects: object_decoder(&spec.game),
        };
        env.reset();
        Ok(env)
    }

    /// ALE action ids in agent action order.
    pub fn action_set(&self) -> &[i32] {
        &self.actions
    }

    /// No-op frames played by the last game reset.
    pub fn last_noops(&self) -> u32 {
        self.last_noops
    }

    /// Emulator frames since the last game reset (no-ops included).
    pub fn episode_frames(&self) -> u64 {
        self.episode_frames
    }

    /// Emulator frames played since construction.
    pub fn total_frames(&self) -> u64 {
        self.total_frames
    }

    /// True while frames are read as palette indices and mapped through the
    /// NTSC palette (the fast path), false after a fallback to `getScreenRGB`.
    pub fn uses_palette(&self) -> bool {
        self.palette_ok
    }

    /// The raw emulator, for tests and analysis.
    pub fn ale(&self) -> &Ale {
        &self.ale
    }

    #[inline]
    fn act_frame(&mut self, action: i32) -> i32 {
        self.episode_frames += 1;
        self.total_frames += 1;
        self.ale.act(action)
    }

    fn capped(&self) -> bool {
        self.episode_frames >= self.max_frames
    }

    fn capture(&mut self, slot: usize) {
        if self.palette_ok {
            self.ale.screen_indices(&mut self.frames[slot]);
        } else {
            self.ale.screen_rgb(&mut self.frames[slot]);
        }
    }

    /// Sets the current frame to the emulator's screen, unpooled.
    fn capture_current(&mut self) {
        self.capture(0);
        if self.palette_ok {
            indices_to_rgb(&self.frames[0], &mut self.pooled);
        } else {
            self.pooled.copy_from_slice(&self.frames[0]);
        }
        self.update_obs();
    }

    /// Checks the palette table against ALE's own RGB of the current screen;
    /// on a mismatch, reads RGB from ALE from now on.
    fn check_palette(&mut self) {
        if !self.palette_ok {
            return;
        }
        let pixels = self.ale.screen_pixels();
        let mut idx = vec![0u8; pixels];
        self.ale.screen_indices(&mut idx);
        let mut ours = vec![0u8; pixels * 3];
        indices_to_rgb(&idx, &mut ours);
        let mut theirs = vec![0u8; pixels * 3];
        self.ale.screen_rgb(&mut theirs);
        if ours != theirs {
            tracing::warn!("ALE's palette is not NTSC for this game: reading RGB frames from ALE");
            self.palette_ok = false;
            self.frames = [vec![0; pixels * 3], vec![0; pixels * 3]];
        }
    }

    fn update_obs(&mut self) {
        match &mut self.resizer {
            None if !self.grayscale => {}
            None => rgb_to_gray(&self.pooled, &mut self.obs),
            Some(r) => r.resize(&self.pooled, &mut self.obs, self.grayscale),
        }
    }

    /// Plays ALE action `action` for up to `action_repeat` frames (fewer if
    /// the game ends or the cap is hit) and max-pools the last two frames.
    /// Returns (summed reward, game ended).
    fn repeat(&mut self, action: i32) -> (i32, bool) {
        let n = self.action_repeat;
        let mut reward = 0;
        // Slot in `frames` of the newest captured frame, and whether the
        // frame just before it was captured too.
        let mut newest = None;
        let mut have_previous = false;
        for i in 0..n {
            reward += self.act_frame(action);
            let ended = self.ale.game_over() || self.capped();
            if i + 2 >= n || ended {
                let slot = (i % 2) as usize;
                self.capture(slot);
                have_previous = newest.is_some();
                newest = Some(slot);
            }
            if ended {
                break;
            }
        }
        let newest = newest.expect("at least one frame is captured");
        match (have_previous, self.palette_ok) {
            (true, true) => max_pool_indices(&self.frames[0], &self.frames[1], &mut self.pooled),
            (true, false) => max_pool(&self.frames[0], &self.frames[1], &mut self.pooled),
            (false, true) => indices_to_rgb(&self.frames[newest], &mut self.pooled),
            (false, false) => self.pooled.copy_from_slice(&self.frames[newest]),
        }
        self.update_obs();
        (reward, self.ale.game_over() || self.capped())
    }

    fn hard_reset(&mut self) {
        self.ale.reset_game();
        self.episode_frames = 0;
        self.last_noops = 0;
        if self.noop_max > 0 {
            let noops = self.rng.gen_range(1..=self.noop_max);
            for _ in 0..noops {
                self.act_frame(NOOP);
                self.last_noops += 1;
                if self.ale.game_over() {
                    self.ale.reset_game();
                    self.episode_frames = 0;
                    self.last_noops = 0;
                }
            }
        }
        self.game_ended = false;
    }
}

impl Environment for AtariEnv {
    fn num_actions(&self) -> usize {
        self.actions.len()
    }

    fn observation_shape(&self) -> (usize, usize, usize) {
        self.obs_shape
    }

    fn reset(&mut self) {
        let hard = self.game_ended || !self.episodic_life;
        if hard {
            self.hard_reset();
        }
        if self.fire_reset && self.actions.contains(&FIRE) {
            let (_, ended) = self.repeat(FIRE);
            if ended {
                self.hard_reset();
            }
        }
        if hard {
            self.check_palette();
        }
        self.capture_current();
        self.lives = self.ale.lives();
    }

    fn step(&mut self, action: usize) -> StepResult {
        let ale_action = self.actions[action];
        let (reward, game_over) = self.repeat(ale_action);
        self.game_ended = game_over;
        let lives = self.ale.lives();
        let life_lost = lives < self.lives && lives > 0;
        self.lives = lives;
        StepResult {
            reward: reward as f32,
            episode_over: game_over || (self.episodic_life && life_lost),
            game_over,
        }
    }

    fn observation(&self, out: &mut [u8]) {
        if self.resizer.is_none() && !self.grayscale {
            out.copy_from_slice(&self.pooled);
        } else {
            out.copy_from_slice(&self.obs);
        }
    }

    fn render_rgb(&self) -> (usize, usize, &[u8]) {
        let (h, w) = self.ale.screen_size();
        (h, w, &self.pooled)
    }

    fn ram(&self) -> Option<[u8; 128]> {
        Some(self.ale.ram())
    }

    fn objects(&self) -> Vec<(&'static str, f32, f32)> {
        match self.decode_objects {
            Some(decoder) => decoder.decode(&self.ale.ram()),
            None => Vec::new(),
        }
    }
}

/// The virtualenv's ROM directory as [`find_rom`] resolves it, for tests and
/// benchmarks that need a real ROM.
pub fn default_rom(game: &str) -> Result<PathBuf, EnvError> {
    find_rom(game, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::make_env;
    use std::collections::HashSet;

    fn seaquest() -> EnvSpec {
        EnvSpec::atari_default("seaquest")
    }

    /// A raw ALE with the same ROM and ALE seed as `AtariEnv::new(spec, seed)`.
    fn raw_twin(spec: &EnvSpec, seed: u64) -> Ale {
        let rom = find_rom(&spec.game, None).expect("run scripts/bootstrap.sh for the ROMs");
        let sticky = if spec.sticky_actions { STICKY_ACTION_PROBABILITY } else { 0.0 };
        Ale::load(&rom, ale_seed(seed), sticky).unwrap()
    }

    fn screen(ale: &Ale) -> Vec<u8> {
        let mut s = vec![0; ale.screen_pixels() * 3];
        ale.screen_rgb(&mut s);
        s
    }

    /// Seaquest from the virtualenv's ROMs, one random episode to its end, in
    /// lockstep with a raw ALE fed the same frames: every agent step's reward
    /// is the sum of ALE's per-frame rewards, and every observation is the
    /// maximum of the step's last two raw frames.
    #[test]
    fn seaquest_episode_matches_raw_ale_frame_by_frame() {
        let seed = 17;
        let spec = seaquest();
        let mut env = AtariEnv::new(&spec, seed).unwrap();
        let mut raw = raw_twin(&spec, seed);
        assert_eq!(env.num_actions(), 18, "Seaquest's minimal set is all 18 actions");
        assert!(env.uses_palette(), "Seaquest is NTSC: the fast palette path must be on");
        raw.reset_game();
        for _ in 0..env.last_noops() {
            raw.act(NOOP);
        }
        assert!(env.render_rgb().2 == screen(&raw), "frame after the no-op start");

        let mut rng = Pcg64::seed_from_u64(99);
        let (mut env_return, mut raw_return, mut steps, mut pooled_differs) = (0.0, 0i64, 0, 0);
        let mut obs = vec![0u8; 210 * 160 * 3];
        loop {
            let a = rng.gen_range(0..env.num_actions());
            let step = env.step(a);
            let mut reward = 0;
            let mut frames = Vec::new();
            for _ in 0..4 {
                reward += raw.act(env.action_set()[a]);
                frames.push(screen(&raw));
                if raw.game_over() {
                    break;
                }
            }
            let expect = match frames.len() {
                1 => frames[0].clone(),
                n => frames[n - 2].iter().zip(&frames[n - 1]).map(|(a, b)| *a.max(b)).collect(),
            };
            env.observation(&mut obs);
            assert!(obs == expect, "max-pooled frame differs at step {steps}");
            pooled_differs += usize::from(expect != *frames.last().unwrap());
            assert_eq!(step.reward, reward as f32, "reward at step {steps}");
            assert_eq!(step.episode_over, raw.game_over(), "end at step {steps}");
            env_return += f64::from(step.reward);
            raw_return += i64::from(reward);
            steps += 1;
            if step.episode_over {
                break;
            }
            assert!(steps < 27_000, "a random Seaquest episode should end");
        }
        assert!(step_was_game_over(&env));
        assert_eq!(env_return, raw_return as f64);
        assert_eq!(env.episode_frames(), raw.episode_frame_number() as u64);
        // The pooling must have mattered somewhere, or this test checks nothing.
        assert!(pooled_differs > 0, "max-pooling never changed a frame");
        println!(
            "seaquest random episode: {steps} agent steps, {} frames, return {env_return}, \
             {pooled_differs} steps where pooling changed the frame",
            env.episode_frames()
        );
    }

    fn step_was_game_over(env: &AtariEnv) -> bool {
        env.ale().game_over()
    }

    #[test]
    fn noop_starts_play_the_drawn_number_of_noop_frames() {
        let spec = seaquest();
        let mut counts = HashSet::new();
        let mut frames = HashSet::new();
        for seed in 0..12 {
            let mut env = AtariEnv::new(&spec, seed).unwrap();
            // A raw twin mirrors every frame the env plays, since ALE's reset
            // does not erase all emulator state.
            let mut raw = raw_twin(&spec, seed);
            for episode in 0..3 {
                let n = env.last_noops();
                assert!((1..=30).contains(&n), "{n} no-ops");
                raw.reset_game();
                for _ in 0..n {
                    raw.act(NOOP);
                }
                assert!(
                    env.render_rgb().2 == screen(&raw),
                    "seed {seed} episode {episode}: frame after {n} no-ops"
                );
                assert_eq!(env.episode_frames(), u64::from(n));
                counts.insert(n);
                frames.insert(env.render_rgb().2.to_vec());
                env.step(1);
                for _ in 0..4 {
                    raw.act(env.action_set()[1]);
                }
                env.reset();
            }
        }
        assert!(counts.len() > 5, "no-op counts barely vary: {counts:?}");
        assert!(frames.len() > 1, "different no-op starts gave the same frame");
        // noop_max 0: the first frame is ALE's reset frame.
        let env = AtariEnv::new(&EnvSpec { noop_max: 0, ..spec.clone() }, 3).unwrap();
        let mut raw = raw_twin(&spec, 3);
        raw.reset_game();
        assert_eq!(env.last_noops(), 0);
        assert!(env.render_rgb().2 == screen(&raw));
    }

    fn play_frames(spec: &EnvSpec, seed: u64, steps: usize) -> Vec<u64> {
        let mut env = make_env(spec, seed).unwrap();
        let mut out = Vec::new();
        let mut rng = Pcg64::seed_from_u64(5); // the same actions for every env
        let mut obs = vec![0; 210 * 160 * 3];
        for _ in 0..steps {
            if env.step(rng.gen_range(0..env.num_actions())).episode_over {
                env.reset();
            }
            env.observation(&mut obs);
            out.push(obs.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            }));
        }
        out
    }

    #[test]
    fn same_seed_replays_the_same_frames_and_other_seeds_do_not() {
        // Sticky actions on, so ALE's own RNG takes part as well as the no-ops.
        let spec = EnvSpec { sticky_actions: true, ..seaquest() };
        let a = play_frames(&spec, crate::derive_seed(1, 0, 0), 300);
        let b = play_frames(&spec, crate::derive_seed(1, 0, 0), 300);
        let c = play_frames(&spec, crate::derive_seed(1, 0, 1), 300);
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Without no-ops the streams differ only through sticky actions.
        let spec = EnvSpec { noop_max: 0, ..spec };
        assert_ne!(play_frames(&spec, 1, 300), play_frames(&spec, 2, 300));
    }

    /// Every game in the virtualenv either matches the NTSC palette table on
    /// every sampled frame, or `AtariEnv` notices at reset and reads RGB.
    #[test]
    fn palette_table_matches_ale_rgb_or_env_falls_back() {
        let (mut fast, mut fallback) = (Vec::new(), Vec::new());
        for game in SUPPORTED_GAMES {
            let Ok(rom) = find_rom(game, None) else { continue };
            let mut ale = Ale::load(&rom, 1, 0.0).unwrap();
            let actions = ale.minimal_action_set();
            let mut rng = Pcg64::seed_from_u64(3);
            let pixels = ale.screen_pixels();
            let (mut idx, mut ours) = (vec![0; pixels], vec![0; pixels * 3]);
            let mut matches = true;
            for t in 0..600 {
                ale.act(actions[rng.gen_range(0..actions.len())]);
                if ale.game_over() {
                    ale.reset_game();
                }
                if t % 20 == 0 {
                    ale.screen_indices(&mut idx);
                    indices_to_rgb(&idx, &mut ours);
                    matches &= ours == screen(&ale);
                }
            }
            let mut env = AtariEnv::new(&EnvSpec::atari_default(*game), 1).unwrap();
            // The model input is 210x160 whatever the game's screen size.
            let mut obs = vec![0; 210 * 160 * 3];
            env.step(0);
            env.observation(&mut obs);
            let (h, w, frame) = env.render_rgb();
            assert_eq!((h, w), ale.screen_size());
            assert_eq!(frame.len(), h * w * 3);
            if matches {
                fast.push(*game);
            } else {
                assert!(!env.uses_palette(), "{game}: palette differs but the env did not notice");
                fallback.push(*game);
            }
        }
        println!("palette table: {} games fast, fallback to RGB: {fallback:?}", fast.len());
        assert!(fast.contains(&"seaquest") && fast.contains(&"pong"), "{fast:?}");
    }

    #[test]
    fn ram_is_the_emulator_ram() {
        let mut env = AtariEnv::new(&seaquest(), 4).unwrap();
        env.step(0);
        let ram = env.ram().unwrap();
        assert_eq!(ram, env.ale().ram());
        assert!(ram.iter().any(|&b| b != 0));
    }

    #[test]
    fn frame_cap_ends_the_episode() {
        let spec = EnvSpec { max_frames: 103, noop_max: 0, ..seaquest() };
        let mut env = AtariEnv::new(&spec, 1).unwrap();
        let mut steps = 0;
        while !env.step(0).episode_over {
            steps += 1;
        }
        assert_eq!(steps, 25); // 26th step hits the cap after 3 of its 4 frames
        assert_eq!(env.episode_frames(), 103);
        env.reset();
        assert_eq!(env.episode_frames(), 0);
    }

    #[test]
    fn episodic_life_ends_episodes_at_lost_lives_without_resetting_the_game() {
        let spec = EnvSpec { episodic_life: true, ..seaquest() };
        let mut env = AtariEnv::new(&spec, 2).unwrap();
        let mut rng = Pcg64::seed_from_u64(1);
        let (mut lives_lost, mut games) = (0, 0);
        while games == 0 {
            let step = env.step(rng.gen_range(0..env.num_actions()));
            if step.episode_over {
                if step.game_over {
                    games += 1;
                } else {
                    lives_lost += 1;
                    let frames = env.episode_frames();
                    env.reset();
                    assert_eq!(env.episode_frames(), frames, "a lost life must not reset");
                    continue;
                }
                env.reset();
            }
        }
        assert!(lives_lost >= 3, "Seaquest has 4 lives: {lives_lost} lost before game over");
    }

    #[test]
    fn resized_grayscale_observation_and_full_action_set() {
        let spec = EnvSpec {
            obs_height: 84,
            obs_width: 84,
            grayscale: true,
            full_action_set: true,
            fire_reset: true,
            ..EnvSpec::atari_default("pong")
        };
        assert_eq!(spec.num_actions().unwrap(), 18);
        assert_eq!(EnvSpec::atari_default("pong").num_actions().unwrap(), 6);
        let mut env = make_env(&spec, 1).unwrap();
        assert_eq!(env.num_actions(), 18);
        assert_eq!(env.observation_shape(), (84, 84, 1));
        env.step(3);
        let mut obs = vec![0; 84 * 84];
        env.observation(&mut obs);
        let mut expect = vec![0; 84 * 84];
        crate::preprocess::Resizer::new((210, 160), (84, 84)).resize(
            env.render_rgb().2,
            &mut expect,
            true,
        );
        assert!(obs == expect, "resized observation differs from resizing the frame");
        assert_eq!(env.render_rgb().0, 210);
    }
}
