//! Environments the actor drives: Atari through ALE and the built-in games.
//!
//! The actor sees one trait, [`Environment`], and builds every environment with
//! [`make_env`] from an [`EnvSpec`] and a seed from [`derive_seed`]; it never
//! knows whether it drives ALE ([`ale::AtariEnv`]), the built-in pixel game
//! ([`catch::Catch`]) or the scripted environment that checks the step
//! alignment ([`probe::Probe`]).
//!
//! Conventions shared by both:
//! - `step` returns the raw, unclipped reward summed over the action repeat;
//!   the learner clips, the actor's episode returns stay raw.
//! - `observation` writes the model input, u8 `[H, W, C]`, of the current state;
//!   `render_rgb` gives the full-resolution RGB frame the recorder stores, and
//!   `objects` gives ground-truth object centres in that frame's pixels.
//! - An environment is ready after [`make_env`]: it has already been reset.
//!   After `episode_over` the caller calls `reset` before the next `step`.
//!
//! Atari preprocessing (docs/architecture.md, Atari preprocessing) lives in
//! [`ale`] and [`preprocess`]; what each [`EnvSpec`] flag does is documented
//! on the field.

pub mod ale;
pub mod catch;
pub mod preprocess;
pub mod probe;

use std::path::{Path, PathBuf};

/// Which game to build and how to preprocess it. Every field is a flag of the
/// actor; the defaults are the paper's (docs/architecture.md, Atari preprocessing).
#[derive(Clone, Debug, PartialEq)]
pub struct EnvSpec {
    /// `"catch"` or `"probe"` for the built-in games, else an ALE game name
    /// (`seaquest`, `pong`, ...).
    pub game: String,
    /// Directory holding `<game>.bin`; overrides `AAA_ROM_DIR` and the virtualenv.
    pub rom_dir: Option<PathBuf>,
    /// Atari: a reset plays a uniform number of no-op frames in `1..=noop_max`
    /// (0 turns no-op starts off). Default 30.
    pub noop_max: u32,
    /// Atari: emulator frames per agent step; the observation is the pixel-wise
    /// maximum of the last two of them. Default 4.
    pub action_repeat: u32,
    /// Atari: an episode ends after this many emulator frames (counting the
    /// no-op frames). Default 108,000 (30 minutes of play).
    pub max_frames: u64,
    /// Atari: sticky actions, ALE's `repeat_action_probability` = 0.25 when on,
    /// 0 when off. Default off.
    pub sticky_actions: bool,
    /// Atari: all 18 joystick actions instead of the game's minimal set.
    pub full_action_set: bool,
    /// Atari: a lost life ends the agent's episode (the game goes on at the
    /// next `reset`, without a game reset or no-ops). Default off.
    pub episodic_life: bool,
    /// Atari: press FIRE after every reset (games that wait for it). Default off.
    pub fire_reset: bool,
    /// Model-input height; Atari frames are area-resized to it, the built-in
    /// game is rendered at it.
    pub obs_height: usize,
    /// Model-input width.
    pub obs_width: usize,
    /// Model input in one luminance channel instead of RGB.
    pub grayscale: bool,
}

impl EnvSpec {
    /// The paper's Atari setting: RGB 210x160, 30 no-ops, repeat 4 with max
    /// over the last two frames, 108,000-frame cap, no sticky actions, the
    /// game's minimal action set.
    pub fn atari_default(game: impl Into<String>) -> Self {
        EnvSpec {
            game: game.into(),
            rom_dir: None,
            noop_max: 30,
            action_repeat: 4,
            max_frames: 108_000,
            sticky_actions: false,
            full_action_set: false,
            episodic_life: false,
            fire_reset: false,
            obs_height: ale::SCREEN_HEIGHT,
            obs_width: ale::SCREEN_WIDTH,
            grayscale: false,
        }
    }

