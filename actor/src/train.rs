//! The actor's loop, the same in both inference modes: `--groups` groups of
//! `--num-envs` environments (one group in the actors' mode) played in
//! turn. Each group's current step goes to [`Inference`]; when its answer is
//! there, the group's environments take the actions and its next step is
//! sent, so under central inference one group's emulation overlaps
//! another's round trip. A group told to start over gets new episodes on a
//! new stream.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tch::Device;

use agent::model::Model;
use wire::auth::Credentials;
use wire::config::ModelConfig;
use wire::log_throttle::worth_logging;
use wire::rundir::RunDir;
use wire::transport::Push;

use crate::acting::{Group, Stepper};
use crate::addresses::resolve_addresses;
use crate::flags::ActorInference;
use crate::inference::{Inference, Local, Remote, Reply};
use crate::recording::EpisodeSink;
use crate::Args;

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
    let addresses = resolve_addresses(args, run_dir, stop)?;
    let central = match args.inference {
        ActorInference::Local => None,
        ActorInference::Auto => addresses.inference.clone(),
        ActorInference::Central => Some(addresses.inference.clone().with_context(|| {
            format!(
                "--inference central, but the learner does not serve inference (no inference \
                 address in {}): start the learner with --inference central, or this actor \
                 with --inference local",
                run_dir.endpoints().display()
            )
        })?),
    };
    let groups_n = if central.is_some() { args.groups.max(1) } else { 1 };
    let mut groups = Vec::with_capacity(groups_n);
    for g in 0..groups_n {
        let first_env = (g * args.num_envs) as u32;
        groups.push(Group::new(args, &cfg, args.num_envs, first_env, args.record_every)?);
    }
    let creds = Credentials::of(run_dir)?;
    let mut sink = EpisodeSink::new(Push::dial(&addresses.episodes, &creds)?);
    let where_ = match &central {
        Some(address) => format!("inference on the learner at {address}"),
        None => format!("learner at {}", addresses.params),
    };
    let mut inference: Box<dyn Inference> = match central {
        Some(address) => {
            if model.is_some() {
                tracing::info!(
                    "actor {}: the learner serves inference; this actor holds no model",
                    args.actor_id
                );
            }
            Box::new(Remote::new(args, run_dir, stop, &cfg, address, groups_n)?)
        }
        None => {
            let model = match model {
                Some(model) => model,
                None => acting_model(args, &cfg)?,
            };
            let layout: Vec<(u32, usize)> =
                groups.iter().map(|g| (g.first_env(), g.envs())).collect();
            Box::new(Local::new(args, run_dir, stop, model, addresses, &layout)?)
        }
    };
    tracing::info!(
        "actor {} playing {} group(s) of {} x {} ({} actions, preset {}); {where_}",
        args.actor_id,
        groups_n,
        args.num_envs,
        args.run.game,
        cfg.num_actions,
        args.run.preset,
    );
    let mut stepper = Stepper { sink: Some(&mut sink), chunk_steps: args.chunk_steps.max(1) };
    play(args, stop, &mut groups, inference.as_mut(), &mut stepper)
}

/// What the loop has done, for the progress line and the last log line.
#[derive(Default)]
struct Tally {
    /// Answers group 0 took (every group plays about as many).
    steps: u64,
    frames: u64,
    restarts: u64,
    /// Params version of the newest answer.
    version: u64,
    /// Time in [`Inference`] calls since the last progress line.
    in_inference: Duration,
}

impl Tally {
    /// Unrolls each environment has completed once the step after the
    /// answers taken is sent: the first unroll holds T+1 steps, each next
    /// one T more (after a start over, the count goes on: an estimate).
    fn unrolls_per_env(&self, t_len: u64) -> u64 {
        self.steps / t_len
    }

    /// Sends group `g`'s current step.
    fn send(&mut self, inference: &mut dyn Inference, g: usize, group: &Group) -> Result<()> {
        let started = Instant::now();
        inference.send(g, group.observations())?;
        self.in_inference += started.elapsed();
        Ok(())
    }

    fn recv(&mut self, inference: &mut dyn Inference, g: usize) -> Result<Reply> {
        let started = Instant::now();
        let reply = inference.recv(g, Duration::from_millis(100));
        self.in_inference += started.elapsed();
        reply
    }
}

fn play(
    args: &Args,
    stop: &AtomicBool,
    groups: &mut [Group],
    inference: &mut dyn Inference,
    stepper: &mut Stepper,
) -> Result<()> {
    let t_len = args.run.unroll_length as u64;
    let mut tally = Tally::default();
    let mut last_report = Instant::now();
    for (g, group) in groups.iter().enumerate() {
        tally.send(inference, g, group)?;
    }
    let mut g = 0;
    let finished = loop {
        if stop.load(Ordering::Relaxed) {
            break false;
        }
        match tally.recv(inference, g)? {
            Reply::Acted(actions) => {
                tally.version = actions.params_version;
                let group = &mut groups[g];
                stepper.apply(group, &actions);
                tally.frames += group.frames_per_step();
                if g == 0 {
                    tally.steps += 1;
                }
                tally.send(inference, g, group)?;
            }
            Reply::NotYet => {}
            Reply::StartOver(reason) => {
                tally.restarts += 1;
                if worth_logging(tally.restarts) {
                    tracing::warn!(
                        "actor {} group {g}: starting over with new episodes ({} so far): {reason}",
                        args.actor_id,
                        tally.restarts
                    );
                }
                let group = &mut groups[g];
                group.start_over(stepper, tally.version);
                tally.send(inference, g, group)?;
            }
            Reply::Finished => break true,
        }
        g = (g + 1) % groups.len();

        if last_report.elapsed() > Duration::from_secs(10) {
            let seconds = last_report.elapsed().as_secs_f64();
            let pct = |d: Duration| 100.0 * d.as_secs_f64() / seconds;
            let emulating: Duration = groups.iter_mut().map(Group::take_environment_time).sum();
            let mut time = format!("environment {:.0}%", pct(emulating));
            for (what, spent) in inference.take_times(std::mem::take(&mut tally.in_inference)) {
                time += &format!(", {what} {:.0}%", pct(spent));
            }
            tracing::info!(
                "actor {}: {} unrolls per env, {} frames, params version {}, episode chunks sent {} dropped {}, restarts {}, {}; time: {time}",
                args.actor_id,
                tally.unrolls_per_env(t_len),
                tally.frames,
                tally.version,
                stepper.sink.as_ref().map_or(0, |s| s.sent),
                stepper.sink.as_ref().map_or(0, |s| s.dropped),
                tally.restarts,
                inference.status(),
            );
            last_report = Instant::now();
        }
        if args.max_unrolls > 0 && tally.unrolls_per_env(t_len) >= args.max_unrolls {
            break false;
        }
    };
    if finished {
        tracing::info!("the learner finished the run; actor {} stops", args.actor_id);
    }
    for group in groups.iter_mut() {
        stepper.flush_incomplete(group, tally.version);
    }
    tracing::info!(
        "actor {} stopped after {} unrolls per env ({} frames, {} restarts)",
        args.actor_id,
        tally.unrolls_per_env(t_len),
        tally.frames,
        tally.restarts
    );
    // Let NNG deliver what is queued before the sockets close.
    std::thread::sleep(Duration::from_millis(300));
    Ok(())
}
