//! "Probe", a scripted environment whose rewards and episode ends are known
//! in advance, for checking the step alignment of the whole pipeline
//! (docs/architecture.md, Step alignment): what the actor records and what the learner pairs up.
//!
//! An episode is [`EPISODE_STEPS`] agent steps. At position p (0 at the first
//! frame of an episode) the frame shows a bright band in row p of a 7-row
//! grid, and the step taken there returns [`reward_for`]`(p, action)`: +1 for
//! the action `p % 3`, -1 for the others. The episode ends after the step at
//! position `EPISODE_STEPS - 1`.
//!
//! So for every transition t of an unroll, `reward[t+1]` and `done[t+1]` are
//! a known function of `action[t]` and the position of `frame[t]`: a reward
//! recorded one step early or late, or paired with the wrong action by the
//! learner, shows at once, where on a real game it would only look like slow
//! learning. Seven steps do not divide usual unroll lengths, so episode ends
//! fall at every place in an unroll, its first and last steps included.

use super::preprocess::rgb_to_gray;
use super::{EnvError, EnvSpec, Environment, StepResult};

/// Name of the game in `--game`.
pub const GAME_NAME: &str = "probe";
/// Actions; the rewarded one cycles through them with the position.
pub const NUM_ACTIONS: usize = 3;
/// Agent steps per episode; also the rows of the grid the position is drawn in.
pub const EPISODE_STEPS: usize = 7;
const BAND_RGB: [u8; 3] = [255, 255, 255];

/// The reward of taking `action` at episode position `position`.
pub fn reward_for(position: usize, action: usize) -> f32 {
    if action == position % NUM_ACTIONS {
        1.0
    } else {
        -1.0
    }
}

/// The scripted environment. Build it with [`super::make_env`].
pub struct Probe {
    height: usize,
    width: usize,
    grayscale: bool,
    /// Steps taken in the current episode: the position of the current frame.
    position: usize,
    frame: Vec<u8>,
}

impl Probe {
    pub fn new(spec: &EnvSpec) -> Result<Probe, EnvError> {
        if spec.obs_height < EPISODE_STEPS {
            return Err(EnvError::BadSpec(format!(
                "probe needs at least {EPISODE_STEPS} pixel rows, got {}",
                spec.obs_height
            )));
        }
        let mut probe = Probe {
            height: spec.obs_height,
            width: spec.obs_width,
            grayscale: spec.grayscale,
            position: 0,
            frame: vec![0; spec.obs_height * spec.obs_width * 3],
        };
        probe.reset();
        Ok(probe)
    }

    /// The position of the current frame in its episode.
    pub fn position(&self) -> usize {
        self.position
    }

    fn render(&mut self) {
        self.frame.fill(0);
        let (r0, r1) = (
            self.position * self.height / EPISODE_STEPS,
            (self.position + 1) * self.height / EPISODE_STEPS,
        );
        for px in self.frame[r0 * self.width * 3..r1 * self.width * 3].chunks_exact_mut(3) {
            px.copy_from_slice(&BAND_RGB);
        }
    }
}

impl Environment for Probe {
    fn num_actions(&self) -> usize {
        NUM_ACTIONS
    }

    fn observation_shape(&self) -> (usize, usize, usize) {
        (self.height, self.width, if self.grayscale { 1 } else { 3 })
    }

    fn reset(&mut self) {
        self.position = 0;
        self.render();
    }

    fn step(&mut self, action: usize) -> StepResult {
        assert!(action < NUM_ACTIONS, "probe action {action} outside 0..{NUM_ACTIONS}");
        let reward = reward_for(self.position, action);
        self.position += 1;
        let over = self.position >= EPISODE_STEPS;
        if !over {
            self.render();
        }
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
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::make_env;

    #[test]
    fn rewards_and_episode_ends_follow_the_script() {
        let spec = EnvSpec::builtin_default(GAME_NAME);
        let mut env = make_env(&spec, 1).unwrap();
        let mut frame = vec![0u8; 42 * 42 * 3];
        for episode in 0..3 {
            for p in 0..EPISODE_STEPS {
                env.observation(&mut frame);
                let lit: Vec<usize> =
                    (0..42).filter(|r| frame[r * 42 * 3] == 255).map(|r| r / 6).collect();
                assert!(lit.iter().all(|&row| row == p) && lit.len() == 6, "{lit:?} at {p}");
                let action = (p + episode) % NUM_ACTIONS;
                let step = env.step(action);
                assert_eq!(step.reward, reward_for(p, action));
                assert_eq!(step.episode_over, p == EPISODE_STEPS - 1);
            }
            env.reset();
        }
        assert_eq!(reward_for(4, 1), 1.0);
        assert_eq!(reward_for(4, 0), -1.0);
    }
}
