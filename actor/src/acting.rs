//! The acting loop: E environments in lockstep, one batched inference call per
//! step, unrolls assembled as docs/architecture.md, Step alignment, aligns them.
//!
//! Alignment, per environment: the current step holds `frame[t]` and the
//! `reward[t]`, `done[t]`, `last_action[t]` that came with it; the model picks
//! `action[t]` from `policy_logits[t]`; then the environment steps. The reward
//! of that step and `done = 1` if the episode ended travel with the next frame
//! (the first frame of the new episode, after a reset). At a step with
//! `done = 1`, `episode_return` and `episode_step` hold the finished episode's
//! final return and length (TorchBeast's convention; the learner reads them
//! there). An unroll holds T+1 steps; its step 0 repeats step T of the previous
//! unroll, and it carries the recurrent state from before step 0.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use tch::{Device, Kind, Tensor};

use agent::model::{AgentOutput, AgentState, Model, Unroll};
use env::{derive_seed, make_env, Environment};
use wire::auth::Credentials;
use wire::config::ModelConfig;
use wire::protocol::{
    Array, Body, EpisodeEnd, EpisodeUid, Observations, ParamsRequest, RecurrentState,
};
use wire::rundir::RunDir;
use wire::transport::{ParamsClient, Push, TransportError};
use wire::unroll::{Step, UnrollBuffer};

use crate::addresses::{learner_finished, resolve_addresses};
use crate::flags::ActorInference;
use crate::recording::{EpisodeRecording, EpisodeSink, StepView};
use crate::Args;

/// How long one params request or trajectory send waits before it logs and retries.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The model copy the actor acts with, and the params version it holds.
pub struct Policy {
    pub model: Model,
    pub version: u64,
}

