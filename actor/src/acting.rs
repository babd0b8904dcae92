//! A group of environments played in lockstep: their current step as a
//! request ([`Group::observations`]), and the answer applied to them
//! ([`Stepper::apply`]): each environment takes its action, the recorded ones
//! record the step with its attention maps, and finished episodes are
//! reported. Who answers (the actor's own policy or the learner) is not
//! this file's business; how steps become unrolls is `agent::policy`'s
//! (`common/agent/src/policy/unroll_store.rs` states the alignment: the
//! reward of acting and `done` travel with the next frame, and after an
//! episode ends, `episode_return` and `episode_step` of the first step of the
//! next hold the finished episode's).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::Rng;

use env::{derive_seed, make_env, Environment};
use wire::config::ModelConfig;
use wire::protocol::{Actions, Array, EpisodeEnd, EpisodeUid, Observations};

use crate::recording::{EpisodeRecording, EpisodeSink, StepView};
use crate::Args;

/// One environment and its running episode.
struct Slot {
    env: Box<dyn Environment>,
    index: u32,
    /// The current step, not yet acted on.
    frame: Vec<u8>,
    reward: f32,
    done: bool,
    /// What the current step reports: the finished episode's return and
    /// length where `done`, the running one's otherwise.
    report_return: f32,
    report_step: i64,
    /// The running episode.
    episode_return: f64,
    episode_step: u64,
    episodes_started: u64,
    recording: Option<EpisodeRecording>,
}

/// `--num-envs` environments of one actor, asked about together.
pub struct Group {
    cfg: ModelConfig,
    slots: Vec<Slot>,
    record_every: u64,
    record_ram: bool,
    actor_id: u32,
    frames_per_step: u64,
    /// This group's stream of requests: random, new at each start over.
    stream: u64,
    /// Requests sent on the stream so far.
    pub seq: u64,
    /// Wall time in the environments since the last [`take_environment_time`](Self::take_environment_time).
    environment_time: Duration,
}

/// A finished episode: (env index, return, length).
pub type Finished = (u32, f64, u64);

impl Group {
    /// `envs` environments numbered from `first_env` (each env's seed
    /// derives from its number), recording one episode in `record_every`.
    pub fn new(
        args: &Args,
        cfg: &ModelConfig,
        envs: usize,
        first_env: u32,
        record_every: u64,
    ) -> Result<Self> {
        let spec = args.env_spec();
        let mut slots = Vec::with_capacity(envs);
        for index in first_env..first_env + envs as u32 {
            let seed = derive_seed(args.run.seed, args.actor_id, index);
            let env = make_env(&spec, seed)
                .with_context(|| format!("creating environment {index} ({})", spec.game))?;
            anyhow::ensure!(
                env.num_actions() == cfg.num_actions,
                "environment has {} actions, model {}",
                env.num_actions(),
                cfg.num_actions
            );
            let mut frame = vec![0u8; cfg.frame_len()];
            env.observation(&mut frame);
            slots.push(Slot {
                env,
                index,
                frame,
                reward: 0.0,
                done: true,
                report_return: 0.0,
                report_step: 0,
                episode_return: 0.0,
                episode_step: 0,
                episodes_started: 0,
                recording: None,
            });
        }
        let mut group = Group {
            cfg: cfg.clone(),
            slots,
            record_every,
            record_ram: args.record_ram,
            actor_id: args.actor_id,
            frames_per_step: u64::from(spec.action_repeat.max(1)),
            stream: rand::thread_rng().gen(),
            seq: 0,
            environment_time: Duration::ZERO,
        };
        for b in 0..group.slots.len() {
            group.start_episode(b, 0);
        }
        Ok(group)
    }

    /// Global episode counter over this group's envs decides what is recorded.
    fn start_episode(&mut self, b: usize, params_version: u64) {
        let envs = self.slots.len() as u64;
        let slot = &mut self.slots[b];
        let counter = slot.episodes_started;
        slot.episodes_started += 1;
        let global = counter * envs + b as u64;
        slot.recording =
            (self.record_every > 0 && global.is_multiple_of(self.record_every)).then(|| {
                EpisodeRecording::new(
                    EpisodeUid { actor: self.actor_id, env: slot.index, counter },
                    params_version,
                    self.record_ram,
                )
            });
    }

    pub fn envs(&self) -> usize {
        self.slots.len()
    }

    pub fn first_env(&self) -> u32 {
        self.slots.first().map_or(0, |s| s.index)
    }

    /// Environment frames one step of the group plays.
    pub fn frames_per_step(&self) -> u64 {
        self.frames_per_step * self.slots.len() as u64
    }

    /// The current step of every env, as a request.
    pub fn observations(&self) -> Observations {
        let e = self.slots.len();
        let cfg = &self.cfg;
        let mut frames = Vec::with_capacity(e * cfg.frame_len());
        for s in &self.slots {
            frames.extend_from_slice(&s.frame);
        }
        let each = |f: fn(&Slot) -> f32| self.slots.iter().map(f).collect::<Vec<_>>();
        Observations {
            actor_id: self.actor_id,
            stream: self.stream,
            seq: self.seq,
            first_env: self.first_env(),
            frame: Array::from_u8(vec![e, cfg.height, cfg.width, cfg.in_channels], frames),
            reward: Array::from_f32(vec![e], &each(|s| s.reward)),
            done: Array::from_u8(vec![e], self.slots.iter().map(|s| u8::from(s.done)).collect()),
            episode_return: Array::from_f32(vec![e], &each(|s| s.report_return)),
            episode_step: Array::from_i64(
                vec![e],
                &self.slots.iter().map(|s| s.report_step).collect::<Vec<_>>(),
            ),
            record: Array::from_u8(
                vec![e],
                self.slots.iter().map(|s| u8::from(s.recording.is_some())).collect(),
            ),
        }
    }

