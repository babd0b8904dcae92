//! Unroll assembly: the one place where turnover and step alignment are
//! written (docs/architecture.md, Step alignment).
//!
//! Alignment, per environment: a step holds `frame[t]` with the `reward[t]`,
//! `done[t]` and `last_action[t]` that came with it, and the `action[t]` the
//! policy picked from `policy_logits[t]` on it. The reward of acting and
//! `done = 1` if the episode ended travel with the next frame (the first
//! frame of the new episode, after a reset). At a step with `done = 1`,
//! `episode_return` and `episode_step` hold the finished episode's return and
//! length (TorchBeast's convention; the learner reads them there).
//!
//! Turnover: an unroll holds T+1 steps and the recurrent state from before
//! its step 0. When a step makes it T+1 long, it is complete; the next
//! unroll starts from that same step (its step 0 repeats step T) and the
//! state before it. Its params version is that of its step 0, the oldest
//! weights in it: the policy lag the learner reports.

use wire::config::ModelConfig;
use wire::protocol::{RecurrentState, Trajectory};
use wire::unroll::{Step, UnrollBuffer};

use super::state_pool::Row;

/// Where an environment's unrolls say they come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnvId {
    pub actor: u32,
    pub env: u32,
}

struct Track {
    id: EnvId,
    unroll: UnrollBuffer,
    /// Params version of the unroll's step 0.
    version_at_start: u64,
}

/// The unroll being assembled for each row of a policy.
pub struct UnrollStore {
    unroll_length: usize,
    tracks: Vec<Option<Track>>,
}

impl UnrollStore {
    /// Unrolls of `unroll_length` (T >= 1) steps plus the repeated one.
    pub fn new(unroll_length: usize) -> Self {
        assert!(unroll_length >= 1, "an unroll has at least one step besides step 0");
        UnrollStore { unroll_length, tracks: Vec::new() }
    }

    pub fn unroll_length(&self) -> usize {
        self.unroll_length
    }

    /// `row` starts an empty unroll for environment `id`.
    pub fn start(&mut self, row: Row, id: EnvId) {
        let i = row.index();
        if self.tracks.len() <= i {
            self.tracks.resize_with(i + 1, || None);
        }
        self.tracks[i] = Some(Track { id, unroll: UnrollBuffer::default(), version_at_start: 0 });
    }

    /// Drops `row`'s unroll unfinished.
    pub fn stop(&mut self, row: Row) {
        if let Some(track) = self.tracks.get_mut(row.index()) {
            *track = None;
        }
    }

    fn track(&mut self, row: Row) -> &mut Track {
        self.tracks[row.index()].as_mut().expect("a row the policy started")
    }

    /// True when appending a step to `row` needs the recurrent state from
    /// before it: the step starts an unroll, or completes one (then it is
    /// step 0 of the next).
    pub fn needs_state(&self, row: Row) -> bool {
        let track = self.tracks[row.index()].as_ref().expect("a row the policy started");
        let len = track.unroll.len();
        len == 0 || len == self.unroll_length
    }

    /// Appends `step`, acted on with the weights of `version`, to `row`'s
    /// unroll; returns the unroll it completes. `state_before` is called
    /// where [`needs_state`](Self::needs_state) says, at most once.
    pub fn append(
        &mut self,
        row: Row,
        step: &Step,
        version: u64,
        cfg: &ModelConfig,
        state_before: impl FnOnce() -> RecurrentState,
    ) -> Option<Trajectory> {
        let t_len = self.unroll_length;
        let track = self.track(row);
        let len = track.unroll.len();
        if len == 0 {
            track.version_at_start = version;
            track.unroll.push(step, state_before);
            return None;
        }
        track.unroll.push(step, || unreachable!("the unroll has its state"));
        if len + 1 < t_len + 1 {
            return None;
        }
        let done =
            track.unroll.to_trajectory(cfg, track.id.actor, track.id.env, track.version_at_start);
        track.unroll.restart_from_last(state_before());
        track.version_at_start = version;
        Some(done)
    }
}