    /// The built-in game at the `small` preset's input size (RGB 42x42).
    /// The environment every process of a run assumes for `game`: the game's
    /// defaults with the run's action set. The actor refines it with its
    /// preprocessing flags; learner and recorder need only its action count.
    pub fn of_run(game: &str, full_action_set: bool) -> Self {
        let base = if is_builtin_game(game) {
            EnvSpec::builtin_default(game)
        } else {
            EnvSpec::atari_default(game)
        };
        EnvSpec { full_action_set, ..base }
    }

    pub fn catch_default() -> Self {
        Self::builtin_default(catch::GAME_NAME)
    }

    /// A built-in game (`catch` or `probe`) at the `small` preset's input
    /// size (RGB 42x42): no ROM, no no-ops, no action repeat.
    pub fn builtin_default(game: &str) -> Self {
        EnvSpec {
            game: game.into(),
            rom_dir: None,
            noop_max: 0,
            action_repeat: 1,
            max_frames: u64::MAX,
            sticky_actions: false,
            full_action_set: false,
            episodic_life: false,
            fire_reset: false,
            obs_height: 42,
            obs_width: 42,
            grayscale: false,
        }
    }

    /// True for the built-in games, false for ALE games.
    pub fn is_builtin(&self) -> bool {
        is_builtin_game(&self.game)
    }

    /// Channels of the model input: 1 for grayscale, else 3.
    pub fn obs_channels(&self) -> usize {
        if self.grayscale {
            1
        } else {
            3
        }
    }

    /// Number of actions A the model needs. For an Atari game's minimal action
    /// set this loads the ROM once (tens of milliseconds).
    pub fn num_actions(&self) -> Result<usize, EnvError> {
        if self.game == probe::GAME_NAME {
            return Ok(probe::NUM_ACTIONS);
        }
        if self.is_builtin() {
            return Ok(catch::NUM_ACTIONS);
        }
        if self.full_action_set {
            ale::check_game(&self.game)?;
            return Ok(ale::FULL_ACTION_SET);
        }
        let rom = find_rom(&self.game, self.rom_dir.as_deref())?;
        let ale = ale::Ale::load(&rom, 1, 0.0)?;
        Ok(ale.minimal_action_set().len())
    }

    fn validate(&self) -> Result<(), EnvError> {
        if self.obs_height == 0 || self.obs_width == 0 {
            return Err(EnvError::BadSpec(format!(
                "observation size {}x{} must be positive",
                self.obs_height, self.obs_width
            )));
        }
        if !self.is_builtin() && self.action_repeat == 0 {
            return Err(EnvError::BadSpec("action_repeat must be at least 1".into()));
        }
        Ok(())
    }
}

/// What one agent step returned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepResult {
    /// Raw (unclipped) reward, summed over the action repeat.
    pub reward: f32,
    /// The agent's episode ended (game over, frame cap, or a lost life with
    /// `episodic_life`); call `reset` before the next step.
    pub episode_over: bool,
    /// The whole game ended (game over or frame cap). Equals `episode_over`
    /// unless `episodic_life` is on; an actor that reports game scores sums
    /// rewards until this is set.
    pub game_over: bool,
}

