//! "Catch", the built-in pixel game: balls fall one at a time down a 7x7 grid
//! and the agent moves a paddle along the bottom row to catch them.
//!
//! Needs no ROM, renders RGB at any size (the `small` preset uses 42x42: 6x6
//! pixels per cell), runs hundreds of times faster than ALE, and reports the
//! ground-truth centres of the ball and the paddle in rendered pixels, so the
//! attention maps can be scored against where the objects really are.
//!
//! Rules, per agent step:
//! 1. the paddle moves one column left, stays, or moves one column right
//!    (actions 0, 1, 2), stopping at the walls;
//! 2. the ball falls one row. When it reaches the paddle's row the step
//!    returns +1 if the paddle is under it and -1 otherwise, and the next ball
//!    appears in the top row in a uniformly drawn column.
//!
//! A ball takes 6 steps from the top to the paddle row, enough to cross the
//! whole field, so a good policy catches every ball. An episode is
//! [`BALLS_PER_EPISODE`] balls (30 steps). A uniformly random policy averages
//! about -3.6 per episode (one ball in seven caught), following the ball +5:
//! the test `scripted_policy_beats_random_clearly` measures both.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use super::preprocess::rgb_to_gray;
use super::{EnvError, EnvSpec, Environment, StepResult};

/// Name of the game in `--game`.
pub const GAME_NAME: &str = "catch";
/// Left, stay, right.
pub const NUM_ACTIONS: usize = 3;
/// Grid rows: the ball falls through rows 0..ROWS-1, the paddle sits in row ROWS-1.
pub const ROWS: usize = 7;
/// Grid columns.
pub const COLS: usize = 7;
/// Balls per episode.
pub const BALLS_PER_EPISODE: u32 = 5;
/// Colours (RGB) of the ball, the paddle and the background.
pub const BALL_RGB: [u8; 3] = [250, 200, 60];
pub const PADDLE_RGB: [u8; 3] = [60, 160, 250];
pub const BACKGROUND_RGB: [u8; 3] = [0, 0, 0];

/// The built-in game. Build it with [`super::make_env`] or [`Catch::new`].
pub struct Catch {
    rng: Pcg64,
    height: usize,
    width: usize,
    grayscale: bool,
    /// Ball (row, col) in grid cells; `None` once the episode's last ball landed.
    ball: Option<(usize, usize)>,
    paddle: usize,
    balls_done: u32,
    /// The current frame, RGB [height, width, 3].
    frame: Vec<u8>,
}

impl Catch {
    /// A game rendered at `spec.obs_height` x `spec.obs_width`, already reset.
    pub fn new(spec: &EnvSpec, seed: u64) -> Result<Catch, EnvError> {
        if spec.obs_height < ROWS || spec.obs_width < COLS {
            return Err(EnvError::BadSpec(format!(
                "catch needs at least {ROWS}x{COLS} pixels, got {}x{}",
                spec.obs_height, spec.obs_width
            )));
        }
        let mut game = Catch {
            rng: Pcg64::seed_from_u64(seed),
            height: spec.obs_height,
            width: spec.obs_width,
            grayscale: spec.grayscale,
            ball: None,
            paddle: COLS / 2,
            balls_done: 0,
            frame: vec![0; spec.obs_height * spec.obs_width * 3],
        };
        game.reset();
        Ok(game)
    }

    /// Ball position in grid cells (row, col), if a ball is in play.
    pub fn ball_cell(&self) -> Option<(usize, usize)> {
        self.ball
    }

    /// Paddle column in grid cells.
    pub fn paddle_col(&self) -> usize {
        self.paddle
    }

    fn spawn_ball(&mut self) {
        self.ball = Some((0, self.rng.gen_range(0..COLS)));
    }

    /// Pixel rows [start, end) of grid row `r`.
    fn row_span(&self, r: usize) -> (usize, usize) {
        (r * self.height / ROWS, (r + 1) * self.height / ROWS)
    }

    /// Pixel columns [start, end) of grid column `c`.
    fn col_span(&self, c: usize) -> (usize, usize) {
        (c * self.width / COLS, (c + 1) * self.width / COLS)
    }

