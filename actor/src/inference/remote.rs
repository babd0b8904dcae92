//! Central inference (docs/architecture.md, Central inference): the request
//! goes to the learner, whose policy picks the actions, keeps the recurrent
//! states and assembles the unrolls. Each group has its own socket, so the
//! actor can step one group while another's request is in flight.
//!
//! Faults: an answer that does not come within `--inference-timeout-s`, or
//! the learner's `Restart`, starts the group over: new episodes, a new
//! stream id (the learner frees the old one after its idle timeout). The
//! learner's address is looked up again at each timeout, so a learner
//! restarted elsewhere is found. A connection lost when the learner reached
//! its total frames is the run's normal end, not a fault: the actor waits a
//! few seconds for the learner to record the end, then stops without a
//! warning.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Result;

use wire::auth::Credentials;
use wire::config::ModelConfig;
use wire::protocol::{Body, Observations, ProtocolError, Restart};
use wire::rundir::RunDir;
use wire::transport::{InferenceClient, TransportError};

use super::{Inference, Reply};
use crate::addresses::{learner_finished, learner_finishing, resolve_addresses, FINISHING_GRACE};
use crate::Args;

pub struct Remote<'a> {
    cfg: ModelConfig,
    clients: Vec<InferenceClient>,
    /// The request each group waits on; `None` after a failed send (the
    /// wait then times out and the group starts over).
    pending: Vec<Option<Box<Observations>>>,
    /// When each group's last send was tried.
    sent_at: Vec<Instant>,
    address: String,
    creds: Credentials,
    timeout: Duration,
    timeouts: u64,
    args: &'a Args,
    run_dir: &'a RunDir,
    stop: &'a AtomicBool,
}

impl<'a> Remote<'a> {
    pub fn new(
        args: &'a Args,
        run_dir: &'a RunDir,
        stop: &'a AtomicBool,
        cfg: &ModelConfig,
        address: String,
        groups: usize,
    ) -> Result<Self> {
        let creds = Credentials::of(run_dir)?;
        let clients = (0..groups)
            .map(|_| InferenceClient::dial(&address, &creds, args.max_message_bytes))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Remote {
            cfg: cfg.clone(),
            clients,
            pending: (0..groups).map(|_| None).collect(),
            sent_at: vec![Instant::now(); groups],
            address,
            creds,
            timeout: Duration::from_secs_f64(args.inference_timeout_s.max(0.1)),
            timeouts: 0,
            args,
            run_dir,
            stop,
        })
    }

    /// The learner's address again, from endpoints.json: redials when the
    /// learner moved.
    fn follow_the_learner(&mut self) -> Result<()> {
        let now = resolve_addresses(self.args, self.run_dir, self.stop)?;
        match now.inference {
            Some(moved) if moved != self.address => {
                tracing::info!("the learner serves inference at {moved} now; redialling");
                for client in &mut self.clients {
                    *client =
                        InferenceClient::dial(&moved, &self.creds, self.args.max_message_bytes)?;
                }
                self.address = moved;
                Ok(())
            }
            Some(_) => Ok(()),
            None => anyhow::bail!(
                "the learner no longer serves inference (endpoints.json has no inference address): restart this actor with --inference local"
            ),
        }
    }
}

impl Inference for Remote<'_> {
    /// A learner that does not take the request within the timeout (or a
    /// failed send) leaves nothing pending: the wait for an answer then
    /// times out and the group starts over.
    fn send(&mut self, group: usize, request: Observations) -> Result<()> {
        let body = Body::Observations(Box::new(request));
        self.sent_at[group] = Instant::now();
        self.pending[group] = None;
        match self.clients[group].send(&body, self.timeout) {
            Ok(()) => {
                let Body::Observations(request) = body else { unreachable!("built above") };
                self.pending[group] = Some(request);
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

    fn recv(&mut self, group: usize, wait: Duration) -> Result<Reply> {
        let reply = match self.clients[group].recv(wait) {
            Ok(Ok(Body::Actions(actions))) => match self.pending[group].take() {
                None => Reply::StartOver("an answer came to no request".to_string()),
                Some(request) => match actions.validate(&self.cfg, &request) {
                    Ok(()) => Reply::Acted(actions),
                    Err(e) => Reply::StartOver(format!("the learner's answer was refused: {e}")),
                },
            },
            Ok(Ok(Body::Restart(Restart { reason, .. }))) => Reply::StartOver(reason),
            Ok(Ok(other)) => {
                Reply::StartOver(format!("the learner answered with {}", other.kind()))
            }
            Ok(Err(ProtocolError::RefusedByPeer(why))) if !why.worth_retrying() => {
                anyhow::bail!("the learner refused our inference request: {why}")
            }
            Ok(Err(ProtocolError::RefusedByPeer(why))) => {
                // Stale or replayed: the learner restarted, or this node's
                // clock is behind its. The group starts over; a short pause
                // keeps a clock behind from turning that into a busy loop.
                std::thread::sleep(Duration::from_millis(100));
                Reply::StartOver(format!("the learner refused our request: {why}"))
            }
            Ok(Err(e)) => Reply::StartOver(format!("the learner's answer was refused: {e}")),
            Err(TransportError::TimedOut) => {
                if self.sent_at[group].elapsed() < self.timeout {
                    // Not yet: the other groups' answers may be there.
                    return Ok(Reply::NotYet);
                }
                self.timeouts += 1;
                if learner_finished(self.run_dir) {
                    return Ok(Reply::Finished);
                }
                self.follow_the_learner()?;
                Reply::StartOver(format!(
                    "no answer from the learner at {} for {:.0} s",
                    self.address,
                    self.timeout.as_secs_f64()
                ))
            }
            Err(TransportError::Closed) => anyhow::bail!("the inference socket closed"),
            // The learner's connection went away with the request: the run's
            // normal end (the learner stops serving before it records the
            // end), or a learner killed or restarted: start over; the next
            // send waits for it.
            Err(e) => {
                if learner_finishing(self.run_dir, FINISHING_GRACE) {
                    return Ok(Reply::Finished);
                }
                Reply::StartOver(format!("the request to the learner failed: {e}"))
            }
        };
        self.pending[group] = None;
        Ok(reply)
    }

    fn take_times(&mut self, in_calls: Duration) -> Vec<(&'static str, Duration)> {
        vec![("waiting for the learner", in_calls)]
    }

    fn status(&self) -> String {
        format!("timeouts {}", self.timeouts)
    }
}