/// One environment instance, driven by one thread at a time.
pub trait Environment: Send {
    /// Number of actions; `step` takes `0..num_actions()`.
    fn num_actions(&self) -> usize;
    /// (H, W, C) of the model input written by [`observation`](Self::observation).
    fn observation_shape(&self) -> (usize, usize, usize);
    /// Starts a new episode (for Atari: game reset and no-op starts, or the
    /// next life with `episodic_life`).
    fn reset(&mut self);
    /// Plays one agent step. `action` must be below `num_actions()`.
    fn step(&mut self, action: usize) -> StepResult;
    /// Writes the model-input frame u8 `[H, W, C]` of the current state into
    /// `out`, which holds exactly H * W * C bytes.
    fn observation(&self, out: &mut [u8]);
    /// The full-resolution RGB frame `[H, W, 3]` of the current state (for
    /// Atari the max-pooled 210x160 frame, before any resize), as (H, W, data).
    fn render_rgb(&self) -> (usize, usize, &[u8]);
    /// The 128-byte Atari RAM after the last frame; `None` for other games.
    fn ram(&self) -> Option<[u8; 128]>;
    /// Ground-truth object centres as (name, row, col) in `render_rgb` pixels.
    /// Atari games read them from the RAM where a decoder exists
    /// ([`ale::games_with_objects`]: Seaquest's own, [`ale::seaquest`], and
    /// the tables of [`ale::games`]; every name each step, NaN where absent);
    /// others report none.
    fn objects(&self) -> Vec<(&'static str, f32, f32)>;
}

/// Why an environment could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error(
        "cannot find the ROM of {game:?} ({game}.bin); looked in: {}. \
         Get ROMs with `scripts/bootstrap.sh` (it installs ale-py, whose ROMs live in \
         <venv>/lib/python3.*/site-packages/ale_py/roms; the venv is $AAA_VENV, else \
         <workspace>/.venv next to the binary or the source tree), or point --rom-dir or \
         AAA_ROM_DIR at a directory that holds {game}.bin",
        show_paths(looked_in)
    )]
    RomNotFound { game: String, looked_in: Vec<PathBuf> },
    #[error(
        "unknown game {game:?}: use \"catch\" (built in), \"probe\" (the scripted \
         alignment check) or one of the ALE 0.6 games: {}",
        ale::SUPPORTED_GAMES.join(", ")
    )]
    UnknownGame { game: String },
    #[error("bad environment settings: {0}")]
    BadSpec(String),
    #[error("ALE failed on {rom}: {message}")]
    Ale { rom: PathBuf, message: String },
}

fn show_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nowhere (no --rom-dir, no AAA_ROM_DIR, no virtualenv found)".into();
    }
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// True for the games built into this crate (`catch`, `probe`), which need no ROM.
pub fn is_builtin_game(game: &str) -> bool {
    game == catch::GAME_NAME || game == probe::GAME_NAME
}

/// One 64-bit seed per environment from the run seed, the actor id and the
/// env index (SplitMix64 finalizer chained over the three), so a run repeats
/// exactly and no two environments of a run share a stream.
pub fn derive_seed(run_seed: u64, actor_id: u32, env_index: u32) -> u64 {
    let h = splitmix64(run_seed);
    let h = splitmix64(h ^ u64::from(actor_id));
    splitmix64(h ^ (u64::from(env_index) << 32) ^ 0x5eed_0000_0000_0000)
}

/// SplitMix64's output function (Steele, Lea, Flood 2014).
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Builds a ready (already reset) environment for `spec`, seeded with `seed`.
pub fn make_env(spec: &EnvSpec, seed: u64) -> Result<Box<dyn Environment>, EnvError> {
    spec.validate()?;
    if spec.game == probe::GAME_NAME {
        return Ok(Box::new(probe::Probe::new(spec)?));
    }
    if spec.is_builtin() {
        return Ok(Box::new(catch::Catch::new(spec, seed)?));
    }
    Ok(Box::new(ale::AtariEnv::new(spec, seed)?))
}

/// Directories that may hold ROMs, in precedence order, each with where it came
/// from. The first source that is set is the only one searched: an explicit
/// `--rom-dir` or `AAA_ROM_DIR` is never silently replaced by another copy.
pub fn rom_dirs(rom_dir: Option<&Path>) -> Vec<PathBuf> {
    if let Some(dir) = rom_dir {
        return vec![dir.to_path_buf()];
    }
    if let Some(dir) = std::env::var_os("AAA_ROM_DIR").filter(|d| !d.is_empty()) {
        return vec![PathBuf::from(dir)];
    }
    venv_candidates().iter().flat_map(|venv| venv_rom_dirs(venv)).collect()
}

