//! The safe owner of one `ALEInterface*` ([`Ale`], freed on drop) and the
//! facts of the emulator every game shares: screen size, RAM, action sets,
//! the games ALE 0.6 knows. It checks the ROM before ALE sees it, because
//! ALE 0.6 calls `exit(1)` on a missing or unreadable ROM and dereferences
//! null on a game it does not know.

use std::ffi::CString;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Mutex;

use atari_env_sys as sys;

use crate::{splitmix64, EnvError};

/// Atari screen height in pixels for most games (the paper's input); a few
/// games (Pooyan, Mr. Do!, ...) have taller screens: [`Ale::screen_size`].
pub const SCREEN_HEIGHT: usize = 210;
/// Atari screen width in pixels.
pub const SCREEN_WIDTH: usize = 160;
/// Bytes of Atari RAM.
pub const RAM_SIZE: usize = 128;
/// Size of the full (legal) action set.
pub const FULL_ACTION_SET: usize = 18;
/// ALE's PLAYER_A_NOOP.
pub const NOOP: i32 = 0;
/// ALE's PLAYER_A_FIRE.
pub const FIRE: i32 = 1;
/// Sticky-action probability when `sticky_actions` is on (Machado et al. 2018).
pub const STICKY_ACTION_PROBABILITY: f32 = 0.25;

/// Games ALE 0.6 has settings for (its `games/supported`); ALE picks them from
/// the ROM's file name, so `<game>.bin` must be named exactly so.
pub const SUPPORTED_GAMES: &[&str] = &[
    "adventure",
    "air_raid",
    "alien",
    "amidar",
    "assault",
    "asterix",
    "asteroids",
    "atlantis",
    "bank_heist",
    "battle_zone",
    "beam_rider",
    "berzerk",
    "bowling",
    "boxing",
    "breakout",
    "carnival",
    "centipede",
    "chopper_command",
    "crazy_climber",
    "defender",
    "demon_attack",
    "donkey_kong",
    "double_dunk",
    "elevator_action",
    "enduro",
    "fishing_derby",
    "freeway",
    "frogger",
    "frostbite",
    "galaxian",
    "gopher",
    "gravitar",
    "hero",
    "ice_hockey",
    "jamesbond",
    "journey_escape",
    "kangaroo",
    "keystone_kapers",
    "king_kong",
    "koolaid",
    "krull",
    "kung_fu_master",
    "laser_gates",
    "lost_luggage",
    "montezuma_revenge",
    "mr_do",
    "ms_pacman",
    "name_this_game",
    "phoenix",
    "pitfall",
    "pong",
    "pooyan",
    "private_eye",
    "qbert",
    "riverraid",
    "road_runner",
    "robotank",
    "seaquest",
    "sir_lancelot",
    "skiing",
    "solaris",
    "space_invaders",
    "star_gunner",
    "tennis",
    "tetris",
    "time_pilot",
    "trondead",
    "turmoil",
    "tutankham",
    "up_n_down",
    "venture",
    "video_pinball",
    "wizard_of_wor",
    "yars_revenge",
    "zaxxon",
];

/// Errors unless ALE 0.6 knows `game`.
pub fn check_game(game: &str) -> Result<(), EnvError> {
    if SUPPORTED_GAMES.contains(&game) {
        Ok(())
    } else {
        Err(EnvError::UnknownGame { game: game.to_string() })
    }
}

/// ALE 0.6 is not thread safe while it builds an emulator and loads a ROM
/// (global logger, settings and cartridge tables), so those calls take this lock.
static ALE_LOAD: Mutex<()> = Mutex::new(());

/// One ALE emulator. Owns the C++ object and deletes it on drop.
pub struct Ale {
    ptr: NonNull<sys::ALEInterface>,
    /// Screen (height, width) of the loaded game.
    size: (usize, usize),
}

// SAFETY: the pointer is owned exclusively by this value and ALE keeps no
// thread-local state; moving it to another thread is fine. It is not Sync.
unsafe impl Send for Ale {}

impl Ale {
    /// Loads `rom` (whose file name picks ALE's game settings) with ALE's own
    /// RNG seeded by `seed` (used for sticky actions) and the given sticky-action
    /// probability. ALE's frame skip is 1 and its episode cap is off.
    pub fn load(rom: &Path, seed: i32, repeat_action_probability: f32) -> Result<Ale, EnvError> {
        let ale_err = |message: String| EnvError::Ale { rom: rom.to_path_buf(), message };
        let game = rom.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        check_game(game)?;
        // ALE exits the process on a ROM it cannot open; check first.
        let meta = std::fs::metadata(rom).map_err(|e| ale_err(format!("cannot read: {e}")))?;
        if !meta.is_file() || meta.len() == 0 || meta.len() > 512 * 1024 {
            return Err(ale_err(format!(
                "not an Atari 2600 ROM ({} bytes; ROMs are 2 KiB to 64 KiB)",
                meta.len()
            )));
        }
        let path = CString::new(rom.as_os_str().to_string_lossy().as_bytes())
            .map_err(|_| ale_err("path contains a NUL byte".into()))?;
        let _guard = ALE_LOAD.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: plain FFI calls on a freshly created, non-null ALEInterface;
        // the C strings outlive the calls.
        unsafe {
            sys::setLoggerMode(2); // errors only: silence ALE's banner and ROM info
            let ptr =
                NonNull::new(sys::ALE_new()).ok_or_else(|| ale_err("ALE_new failed".into()))?;
            let mut ale = Ale { ptr, size: (0, 0) };
            let p = ale.ptr.as_ptr();
            sys::setInt(p, c"random_seed".as_ptr(), seed.max(1));
            sys::setFloat(p, c"repeat_action_probability".as_ptr(), repeat_action_probability);
            sys::setInt(p, c"frame_skip".as_ptr(), 1);
            sys::setInt(p, c"max_num_frames_per_episode".as_ptr(), 0);
            sys::setBool(p, c"color_averaging".as_ptr(), false);
            sys::loadROM(p, path.as_ptr());
            let (h, w) = (sys::getScreenHeight(p), sys::getScreenWidth(p));
            if h <= 0 || w <= 0 {
                return Err(ale_err(format!("ALE reports a {h}x{w} screen")));
            }
            ale.size = (h as usize, w as usize);
            Ok(ale)
        }
    }

