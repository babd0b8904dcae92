//! The bytes of the unroll being assembled for one environment, in the
//! trajectory's layout (`crate::layout`). When a step is appended, and when
//! an unroll turns over, is decided in one place,
//! `agent::policy::UnrollStore` (`common/agent/src/policy/unroll_store.rs`),
//! which both inference modes use.

use crate::config::ModelConfig;
use crate::protocol::{Array, RecurrentState, Trajectory, TrajectorySteps};

/// One step of one environment, as the unroll records it.
pub struct Step<'a> {
    /// u8 [H, W, C], the model's input.
    pub frame: &'a [u8],
    pub reward: f32,
    pub done: bool,
    pub last_action: i64,
    pub action: i64,
    /// [A]
    pub policy_logits: &'a [f32],
    pub episode_return: f32,
    pub episode_step: i64,
}

/// The steps of the unroll being assembled: each per-step field of the
/// trajectory (`crate::layout`) as the little-endian bytes the wire carries.
#[derive(Default)]
pub struct UnrollBuffer {
    pub steps: TrajectorySteps<Vec<u8>>,
    len: usize,
    pub initial_state: Option<RecurrentState>,
}

/// Appends values as little-endian bytes.
fn put<const N: usize, T: Copy>(bytes: &mut Vec<u8>, values: &[T], to_le: impl Fn(T) -> [u8; N]) {
    for &v in values {
        bytes.extend_from_slice(&to_le(v));
    }
}

impl UnrollBuffer {
    /// Steps held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends one step. `state_before` is asked for only when this step is
    /// the unroll's first: the recurrent state before it.
    pub fn push(&mut self, step: &Step, state_before: impl FnOnce() -> RecurrentState) {
        if self.initial_state.is_none() {
            self.initial_state = Some(state_before());
        }
        let s = &mut self.steps;
        s.frame.extend_from_slice(step.frame);
        put(&mut s.reward, &[step.reward], f32::to_le_bytes);
        s.done.push(u8::from(step.done));
        put(&mut s.last_action, &[step.last_action], i64::to_le_bytes);
        put(&mut s.action, &[step.action], i64::to_le_bytes);
        put(&mut s.policy_logits, step.policy_logits, f32::to_le_bytes);
        put(&mut s.episode_return, &[step.episode_return], f32::to_le_bytes);
        put(&mut s.episode_step, &[step.episode_step], i64::to_le_bytes);
        self.len += 1;
    }

    /// Keeps only the last step: it is step 0 of the next unroll, which
    /// starts from `state`, the recurrent state before that step.
    pub fn restart_from_last(&mut self, state: RecurrentState) {
        let len = self.len;
        for (_, bytes) in self.steps.iter_mut() {
            let step_bytes = bytes.len() / len;
            bytes.drain(..bytes.len() - step_bytes);
        }
        self.len = 1;
        self.initial_state = Some(state);
    }

    /// The unroll as a trajectory message.
    pub fn to_trajectory(
        &self,
        cfg: &ModelConfig,
        actor_id: u32,
        env_index: u32,
        version: u64,
    ) -> Trajectory {
        let n = self.len;
        let steps = self.steps.as_ref().map(|field, bytes| Array {
            dtype: field.dtype,
            shape: field
                .shape(cfg, n)
                .into_iter()
                .map(|d| d.expect("fixed by the config"))
                .collect(),
            data: bytes.clone(),
        });
        let state = self.initial_state.clone().expect("an unroll starts with its state");
        Trajectory::from_parts(actor_id, env_index, version, steps, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::zero_state;

    /// Three unrolls of T = 2 from one stream of steps: each validates, and
    /// step 0 of each repeats step T of the one before, with its state.
    #[test]
    fn unrolls_overlap_by_one_step_and_validate() {
        let cfg = ModelConfig::small(3);
        let mut buffer = UnrollBuffer::default();
        let mut trajectories = Vec::new();
        let frame = |t: usize| vec![t as u8; cfg.frame_len()];
        let logits = [0.5f32, -0.5, 0.0];
        for t in 0..7usize {
            let f = frame(t);
            let step = Step {
                frame: &f,
                reward: t as f32,
                done: t == 3,
                last_action: (t % 3) as i64,
                action: ((t + 1) % 3) as i64,
                policy_logits: &logits,
                episode_return: t as f32,
                episode_step: t as i64,
            };
            let mut state = zero_state(&cfg);
            state.core_h.data[0..4].copy_from_slice(&(t as f32).to_le_bytes());
            buffer.push(&step, || state.clone());
            if buffer.len() == 3 {
                trajectories.push(buffer.to_trajectory(&cfg, 1, 2, 3));
                buffer.restart_from_last(state);
            }
        }
        assert_eq!(trajectories.len(), 3);
        for (k, tr) in trajectories.iter().enumerate() {
            tr.validate(&cfg, 2).unwrap();
            let rewards = tr.reward.to_f32("reward").unwrap();
            assert_eq!(rewards, vec![(2 * k) as f32, (2 * k + 1) as f32, (2 * k + 2) as f32]);
            let state_step =
                f32::from_le_bytes(tr.initial_state.core_h.data[0..4].try_into().unwrap());
            assert_eq!(
                state_step,
                (2 * k) as f32,
                "unroll {k} starts from the state before its step 0"
            );
            assert_eq!(tr.frame.data[0], (2 * k) as u8);
        }
        assert_eq!(trajectories[1].done.data, vec![0, 1, 0]);
    }
}
