//! The actors' mode: the actor's own batched policy answers in-process. The
//! unrolls it completes go to the learner's trajectory socket at once; after
//! them the actor takes the learner's newest weights (waiting for the
//! learner when it does not answer), so the weights change only between
//! unrolls, as IMPALA's actors do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use agent::model::Model;
use agent::policy::{BatchedPolicy, Request, Row, Sampling, UnrollStore};
use env::derive_seed;
use wire::auth::Credentials;
use wire::protocol::{Actions, Body, Observations, Trajectory};
use wire::rundir::RunDir;
use wire::transport::{ParamsClient, Push, TransportError};

use super::{Inference, Reply};
use crate::addresses::{learner_finished, resolve_addresses, Addresses, PATIENCE};
use crate::weights::{self, Fetched};
use crate::Args;

pub struct Local<'a> {
    policy: BatchedPolicy,
    /// The policy's rows of each group.
    rows: Vec<Vec<Row>>,
    answers: Vec<Option<Actions>>,
    params: ParamsClient,
    push: Push,
    addresses: Addresses,
    creds: Credentials,
    args: &'a Args,
    run_dir: &'a RunDir,
    stop: &'a AtomicBool,
    /// Time in the policy's passes since the last [`Inference::take_times`].
    acting: Duration,
    /// An unroll was sent: the next pass takes the learner's newest weights first.
    weights_due: bool,
    /// Unrolls the learner took.
    sent: u64,
    /// Set when the learner finished the run while an unroll was being
    /// sent: every later `recv` says so.
    finished: bool,
}

impl<'a> Local<'a> {
    /// `groups` holds (first env, envs) of each group. Waits for the
    /// learner's first weights.
    pub fn new(
        args: &'a Args,
        run_dir: &'a RunDir,
        stop: &'a AtomicBool,
        model: Model,
        addresses: Addresses,
        groups: &[(u32, usize)],
    ) -> Result<Self> {
        // The run's key: made by the learner with the run directory (or by
        // us, if we got there first; either way one key for the whole run).
        let creds = Credentials::of(run_dir)?;
        let push = Push::dial(&addresses.trajectories, &creds)?;
        let params = ParamsClient::dial(&addresses.params, &creds, args.max_message_bytes)?;
        let store = UnrollStore::new(args.run.unroll_length);
        let seed = derive_seed(args.run.seed, args.actor_id, u32::MAX);
        let mut policy = BatchedPolicy::new(model, 0, Some(store), seed);
        let rows = groups.iter().map(|&(first, n)| policy.add(args.actor_id, first, n)).collect();
        let mut local = Local {
            policy,
            rows,
            answers: groups.iter().map(|_| None).collect(),
            params,
            push,
            addresses,
            creds,
            args,
            run_dir,
            stop,
            acting: Duration::ZERO,
            weights_due: false,
            sent: 0,
            finished: false,
        };
        local.take_weights()?;
        Ok(local)
    }

    /// Asks the learner for weights newer than ours. `Ok(false)`: the
    /// learner did not answer in time.
    fn refresh(&mut self) -> Result<bool> {
        match weights::ask(&self.params, self.args.actor_id, self.policy.version())? {
            Fetched::Params(params) => {
                self.policy.load(params.version, |model| weights::load(model, &params))?;
                Ok(true)
            }
            Fetched::UpToDate => Ok(true),
            Fetched::NoAnswer => Ok(false),
        }
    }

    /// The learner's newest weights (its first ones, at the start): waits
    /// while the learner does not answer, and follows it if it moves.
    /// Sets `finished` when the run ends meanwhile; returns early when the
    /// actor is stopped.
    fn take_weights(&mut self) -> Result<()> {
        let mut away_since: Option<Instant> = None;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if self.refresh()? {
                if let Some(since) = away_since.take() {
                    tracing::info!(
                        "learner answers again after {:.0} s; holding version {}",
                        since.elapsed().as_secs_f64(),
                        self.policy.version()
                    );
                }
                if self.policy.version() > 0 {
                    return Ok(());
                }
            } else if learner_finished(self.run_dir) {
                self.finished = true;
                return Ok(());
            } else {
                if away_since.is_none() {
                    away_since = Some(Instant::now());
                    tracing::warn!(
                        "learner not answering at {}; waiting for it{}",
                        self.addresses.params,
                        if self.policy.version() == 0 { " (no weights yet)" } else { "" }
                    );
                }
                // A learner restarted on another node (tcp) writes new addresses.
                let now = resolve_addresses(self.args, self.run_dir, self.stop)?;
                if now.trajectories != self.addresses.trajectories
                    || now.params != self.addresses.params
                {
                    tracing::info!(
                        "the learner moved to {} (endpoints.json); redialling",
                        now.params
                    );
                    self.push = Push::dial(&now.trajectories, &self.creds)?;
                    self.params =
                        ParamsClient::dial(&now.params, &self.creds, self.args.max_message_bytes)?;
                    self.addresses = now;
                }
            }
            if self.policy.version() == 0 && away_since.is_none() {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    /// Sends an unroll, waiting for a learner that does not take it. False:
    /// the run ended or the actor was stopped meanwhile (the unroll is lost).
    fn send_unroll(&mut self, trajectory: Trajectory) -> Result<bool> {
        let body = Body::Trajectory(Box::new(trajectory));
        loop {
            match self.push.send(&body, Some(PATIENCE)) {
                Ok(()) => return Ok(true),
                Err(TransportError::TimedOut) => {
                    if self.stop.load(Ordering::Relaxed) || learner_finished(self.run_dir) {
                        return Ok(false);
                    }
                    tracing::warn!(
                        "learner not taking trajectories at {} for {} s; waiting",
                        self.addresses.trajectories,
                        PATIENCE.as_secs()
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Inference for Local<'_> {
    fn send(&mut self, group: usize, request: Observations) -> Result<()> {
        // The learner's newest weights before the first step of an unroll,
        // as IMPALA's actors take them (never after the actor's last one).
        if self.weights_due {
            self.take_weights()?;
            self.weights_due = false;
        }
        let started = Instant::now();
        let acted = self
            .policy
            .act(&[Request { observations: &request, rows: &self.rows[group] }], Sampling::Sample);
        self.acting += started.elapsed();
        self.answers[group] = acted.answers.into_iter().next();
        if acted.unrolls.is_empty() {
            return Ok(());
        }
        for trajectory in acted.unrolls {
            if !self.send_unroll(trajectory)? {
                self.finished = learner_finished(self.run_dir);
                return Ok(());
            }
            self.sent += 1;
        }
        self.weights_due = true;
        Ok(())
    }

    fn recv(&mut self, group: usize, _wait: Duration) -> Result<Reply> {
        if self.finished {
            return Ok(Reply::Finished);
        }
        Ok(match self.answers[group].take() {
            Some(actions) => Reply::Acted(Box::new(actions)),
            None => Reply::NotYet,
        })
    }

    fn take_times(&mut self, in_calls: Duration) -> Vec<(&'static str, Duration)> {
        let acting = std::mem::take(&mut self.acting);
        vec![("inference", acting), ("waiting for the learner", in_calls.saturating_sub(acting))]
    }

    fn status(&self) -> String {
        format!("unrolls sent {}", self.sent)
    }
}