    fn p(&self) -> *mut sys::ALEInterface {
        self.ptr.as_ptr()
    }

    /// Plays one emulator frame with ALE action `action` (0..18); returns its reward.
    #[inline]
    pub fn act(&mut self, action: i32) -> i32 {
        // SAFETY: valid owned pointer; ALE ignores actions it does not know.
        unsafe { sys::act(self.p(), action) }
    }

    pub fn game_over(&self) -> bool {
        // SAFETY: valid owned pointer.
        unsafe { sys::game_over(self.p()) }
    }

    /// ALE's own game reset (deterministic, no random starts).
    pub fn reset_game(&mut self) {
        // SAFETY: valid owned pointer.
        unsafe { sys::reset_game(self.p()) }
    }

    pub fn lives(&self) -> i32 {
        // SAFETY: valid owned pointer.
        unsafe { sys::lives(self.p()) }
    }

    /// Frames since the last `reset_game`, as ALE counts them.
    pub fn episode_frame_number(&self) -> i32 {
        // SAFETY: valid owned pointer.
        unsafe { sys::getEpisodeFrameNumber(self.p()) }
    }

    /// Screen (height, width): (210, 160) for most games.
    pub fn screen_size(&self) -> (usize, usize) {
        self.size
    }

    /// Pixels of the screen, height * width.
    pub fn screen_pixels(&self) -> usize {
        self.size.0 * self.size.1
    }

    /// The RGB screen, u8 [height, width, 3], into `out`.
    pub fn screen_rgb(&self, out: &mut [u8]) {
        assert_eq!(out.len(), self.screen_pixels() * 3, "buffer does not fit the screen");
        // SAFETY: ALE writes width * height * 3 bytes, which `out` holds.
        unsafe { sys::getScreenRGB(self.p(), out.as_mut_ptr()) }
    }

    /// The palette-index screen, u8 [height, width], into `out`.
    pub fn screen_indices(&self, out: &mut [u8]) {
        assert_eq!(out.len(), self.screen_pixels(), "buffer does not fit the screen");
        // SAFETY: ALE copies width * height bytes, which `out` holds.
        unsafe { sys::getScreen(self.p(), out.as_mut_ptr()) }
    }

    /// The 128-byte RAM.
    pub fn ram(&self) -> [u8; RAM_SIZE] {
        let mut ram = [0u8; RAM_SIZE];
        // SAFETY: the 2600 has 128 bytes of RAM; ALE copies exactly that.
        unsafe {
            debug_assert_eq!(sys::getRAMSize(self.p()), RAM_SIZE as i32);
            sys::getRAM(self.p(), ram.as_mut_ptr());
        }
        ram
    }

    /// The game's minimal action set, as ALE action ids.
    pub fn minimal_action_set(&self) -> Vec<i32> {
        // SAFETY: the buffer is sized by ALE's own count.
        unsafe {
            let n = sys::getMinimalActionSize(self.p()).max(0) as usize;
            let mut v = vec![0i32; n];
            sys::getMinimalActionSet(self.p(), v.as_mut_ptr());
            v
        }
    }

    /// All 18 actions, as ALE action ids.
    pub fn legal_action_set(&self) -> Vec<i32> {
        // SAFETY: the buffer is sized by ALE's own count.
        unsafe {
            let n = sys::getLegalActionSize(self.p()).max(0) as usize;
            let mut v = vec![0i32; n];
            sys::getLegalActionSet(self.p(), v.as_mut_ptr());
            v
        }
    }
}

impl Drop for Ale {
    fn drop(&mut self) {
        let _guard = ALE_LOAD.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the pointer came from ALE_new and is deleted once.
        unsafe { sys::ALE_del(self.p()) }
    }
}

/// ALE's `random_seed` for an environment seed: positive, nonzero (0 would
/// mean "seed from the clock").
pub fn ale_seed(seed: u64) -> i32 {
    ((splitmix64(seed ^ 0xa1e0_a1e0_a1e0_a1e0) >> 33) as i32).max(1)
}
