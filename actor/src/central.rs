//! Acting under central inference (docs/architecture.md, Central inference):
//! no model here. The actor plays `--groups` groups of `--num-envs`
//! environments in turn: it sends a group's current step to the learner,
//! steps the next group with the actions that came back for it, and so on,
//! so the emulation of one group overlaps the other's round trip.
//!
//! The learner picks the actions, keeps the recurrent states and assembles
//! the unrolls; the actor keeps the environments, the episode statistics, and
//! the recordings (the learner sends the attention maps of the recorded
//! environments with their actions).
//!
//! Faults: an answer that does not come within `--inference-timeout-s`, or a
//! [`Restart`], starts the group over: new episodes, a new stream id (the
//! learner frees the old one after its idle timeout). The learner's address
//! is looked up again at each timeout, so a learner restarted elsewhere is
//! found. A connection lost when the learner reached its total frames is the
//! run's normal end, not a fault: the actor waits a few seconds for the
//! learner to record the end, then stops without a warning.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use rand::Rng;

use wire::auth::Credentials;
use wire::config::ModelConfig;
use wire::protocol::{Actions, Body, Observations, Restart};
use wire::rundir::RunDir;
use wire::transport::{InferenceClient, Push, TransportError};

use crate::acting::{Acting, StepOutputs, Stepper};
use crate::addresses::{
    learner_finished, learner_finishing, resolve_addresses, Addresses, FINISHING_GRACE,
};
use crate::recording::EpisodeSink;
use crate::Args;

/// One group: its environments, its socket, and the request it waits on.
struct Group {
    acting: Acting,
    client: InferenceClient,
    stream: u64,
    seq: u64,
    /// The request sent and not yet answered.
    pending: Option<Box<Observations>>,
    /// When the answer started being waited for.
    waiting_since: Instant,
}

impl Group {
    /// Sends the group's current step. A learner that does not take it
    /// within `timeout` (or a failed send) leaves nothing pending: the wait
    /// for an answer then times out and the group starts over.
    fn send(&mut self, timeout: Duration) -> Result<()> {
        let request = Box::new(self.acting.observations(self.stream, self.seq));
        let body = Body::Observations(request);
        self.waiting_since = Instant::now();
        self.pending = None;
        match self.client.send(&body, timeout) {
            Ok(()) => {
                let Body::Observations(request) = body else { unreachable!("built above") };
                self.pending = Some(request);
                Ok(())
            }
            Err(TransportError::Closed) => anyhow::bail!("the inference socket closed"),
            Err(e) => {
                if !matches!(e, TransportError::TimedOut) {
                    tracing::warn!(
                        "sending to the learner failed ({e}); the group will start over"
                    );
                }
                Ok(())
            }
        }
    }

    /// New episodes under a new stream, and their first step sent.
    fn start_over(&mut self, stepper: &mut Stepper, version: u64, timeout: Duration) -> Result<()> {
        self.acting.start_over(stepper, version);
        self.stream = rand::thread_rng().gen();
        self.seq = 0;
        self.send(timeout)
    }
}

/// The answer's outputs for [`Stepper::apply`]: maps of the recorded envs
/// spread to their rows (zeros elsewhere; those rows are not read).
fn step_outputs(cfg: &ModelConfig, request: &Observations, answer: &Actions) -> StepOutputs {
    let maps = answer.maps.as_ref().map(|m| {
        let (h, w) = cfg.grid();
        let map_len = cfg.heads * h * w;
        let envs = request.envs();
        let spread = |rows: &wire::protocol::Array| {
            let values = rows.to_f32("maps").expect("validated");
            let mut all = vec![0f32; envs * map_len];
            for (r, e) in request.recorded().into_iter().enumerate() {
                all[e * map_len..(e + 1) * map_len]
                    .copy_from_slice(&values[r * map_len..(r + 1) * map_len]);
            }
            all
        };
        [spread(&m.attention), spread(&m.attention_content), spread(&m.attention_place)]
    });
    StepOutputs {
        logits: answer.policy_logits.to_f32("policy_logits").expect("validated"),
        baseline: answer.baseline.to_f32("baseline").expect("validated"),
        maps,
    }
}

/// Logs the first few of a kind of event, then every power of two.
fn often(n: u64) -> bool {
    n <= 5 || n.is_power_of_two()
}