impl Policy {
    /// Asks the learner for weights newer than ours. `Ok(false)`: the learner
    /// did not answer in time.
    pub fn refresh(&mut self, client: &ParamsClient, actor_id: u32) -> Result<bool> {
        let request = Body::ParamsRequest(ParamsRequest { actor_id, version: self.version });
        match client.request(&request, PATIENCE) {
            Ok(Ok(Body::Params(params))) => {
                self.model.load_params(&params).context(
                    "loading the learner's weights (is the actor's --preset/--game the learner's?)",
                )?;
                self.version = params.version;
                Ok(true)
            }
            Ok(Ok(Body::UpToDate(_))) => Ok(true),
            Ok(Ok(other)) => bail!("the learner answered a params request with {}", other.kind()),
            Ok(Err(e)) => Err(e).context("the learner's answer was refused"),
            Err(TransportError::TimedOut) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// One environment and the unroll being assembled from it.
pub struct Slot {
    env: Box<dyn Environment>,
    index: u32,
    /// The current step, not yet acted on.
    frame: Vec<u8>,
    reward: f32,
    done: bool,
    last_action: i64,
    report_return: f32,
    report_step: i64,
    /// The running episode.
    episode_return: f64,
    episode_step: u64,
    episodes_started: u64,
    recording: Option<EpisodeRecording>,
    unroll: UnrollBuffer,
    /// The state before step T of the unroll being filled: step 0 of the next one.
    unroll_state_for_next: Option<RecurrentState>,
}

/// The environments, the recurrent state and the sampling stream of one actor.
pub struct Acting {
    cfg: ModelConfig,
    slots: Vec<Slot>,
    state: AgentState,
    rng: Pcg64,
    record_every: u64,
    record_ram: bool,
    actor_id: u32,
    frames_per_step: u64,
    /// Wall time in inference and in the environments, for the progress line.
    timing: Timing,
}

/// Where the acting loop's wall time goes.
#[derive(Default)]
struct Timing {
    inference: Duration,
    environment: Duration,
    since: Option<Instant>,
}

impl Timing {
    /// "inference 61%, environment 30%, other 9%" since the last call.
    fn report(&mut self) -> String {
        let total = self.since.map_or(Duration::ZERO, |s| s.elapsed()).as_secs_f64().max(1e-9);
        let pct = |d: Duration| 100.0 * d.as_secs_f64() / total;
        let (i, e) = (pct(self.inference), pct(self.environment));
        *self = Timing { since: Some(Instant::now()), ..Default::default() };
        format!("inference {i:.0}%, environment {e:.0}%, other {:.0}%", (100.0 - i - e).max(0.0))
    }
}

/// What one batched step yields on the CPU, from the actor's own model or
/// from the learner's (central inference).
pub struct StepOutputs {
    /// [E, A]
    pub logits: Vec<f32>,
    /// [E]
    pub baseline: Vec<f32>,
    /// Attention, content and place maps [E, heads, h, w], when any env records.
    pub maps: Option<[Vec<f32>; 3]>,
}

impl Acting {
    pub fn new(args: &Args, cfg: &ModelConfig, record_every: u64) -> Result<Self> {
        Self::group(args, cfg, record_every, 0)
    }

    /// `--num-envs` environments numbered from `first_env` (a group of central
    /// inference; each env's seed derives from its number).
    pub fn group(
        args: &Args,
        cfg: &ModelConfig,
        record_every: u64,
        first_env: u32,
    ) -> Result<Self> {
        let spec = args.env_spec();
        let mut slots = Vec::with_capacity(args.num_envs);
        for index in first_env..first_env + args.num_envs as u32 {
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
                last_action: 0,
                report_return: 0.0,
                report_step: 0,
                episode_return: 0.0,
                episode_step: 0,
                episodes_started: 0,
                recording: None,
                unroll: UnrollBuffer::default(),
                unroll_state_for_next: None,
            });
        }
        let mut acting = Acting {
            cfg: cfg.clone(),
            state: AgentState::zeros(cfg, args.num_envs as i64, Device::Cpu),
            slots,
            rng: Pcg64::seed_from_u64(derive_seed(args.run.seed, args.actor_id, u32::MAX)),
            record_every,
            record_ram: args.record_ram,
            actor_id: args.actor_id,
            frames_per_step: u64::from(spec.action_repeat.max(1)),
            timing: Timing { since: Some(Instant::now()), ..Default::default() },
        };
        for b in 0..acting.slots.len() {
            acting.start_episode(b, 0);
        }
        Ok(acting)
    }

    /// Global episode counter over this actor's envs decides what is recorded.
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

    fn recording_any(&self) -> bool {
        self.slots.iter().any(|s| s.recording.is_some())
    }

    pub fn envs(&self) -> usize {
        self.slots.len()
    }

    pub fn frames_per_step(&self) -> u64 {
        self.frames_per_step
    }

    /// Every env's current frame, one after the other: [E, H, W, C].
    fn frames(&self) -> Vec<u8> {
        let mut frames = Vec::with_capacity(self.slots.len() * self.cfg.frame_len());
        for s in &self.slots {
            frames.extend_from_slice(&s.frame);
        }
        frames
    }

    /// The current step of every env, as a central-inference request.
    pub fn observations(&self, stream: u64, seq: u64) -> Observations {
        let e = self.slots.len();
        let frames = self.frames();
        let cfg = &self.cfg;
        Observations {
            actor_id: self.actor_id,
            stream,
            seq,
            first_env: self.slots.first().map_or(0, |s| s.index),
            frame: Array::from_u8(vec![e, cfg.height, cfg.width, cfg.in_channels], frames),
            reward: Array::from_f32(
                vec![e],
                &self.slots.iter().map(|s| s.reward).collect::<Vec<_>>(),
            ),
            done: Array::from_u8(vec![e], self.slots.iter().map(|s| u8::from(s.done)).collect()),
            episode_return: Array::from_f32(
                vec![e],
                &self.slots.iter().map(|s| s.report_return).collect::<Vec<_>>(),
            ),
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

    /// Starts every env over with a new episode (central inference, when the
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
            slot.last_action = 0;
            slot.report_return = 0.0;
            slot.report_step = 0;
            slot.episode_return = 0.0;
            slot.episode_step = 0;
            self.start_episode(b, version);
        }
    }

    /// Wall time in the environments since the last call.
    pub fn take_environment_time(&mut self) -> Duration {
        std::mem::take(&mut self.timing.environment)
    }

    /// One batched inference call over the current step of every env.
    fn infer(&mut self, model: &Model) -> StepOutputs {
        let e = self.slots.len() as i64;
        let cfg = &self.cfg;
        let frames = self.frames();
        let input = Unroll {
            frame: Tensor::from_slice(&frames).view([
                1,
                e,
                cfg.height as i64,
                cfg.width as i64,
                cfg.in_channels as i64,
            ]),
            reward: Tensor::from_slice(&self.slots.iter().map(|s| s.reward).collect::<Vec<_>>())
                .view([1, e]),
            done: Tensor::from_slice(&self.slots.iter().map(|s| s.done).collect::<Vec<_>>())
                .view([1, e]),
            last_action: Tensor::from_slice(
                &self.slots.iter().map(|s| s.last_action).collect::<Vec<_>>(),
            )
            .view([1, e]),
        };
        let (out, state): (AgentOutput, AgentState) = model.act(&input, &self.state);
        self.state = state;
        let to_vec = |t: &Tensor| -> Vec<f32> {
            Vec::<f32>::try_from(t.to_kind(Kind::Float).contiguous().view([-1])).expect("f32")
        };
        let maps = self.recording_any().then(|| {
            [to_vec(&out.attention), to_vec(&out.attention_content), to_vec(&out.attention_place)]
        });
        StepOutputs { logits: to_vec(&out.policy_logits), baseline: to_vec(&out.baseline), maps }
    }

    fn choose(&mut self, logits: &[f32], greedy: bool) -> usize {
        if greedy {
            return logits
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i);
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let weights: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
        let total: f64 = weights.iter().sum();
        let mut u = self.rng.gen::<f64>() * total;
        for (i, w) in weights.iter().enumerate() {
            if u < *w {
                return i;
            }
            u -= w;
        }
        weights.len() - 1
    }
}

/// Per-step bookkeeping common to training and evaluation.
pub struct Stepper<'a> {
    pub sink: Option<&'a mut EpisodeSink>,
    pub chunk_steps: usize,
}

