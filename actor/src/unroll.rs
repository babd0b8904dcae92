//! The unroll being assembled for one environment, in the trajectory's
//! layout (`wire::layout`): T+1 steps, step 0 repeating step T of the previous
//! unroll, with the recurrent state from before step 0 (docs/architecture.md,
//! Step alignment).

use wire::config::ModelConfig;
use wire::protocol::{Array, RecurrentState, Trajectory, TrajectorySteps};

/// The steps of the unroll being assembled: each per-step field of the
/// trajectory (`wire::layout`) as the little-endian bytes the wire carries.
#[derive(Default)]
pub struct UnrollBuffer {
    pub steps: TrajectorySteps<Vec<u8>>,
    pub len: usize,
    pub initial_state: Option<RecurrentState>,
}

/// Appends values as little-endian bytes.
pub fn put<const N: usize, T: Copy>(
    bytes: &mut Vec<u8>,
    values: &[T],
    to_le: impl Fn(T) -> [u8; N],
) {
    for &v in values {
        bytes.extend_from_slice(&to_le(v));
    }
}

impl UnrollBuffer {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Keeps only the last step: it is step 0 of the next unroll.
    pub fn restart_from_last(&mut self, state: RecurrentState) {
        let len = self.len;
        for (_, bytes) in self.steps.iter_mut() {
            let step_bytes = bytes.len() / len;
            bytes.drain(..bytes.len() - step_bytes);
        }
        self.len = 1;
        self.initial_state = Some(state);
    }

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