    /// Pixel rectangle (rows, cols) of the ball: its whole cell.
    fn ball_rect(&self) -> Option<((usize, usize), (usize, usize))> {
        self.ball.map(|(r, c)| (self.row_span(r), self.col_span(c)))
    }

    /// Pixel rectangle of the paddle: the lower half of its cell in the last row.
    fn paddle_rect(&self) -> ((usize, usize), (usize, usize)) {
        let (r0, r1) = self.row_span(ROWS - 1);
        ((r0 + (r1 - r0) / 2, r1), self.col_span(self.paddle))
    }

    fn fill(&mut self, (rows, cols): ((usize, usize), (usize, usize)), rgb: [u8; 3]) {
        for r in rows.0..rows.1 {
            for c in cols.0..cols.1 {
                let i = (r * self.width + c) * 3;
                self.frame[i..i + 3].copy_from_slice(&rgb);
            }
        }
    }

    fn render(&mut self) {
        for px in self.frame.chunks_exact_mut(3) {
            px.copy_from_slice(&BACKGROUND_RGB);
        }
        let paddle = self.paddle_rect();
        self.fill(paddle, PADDLE_RGB);
        if let Some(ball) = self.ball_rect() {
            self.fill(ball, BALL_RGB);
        }
    }
}

fn centre(((r0, r1), (c0, c1)): ((usize, usize), (usize, usize))) -> (f32, f32) {
    ((r0 + r1 - 1) as f32 / 2.0, (c0 + c1 - 1) as f32 / 2.0)
}

impl Environment for Catch {
    fn num_actions(&self) -> usize {
        NUM_ACTIONS
    }

    fn observation_shape(&self) -> (usize, usize, usize) {
        (self.height, self.width, if self.grayscale { 1 } else { 3 })
    }

    fn reset(&mut self) {
        self.paddle = COLS / 2;
        self.balls_done = 0;
        self.spawn_ball();
        self.render();
    }

    fn step(&mut self, action: usize) -> StepResult {
        assert!(action < NUM_ACTIONS, "catch action {action} outside 0..{NUM_ACTIONS}");
        self.paddle = (self.paddle + action).saturating_sub(1).min(COLS - 1);
        let mut reward = 0.0;
        let mut over = false;
        if let Some((r, c)) = self.ball {
            if r + 1 == ROWS - 1 {
                reward = if c == self.paddle { 1.0 } else { -1.0 };
                self.balls_done += 1;
                if self.balls_done >= BALLS_PER_EPISODE {
                    self.ball = None;
                    over = true;
                } else {
                    self.spawn_ball();
                }
            } else {
                self.ball = Some((r + 1, c));
            }
        } else {
            over = true; // stepped after the end without a reset
        }
        self.render();
        StepResult { reward, episode_over: over, game_over: over }
    }

    fn observation(&self, out: &mut [u8]) {
        if self.grayscale {
            rgb_to_gray(&self.frame, out);
        } else {
            out.copy_from_slice(&self.frame);
        }
    }

    fn render_rgb(&self) -> (usize, usize, &[u8]) {
        (self.height, self.width, &self.frame)
    }

    fn ram(&self) -> Option<[u8; 128]> {
        None
    }