/// A finished episode: (env index, return, length).
type Finished = (u32, f64, u64);

impl Stepper<'_> {
    /// Acts on every env's current step and steps the envs. Calls
    /// `on_acted(b, action, logits)` after the action is chosen and before the
    /// env steps (the unroll buffer records the step there).
    pub fn step(
        &mut self,
        acting: &mut Acting,
        model: &Model,
        version: u64,
        greedy: bool,
        on_acted: impl FnMut(&mut Slot, usize, i64, &[f32]),
    ) -> Vec<Finished> {
        let started = Instant::now();
        let out = acting.infer(model);
        acting.timing.inference += started.elapsed();
        self.apply(acting, &out, None, version, greedy, on_acted)
    }

    /// Takes `actions` (chosen by the learner under central inference), or
    /// samples them from `out.logits` (greedy: the most probable), records
    /// what is recorded, and steps every env.
    pub fn apply(
        &mut self,
        acting: &mut Acting,
        out: &StepOutputs,
        actions: Option<&[i64]>,
        version: u64,
        greedy: bool,
        mut on_acted: impl FnMut(&mut Slot, usize, i64, &[f32]),
    ) -> Vec<Finished> {
        let a = acting.cfg.num_actions;
        let (gh, gw) = acting.cfg.grid();
        let map_len = acting.cfg.heads * gh * gw;
        let mut finished = Vec::new();
        for b in 0..acting.slots.len() {
            let logits = &out.logits[b * a..(b + 1) * a];
            let action = match actions {
                Some(actions) => actions[b] as usize,
                None => acting.choose(logits, greedy),
            };
            on_acted(&mut acting.slots[b], b, action as i64, logits);
            let slot = &mut acting.slots[b];
            // The full-resolution frame and objects of this step, before the env moves on.
            let pre = slot.recording.as_ref().map(|_| {
                let (h, w, pixels) = slot.env.render_rgb();
                ((h, w, pixels.to_vec()), slot.env.ram(), slot.env.objects())
            });
            let started = Instant::now();
            let result = slot.env.step(action);
            acting.timing.environment += started.elapsed();
            if let (Some(rec), Some(((h, w, pixels), ram, objects)), Some(maps)) =
                (slot.recording.as_mut(), pre, out.maps.as_ref())
            {
                let m = b * map_len..(b + 1) * map_len;
                rec.push(StepView {
                    frame: (h, w, &pixels),
                    action: action as i64,
                    reward: result.reward,
                    baseline: out.baseline[b],
                    policy_logits: logits,
                    attention: &maps[0][m.clone()],
                    attention_content: &maps[1][m.clone()],
                    attention_place: &maps[2][m],
                    ram,
                    objects: &objects,
                });
                if rec.len() >= self.chunk_steps {
                    let chunk = rec.take_chunk(&acting.cfg, None, version);
                    if let Some(sink) = self.sink.as_deref_mut() {
                        sink.send(chunk);
                    }
                }
            }
            slot.episode_return += f64::from(result.reward);
            slot.episode_step += 1;
            slot.reward = result.reward;
            slot.last_action = action as i64;
            if result.episode_over {
                let (ret, len) = (slot.episode_return, slot.episode_step);
                finished.push((slot.index, ret, len));
                if let Some(mut rec) = slot.recording.take() {
                    let end = EpisodeEnd { episode_return: ret, length: len, complete: true };
                    let chunk = rec.take_chunk(&acting.cfg, Some(end), version);
                    if let Some(sink) = self.sink.as_deref_mut() {
                        sink.send(chunk);
                    }
                }
                slot.report_return = ret as f32;
                slot.report_step = len as i64;
                slot.episode_return = 0.0;
                slot.episode_step = 0;
                slot.done = true;
                let started = Instant::now();
                slot.env.reset();
                acting.timing.environment += started.elapsed();
                acting.start_episode(b, version);
            } else {
                slot.done = false;
                let slot = &mut acting.slots[b];
                slot.report_return = slot.episode_return as f32;
                slot.report_step = slot.episode_step as i64;
            }
            let started = Instant::now();
            let slot = &mut acting.slots[b];
            slot.env.observation(&mut slot.frame);
            acting.timing.environment += started.elapsed();
        }
        finished
    }

    /// Sends what is left of every recorded episode, marked incomplete.
    pub fn flush_incomplete(&mut self, acting: &mut Acting, version: u64) {
        for slot in &mut acting.slots {
            if let Some(mut rec) = slot.recording.take() {
                let end = EpisodeEnd {
                    episode_return: slot.episode_return,
                    length: slot.episode_step,
                    complete: false,
                };
                let chunk = rec.take_chunk(&acting.cfg, Some(end), version);
                if let Some(sink) = self.sink.as_deref_mut() {
                    sink.send(chunk);
                }
            }
        }
    }
}