    /// Starts every env over with a new episode, on a new stream (the
    /// learner lost track of the group); recordings in progress are sent as
    /// incomplete first.
    pub fn start_over(&mut self, stepper: &mut Stepper, version: u64) {
        stepper.flush_incomplete(self, version);
        for b in 0..self.slots.len() {
            let slot = &mut self.slots[b];
            slot.env.reset();
            slot.env.observation(&mut slot.frame);
            slot.reward = 0.0;
            slot.done = true;
            slot.report_return = 0.0;
            slot.report_step = 0;
            slot.episode_return = 0.0;
            slot.episode_step = 0;
            self.start_episode(b, version);
        }
        self.stream = rand::thread_rng().gen();
        self.seq = 0;
    }

    /// Wall time in the environments since the last call.
    pub fn take_environment_time(&mut self) -> Duration {
        std::mem::take(&mut self.environment_time)
    }
}

/// Applies answers and sends the recorded episodes, for training and evaluation.
pub struct Stepper<'a> {
    pub sink: Option<&'a mut EpisodeSink>,
    pub chunk_steps: usize,
}

impl Stepper<'_> {
    fn send(&mut self, chunk: wire::protocol::EpisodeChunk) {
        if let Some(sink) = self.sink.as_deref_mut() {
            sink.send(chunk);
        }
    }

    /// Every env takes the action `answer` (validated against the group's
    /// current step) holds for it, what is recorded is recorded, and the
    /// envs step; returns the episodes that ended.
    pub fn apply(&mut self, group: &mut Group, answer: &Actions) -> Vec<Finished> {
        let a = group.cfg.num_actions;
        let (gh, gw) = group.cfg.grid();
        let map_len = group.cfg.heads * gh * gw;
        let actions = answer.action.to_i64("action").expect("validated");
        let logits = answer.policy_logits.to_f32("policy_logits").expect("validated");
        let baseline = answer.baseline.to_f32("baseline").expect("validated");
        let maps = answer.maps.as_ref().map(|m| {
            let f = |a: &Array| a.to_f32("maps").expect("validated");
            [f(&m.attention), f(&m.attention_content), f(&m.attention_place)]
        });
        let version = answer.params_version;
        let mut recorded_row = 0;
        let mut finished = Vec::new();
        for b in 0..group.slots.len() {
            let action = actions[b];
            let logits = &logits[b * a..(b + 1) * a];
            let slot = &mut group.slots[b];
            // The full-resolution frame and objects of this step, before the env moves on.
            let pre = slot.recording.as_ref().map(|_| {
                let (h, w, pixels) = slot.env.render_rgb();
                ((h, w, pixels.to_vec()), slot.env.ram(), slot.env.objects())
            });
            let started = Instant::now();
            let result = slot.env.step(action as usize);
            group.environment_time += started.elapsed();
            if let (Some(rec), Some(((h, w, pixels), ram, objects)), Some(maps)) =
                (slot.recording.as_mut(), pre, maps.as_ref())
            {
                let m = recorded_row * map_len..(recorded_row + 1) * map_len;
                recorded_row += 1;
                rec.push(StepView {
                    frame: (h, w, &pixels),
                    action,
                    reward: result.reward,
                    baseline: baseline[b],
                    policy_logits: logits,
                    attention: &maps[0][m.clone()],
                    attention_content: &maps[1][m.clone()],
                    attention_place: &maps[2][m],
                    ram,
                    objects: &objects,
                });
                if rec.len() >= self.chunk_steps {
                    let chunk = rec.take_chunk(&group.cfg, None, version);
                    self.send(chunk);
                }
            }
            slot.episode_return += f64::from(result.reward);
            slot.episode_step += 1;
            slot.reward = result.reward;
            slot.done = result.episode_over;
            if result.episode_over {
                let (ret, len) = (slot.episode_return, slot.episode_step);
                finished.push((slot.index, ret, len));
                if let Some(mut rec) = slot.recording.take() {
                    let end = EpisodeEnd { episode_return: ret, length: len, complete: true };
                    let chunk = rec.take_chunk(&group.cfg, Some(end), version);
                    self.send(chunk);
                }
                slot.report_return = ret as f32;
                slot.report_step = len as i64;
                slot.episode_return = 0.0;
                slot.episode_step = 0;
                let started = Instant::now();
                slot.env.reset();
                group.environment_time += started.elapsed();
                group.start_episode(b, version);
            } else {
                slot.report_return = slot.episode_return as f32;
                slot.report_step = slot.episode_step as i64;
            }
            let started = Instant::now();
            let slot = &mut group.slots[b];
            slot.env.observation(&mut slot.frame);
            group.environment_time += started.elapsed();
        }
        group.seq += 1;
        finished
    }

    /// Sends what is left of every recorded episode, marked incomplete.
    pub fn flush_incomplete(&mut self, group: &mut Group, version: u64) {
        for slot in &mut group.slots {
            if let Some(mut rec) = slot.recording.take() {
                let end = EpisodeEnd {
                    episode_return: slot.episode_return,
                    length: slot.episode_step,
                    complete: false,
                };
                let chunk = rec.take_chunk(&group.cfg, Some(end), version);
                self.send(chunk);
            }
        }
    }
}