/// Finds `<game>.bin` for an ALE game (see [`rom_dirs`] for the search order).
pub fn find_rom(game: &str, rom_dir: Option<&Path>) -> Result<PathBuf, EnvError> {
    ale::check_game(game)?;
    let looked_in = rom_dirs(rom_dir);
    let file = format!("{game}.bin");
    looked_in.iter().map(|dir| dir.join(&file)).find(|p| p.is_file()).ok_or_else(|| {
        EnvError::RomNotFound { game: game.to_string(), looked_in: looked_in.clone() }
    })
}

/// The project virtualenv: `$AAA_VENV` if set, else the first `.venv` found in
/// an ancestor of the running executable (target/release/actor lives two levels
/// under the workspace), else `<workspace>/.venv` of the source tree this was
/// compiled from.
fn venv_candidates() -> Vec<PathBuf> {
    if let Some(venv) = std::env::var_os("AAA_VENV").filter(|d| !d.is_empty()) {
        return vec![PathBuf::from(venv)];
    }
    let mut out = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(venv) = exe.ancestors().skip(1).map(|d| d.join(".venv")).find(|v| v.is_dir()) {
            out.push(venv);
        }
    }
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(".venv");
    let compiled = compiled.canonicalize().unwrap_or(compiled);
    if !out.contains(&compiled) {
        out.push(compiled);
    }
    out
}

/// `<venv>/lib/python3.*/site-packages/ale_py/roms` for each Python the venv has
/// (the pattern itself when none exists, so the error names where to look).
fn venv_rom_dirs(venv: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python"))
        .map(|e| e.path().join("site-packages").join("ale_py").join("roms"))
        .filter(|p| p.is_dir())
        .collect();
    found.sort();
    if found.is_empty() {
        found.push(venv.join("lib/python3.*/site-packages/ale_py/roms"));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn derived_seeds_differ_across_actors_and_envs_and_repeat() {
        let mut seen = HashSet::new();
        for run in [0u64, 1, 42] {
            for actor in 0..16 {
                for env in 0..64 {
                    assert!(seen.insert(derive_seed(run, actor, env)), "{run} {actor} {env}");
                }
            }
        }
        assert_eq!(derive_seed(7, 3, 5), derive_seed(7, 3, 5));
        // Swapping actor and env index must not collide.
        assert_ne!(derive_seed(7, 3, 5), derive_seed(7, 5, 3));
    }

    #[test]
    fn bad_rom_dir_gives_the_documented_error() {
        let dir = tempfile::tempdir().unwrap();
        let spec = EnvSpec { rom_dir: Some(dir.path().into()), ..EnvSpec::atari_default("pong") };
        let err = make_env(&spec, 1).err().expect("missing ROM must be an error");
        match &err {
            EnvError::RomNotFound { game, looked_in } => {
                assert_eq!(game, "pong");
                assert_eq!(looked_in, &vec![dir.path().to_path_buf()]);
            }
            other => panic!("wrong error: {other}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        assert!(msg.contains("pong.bin") && msg.contains("AAA_ROM_DIR"), "{msg}");
        assert!(msg.contains("--rom-dir") && msg.contains("bootstrap.sh"), "{msg}");
        // The spec's action count fails the same way instead of crashing in ALE.
        assert!(matches!(spec.num_actions(), Err(EnvError::RomNotFound { .. })));
    }

    #[test]
    fn unknown_game_is_an_error_that_lists_games() {
        let err = make_env(&EnvSpec::atari_default("notagame"), 1).err().unwrap();
        assert!(matches!(err, EnvError::UnknownGame { .. }));
        assert!(err.to_string().contains("seaquest"));
    }

    #[test]
    fn a_file_that_is_not_a_rom_is_an_error_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pong.bin"), b"").unwrap();
        let spec = EnvSpec { rom_dir: Some(dir.path().into()), ..EnvSpec::atari_default("pong") };
        let err = make_env(&spec, 1).err().expect("an empty ROM must be an error");
        assert!(matches!(err, EnvError::Ale { .. }), "{err}");
    }
}