pub fn model_config(args: &Args) -> Result<ModelConfig> {
    let num_actions = args.env_spec().num_actions().context("reading the game's action set")?;
    let cfg = args.run.model_config(num_actions);
    cfg.validate().map_err(anyhow::Error::msg)?;
    Ok(cfg)
}

/// The actor's model on the CPU, in the precision `--precision` resolves to
/// (printed, as the actor's log is where its settings are recorded).
pub fn acting_model(args: &Args, cfg: &ModelConfig) -> Result<Model> {
    let mut model = Model::new(cfg.clone(), Device::Cpu);
    let precision = args.precision.resolve(Device::Cpu)?;
    tracing::info!(
        "actor {}: precision {} ({})",
        args.actor_id,
        precision.precision,
        precision.reason
    );
    model.set_precision(precision.precision);
    Ok(model)
}

pub fn train(args: &Args, run_dir: &RunDir, stop: &AtomicBool) -> Result<()> {
    let cfg = model_config(args)?;
    // The model first, unless inference is surely the learner's: a precision
    // that cannot be resolved fails now, not after waiting for the learner.
    let model = match args.inference {
        ActorInference::Central => None,
        ActorInference::Local | ActorInference::Auto => Some(acting_model(args, &cfg)?),
    };
    let mut addresses = resolve_addresses(args, run_dir, stop)?;
    let central = match args.inference {
        ActorInference::Local => false,
        ActorInference::Auto => addresses.inference.is_some(),
        ActorInference::Central => {
            anyhow::ensure!(
                addresses.inference.is_some(),
                "--inference central, but the learner does not serve inference (no inference \
                 address in {}): start the learner with --inference central, or this actor \
                 with --inference local",
                run_dir.endpoints().display()
            );
            true
        }
    };
    if central {
        if model.is_some() {
            tracing::info!(
                "actor {}: the learner serves inference; this actor holds no model",
                args.actor_id
            );
        }
        return crate::central::train(args, run_dir, stop, &cfg, addresses);
    }
    let model = match model {
        Some(model) => model,
        None => acting_model(args, &cfg)?,
    };
    let t_len = args.run.unroll_length;
    // The run's key: made by the learner with the run directory (or by us,
    // if we got there first; either way one key for the whole run).
    let creds = Credentials::of(run_dir)?;
    let mut push = Push::dial(&addresses.trajectories, &creds)?;
    let mut params = ParamsClient::dial(&addresses.params, &creds, args.max_message_bytes)?;
    let mut sink = EpisodeSink::new(Push::dial(&addresses.episodes, &creds)?);
    let mut acting = Acting::new(args, &cfg, args.record_every)?;
    let mut policy = Policy { model, version: 0 };
    tracing::info!(
        "actor {} playing {} x {} ({} actions, preset {}, {}); learner at {}",
        args.actor_id,
        args.num_envs,
        args.run.game,
        cfg.num_actions,
        args.run.preset,
        policy.model.agent.precision(),
        addresses.params
    );

    let mut stepper = Stepper { sink: Some(&mut sink), chunk_steps: args.chunk_steps.max(1) };
    let mut unrolls: u64 = 0;
    let mut frames: u64 = 0;
    let mut last_report = Instant::now();
    let mut learner_away_since: Option<Instant> = None;
    'run: while !stop.load(Ordering::Relaxed) {
        // Newer weights before every unroll; wait for the first ones.
        loop {
            if stop.load(Ordering::Relaxed) {
                break 'run;
            }
            if policy.refresh(&params, args.actor_id)? {
                if let Some(since) = learner_away_since.take() {
                    tracing::info!(
                        "learner answers again after {:.0} s; holding version {}",
                        since.elapsed().as_secs_f64(),
                        policy.version
                    );
                }
                if policy.version > 0 {
                    break;
                }
            } else if learner_finished(run_dir) {
                tracing::info!("the learner finished the run; actor {} stops", args.actor_id);
                break 'run;
            } else {
                if learner_away_since.is_none() {
                    learner_away_since = Some(Instant::now());
                    tracing::warn!(
                        "learner not answering at {}; waiting for it{}",
                        addresses.params,
                        if policy.version == 0 { " (no weights yet)" } else { "" }
                    );
                }
                // A learner restarted on another node (tcp) writes new addresses.
                let now = resolve_addresses(args, run_dir, stop)?;
                if now.trajectories != addresses.trajectories || now.params != addresses.params {
                    tracing::info!(
                        "the learner moved to {} (endpoints.json); redialling",
                        now.params
                    );
                    push = Push::dial(&now.trajectories, &creds)?;
                    params = ParamsClient::dial(&now.params, &creds, args.max_message_bytes)?;
                    addresses = now;
                }
            }
            if policy.version == 0 && learner_away_since.is_none() {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        // Fill every env's unroll to T+1 steps.
        let need = if unrolls == 0 { t_len + 1 } else { t_len };
        for _ in 0..need {
            let before = acting.state.shallow_clone();
            let version = policy.version;
            stepper.step(&mut acting, &policy.model, version, false, |slot, b, action, logits| {
                let u = &mut slot.unroll;
                let step = Step {
                    frame: &slot.frame,
                    reward: slot.reward,
                    done: slot.done,
                    last_action: slot.last_action,
                    action,
                    policy_logits: logits,
                    episode_return: slot.report_return,
                    episode_step: slot.report_step,
                };
                u.push(&step, || before.to_protocol(b as i64));
                if u.len() == t_len + 1 {
                    // The state before this step starts the next unroll.
                    slot.unroll_state_for_next = Some(before.to_protocol(b as i64));
                }
            });
            frames += acting.frames_per_step * acting.slots.len() as u64;
        }
        for b in 0..acting.slots.len() {
            let slot = &mut acting.slots[b];
            let trajectory =
                slot.unroll.to_trajectory(&cfg, args.actor_id, slot.index, policy.version);
            let body = Body::Trajectory(Box::new(trajectory));
            loop {
                match push.send(&body, Some(PATIENCE)) {
                    Ok(()) => break,
                    Err(TransportError::TimedOut) => {
                        if stop.load(Ordering::Relaxed) || learner_finished(run_dir) {
                            break 'run;
                        }
                        tracing::warn!(
                            "learner not taking trajectories at {} for {} s; waiting",
                            addresses.trajectories,
                            PATIENCE.as_secs()
                        );
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let next_state = slot.unroll_state_for_next.take().expect("set at step T");
            slot.unroll.restart_from_last(next_state);
        }
        unrolls += 1;
        if last_report.elapsed() > Duration::from_secs(10) {
            tracing::info!(
                "actor {}: {} unrolls per env, {} frames, params version {}, episode chunks sent {} dropped {}; time: {}",
                args.actor_id,
                unrolls,
                frames,
                policy.version,
                stepper.sink.as_ref().map_or(0, |s| s.sent),
                stepper.sink.as_ref().map_or(0, |s| s.dropped),
                acting.timing.report()
            );
            last_report = Instant::now();
        }
        if args.max_unrolls > 0 && unrolls >= args.max_unrolls {
            break;
        }
    }
    let version = policy.version;
    stepper.flush_incomplete(&mut acting, version);
    tracing::info!(
        "actor {} stopped after {} unrolls per env ({} frames)",
        args.actor_id,
        unrolls,
        frames
    );
    // Let NNG deliver what is queued before the sockets close.
    std::thread::sleep(Duration::from_millis(300));
    Ok(())
}