pub fn train(
    args: &Args,
    run_dir: &RunDir,
    stop: &AtomicBool,
    cfg: &ModelConfig,
    addresses: Addresses,
) -> Result<()> {
    let creds = Credentials::of(run_dir)?;
    let timeout = Duration::from_secs_f64(args.inference_timeout_s.max(0.1));
    let dial = |address: &str| InferenceClient::dial(address, &creds, args.max_message_bytes);
    let mut address = addresses.inference.clone().expect("central inference has an address");
    let mut sink = EpisodeSink::new(Push::dial(&addresses.episodes, &creds)?);
    let mut stepper = Stepper { sink: Some(&mut sink), chunk_steps: args.chunk_steps.max(1) };
    let groups_n = args.groups.max(1);
    let mut groups = Vec::with_capacity(groups_n);
    for g in 0..groups_n {
        let first_env = (g * args.num_envs) as u32;
        let mut group = Group {
            acting: Acting::group(args, cfg, args.record_every, first_env)?,
            client: dial(&address)?,
            stream: rand::thread_rng().gen(),
            seq: 0,
            pending: None,
            waiting_since: Instant::now(),
        };
        group.send(timeout)?;
        groups.push(group);
    }
    tracing::info!(
        "actor {} playing {} groups of {} x {} ({} actions, preset {}); inference on the learner at {}",
        args.actor_id,
        groups_n,
        args.num_envs,
        args.run.game,
        cfg.num_actions,
        args.run.preset,
        address
    );

    let t_len = args.run.unroll_length as u64;
    let mut version = 0u64;
    let (mut steps_per_env, mut frames, mut restarts, mut timeouts) = (0u64, 0u64, 0u64, 0u64);
    let mut waiting = Duration::ZERO;
    let mut last_report = Instant::now();
    let mut g = 0usize;
    'run: while !stop.load(Ordering::Relaxed) {
        let group = &mut groups[g];
        let wait_started = Instant::now();
        let answer = group.client.recv(Duration::from_millis(100));
        waiting += wait_started.elapsed();
        let restart: Option<String> = match answer {
            Ok(Ok(Body::Actions(actions))) => match group.pending.take() {
                None => Some("an answer came to no request".to_string()),
                Some(request) => match actions.validate(cfg, &request) {
                    Ok(()) => {
                        let out = step_outputs(cfg, &request, &actions);
                        let chosen = actions.action.to_i64("action").expect("validated");
                        version = actions.params_version;
                        stepper.apply(
                            &mut group.acting,
                            &out,
                            Some(&chosen),
                            version,
                            false,
                            |_, _, _, _| {},
                        );
                        group.seq += 1;
                        group.send(timeout)?;
                        if g == 0 {
                            steps_per_env += 1;
                        }
                        frames += group.acting.frames_per_step() * group.acting.envs() as u64;
                        None
                    }
                    Err(e) => Some(format!("the learner's answer was refused: {e}")),
                },
            },
            Ok(Ok(Body::Restart(Restart { reason, .. }))) => Some(reason),
            Ok(Ok(other)) => Some(format!("the learner answered with {}", other.kind())),
            Ok(Err(e)) => Some(format!("the learner's answer was refused: {e}")),
            Err(TransportError::TimedOut) => {
                if group.waiting_since.elapsed() < timeout {
                    // Not yet: the other groups' answers may be there.
                    g = (g + 1) % groups_n;
                    continue;
                }
                timeouts += 1;
                if learner_finished(run_dir) {
                    tracing::info!("the learner finished the run; actor {} stops", args.actor_id);
                    break 'run;
                }
                let now = resolve_addresses(args, run_dir, stop)?;
                match now.inference.clone() {
                    Some(moved) if moved != address => {
                        tracing::info!("the learner serves inference at {moved} now; redialling");
                        for group in &mut groups {
                            group.client = dial(&moved)?;
                        }
                        address = moved;
                    }
                    Some(_) => {}
                    None => anyhow::bail!(
                        "the learner no longer serves inference (endpoints.json has no inference address): restart this actor with --inference local"
                    ),
                }
                Some(format!(
                    "no answer from the learner at {address} for {:.0} s",
                    timeout.as_secs_f64()
                ))
            }
            Err(TransportError::Closed) => anyhow::bail!("the inference socket closed"),
            // The learner's connection went away with the request: the run's
            // normal end (the learner stops serving before it records the
            // end), or a learner killed or restarted: start over; the next
            // send waits for it.
            Err(e) => {
                if learner_finishing(run_dir, FINISHING_GRACE) {
                    tracing::info!("the learner finished the run; actor {} stops", args.actor_id);
                    break 'run;
                }
                Some(format!("the request to the learner failed: {e}"))
            }
        };
        if let Some(reason) = restart {
            restarts += 1;
            if often(restarts) {
                tracing::warn!(
                    "actor {} group {g}: starting over with new episodes ({restarts} so far): {reason}",
                    args.actor_id
                );
            }
            let group = &mut groups[g];
            group.start_over(&mut stepper, version, timeout)?;
        }
        g = (g + 1) % groups_n;

        if last_report.elapsed() > Duration::from_secs(10) {
            let seconds = last_report.elapsed().as_secs_f64();
            let emulating: f64 = groups
                .iter_mut()
                .map(|group| group.acting.take_environment_time().as_secs_f64())
                .sum();
            tracing::info!(
                "actor {}: {} steps per env, {} frames, params version {}, episode chunks sent {} dropped {}, restarts {}, timeouts {}; time: environment {:.0}%, waiting for the learner {:.0}%",
                args.actor_id,
                steps_per_env,
                frames,
                version,
                stepper.sink.as_ref().map_or(0, |s| s.sent),
                stepper.sink.as_ref().map_or(0, |s| s.dropped),
                restarts,
                timeouts,
                100.0 * emulating / seconds,
                100.0 * waiting.as_secs_f64() / seconds,
            );
            waiting = Duration::ZERO;
            last_report = Instant::now();
        }
        if args.max_unrolls > 0 && steps_per_env >= args.max_unrolls * t_len {
            break;
        }
    }
    for group in &mut groups {
        stepper.flush_incomplete(&mut group.acting, version);
    }
    tracing::info!(
        "actor {} stopped after {} steps per env ({} frames, {} restarts)",
        args.actor_id,
        steps_per_env,
        frames,
        restarts
    );
    // Let NNG deliver what is queued before the sockets close.
    std::thread::sleep(Duration::from_millis(300));
    Ok(())
}