    fn objects(&self) -> Vec<(&'static str, f32, f32)> {
        let mut out = Vec::with_capacity(2);
        if let Some(rect) = self.ball_rect() {
            let (r, c) = centre(rect);
            out.push(("ball", r, c));
        }
        let (r, c) = centre(self.paddle_rect());
        out.push(("paddle", r, c));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::make_env;

    /// Centroid (row, col) of the pixels of colour `rgb`, if any.
    fn centroid(h: usize, w: usize, frame: &[u8], rgb: [u8; 3]) -> Option<(f32, f32)> {
        let (mut n, mut sr, mut sc) = (0usize, 0usize, 0usize);
        for r in 0..h {
            for c in 0..w {
                if frame[(r * w + c) * 3..(r * w + c) * 3 + 3] == rgb {
                    n += 1;
                    sr += r;
                    sc += c;
                }
            }
        }
        (n > 0).then(|| (sr as f32 / n as f32, sc as f32 / n as f32))
    }

    #[test]
    fn reported_objects_match_rendered_pixels() {
        for (h, w) in [(42, 42), (84, 84), (50, 37), (7, 7)] {
            let spec = EnvSpec { obs_height: h, obs_width: w, ..EnvSpec::catch_default() };
            let mut env = make_env(&spec, 3).unwrap();
            let mut rng = Pcg64::seed_from_u64(9);
            let mut checked_ball = 0;
            for _ in 0..200 {
                let (fh, fw, frame) = env.render_rgb();
                assert_eq!((fh, fw), (h, w));
                let objects = env.objects();
                for name in ["ball", "paddle"] {
                    let rgb = if name == "ball" { BALL_RGB } else { PADDLE_RGB };
                    let seen = centroid(fh, fw, frame, rgb);
                    let told = objects.iter().find(|o| o.0 == name).map(|o| (o.1, o.2));
                    assert_eq!(seen, told, "{name} at {h}x{w}");
                    checked_ball += usize::from(name == "ball" && told.is_some());
                }
                if env.step(rng.gen_range(0..NUM_ACTIONS)).episode_over {
                    env.reset();
                }
            }
            assert!(checked_ball > 100);
        }
    }

    #[test]
    fn observation_is_the_rendered_frame_or_its_luma() {
        let mut env = make_env(&EnvSpec::catch_default(), 1).unwrap();
        env.step(2);
        assert_eq!(env.observation_shape(), (42, 42, 3));
        let mut obs = vec![0; 42 * 42 * 3];
        env.observation(&mut obs);
        assert_eq!(obs, env.render_rgb().2);
        let spec = EnvSpec { grayscale: true, ..EnvSpec::catch_default() };
        let env = make_env(&spec, 1).unwrap();
        assert_eq!(env.observation_shape(), (42, 42, 1));
        let mut gray = vec![0; 42 * 42];
        env.observation(&mut gray);
        assert!(gray.iter().any(|&v| v > 0));
    }

    /// Plays `episodes` episodes; `policy` sees the game and returns an action.
    fn mean_return(seed: u64, episodes: usize, mut policy: impl FnMut(&Catch) -> usize) -> f64 {
        let mut game = Catch::new(&EnvSpec::catch_default(), seed).unwrap();
        let mut total = 0.0;
        for _ in 0..episodes {
            game.reset();
            let mut steps = 0;
            loop {
                let step = game.step(policy(&game));
                total += f64::from(step.reward);
                steps += 1;
                if step.episode_over {
                    break;
                }
            }
            assert_eq!(steps, BALLS_PER_EPISODE as usize * (ROWS - 1));
        }
        total / episodes as f64
    }

    #[test]
    fn scripted_policy_beats_random_clearly() {
        let follow = mean_return(11, 500, |g| {
            let (_, col) = g.ball_cell().unwrap();
            ((col as isize - g.paddle_col() as isize).signum() + 1) as usize
        });
        let mut rng = Pcg64::seed_from_u64(12);
        let random = mean_return(11, 2000, |_| rng.gen_range(0..NUM_ACTIONS));
        println!(
            "catch mean episode return: follow-the-ball {follow:.2}, uniform random {random:.2}"
        );
        assert_eq!(follow, f64::from(BALLS_PER_EPISODE));
        assert!(random < -1.5, "random policy too good: {random}");
    }

    #[test]
    fn same_seed_same_game_different_seed_different_game() {
        let play = |seed| {
            let mut env = make_env(&EnvSpec::catch_default(), seed).unwrap();
            let mut frames = Vec::new();
            for t in 0..60 {
                if env.step(t % 3).episode_over {
                    env.reset();
                }
                frames.extend_from_slice(env.render_rgb().2);
            }
            frames
        };
        assert_eq!(play(5), play(5));
        assert_ne!(play(5), play(6));
    }
}
