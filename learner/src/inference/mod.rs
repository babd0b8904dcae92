//! Central inference (docs/architecture.md, Central inference): the learner
//! runs the actors' model on its own device, as SEED RL does.
//!
//! Actors send each step of a group of environments ([`Observations`]) and
//! get the actions back ([`Actions`]). Here:
//!
//! - receive threads (`--decode-threads` of them) decode and check requests, dropping and counting bad
//!   ones ([`InferenceCounters`]); the threads and their queues are
//!   [`service`]'s, the streams and the pass this file's ([`Inference`]);
//! - the serve thread batches the requests that arrive within
//!   `--inference-wait-ms` of the first, up to `--inference-batch`
//!   environments, and runs one forward pass over them with the newest
//!   weights ([`Inference::serve`]);
//! - the pass is `agent::policy::BatchedPolicy`'s, as in an actor's own
//!   process: the recurrent states stay on the device, one row per
//!   environment, and the unrolls are assembled there and handed to the
//!   batcher as they fill: no trajectory is encoded, sent or decoded;
//! - a stream (one group of one actor, keyed by the random id it sends) that
//!   stays quiet for `--inference-idle-s` is freed; one the learner does not
//!   know, or whose steps arrive out of order, is told to start over
//!   ([`Restart`]).
//!
//! V-trace still corrects for the lag: the weights can change between any two
//! steps of an unroll, and the behaviour logits stored are those acted on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent::model::Model;
use agent::policy::{BatchedPolicy, Request, Row, Sampling, UnrollStore};
use wire::config::ModelConfig;
use wire::protocol::{Actions, Body, Observations, Restart, Trajectory};

use crate::params_service::Snapshot;

mod service;

pub use service::{InferenceCounters, InferenceService, WeightsSlot, FAILPOINT_ENV};

#[derive(Clone, Debug)]
pub struct InferenceSettings {
    /// Most environments in one forward pass.
    pub max_envs: usize,
    /// Longest wait for more requests once one is there.
    pub max_wait: Duration,
    /// A stream without requests for this long is freed.
    pub idle_timeout: Duration,
    pub unroll_length: usize,
    /// Threads that receive, check and decode requests (they share the socket).
    pub receive_threads: usize,
    /// Seeds the sampling of actions.
    pub seed: u64,
}

/// One group of one actor.
struct Stream {
    actor_id: u32,
    /// The policy's rows, one per environment.
    rows: Vec<Row>,
    next_seq: u64,
}

/// The answer to one request.
pub enum Answer {
    Actions(Box<Actions>),
    Restart(Restart),
}

impl Answer {
    fn into_body(self) -> Body {
        match self {
            Answer::Actions(a) => Body::Actions(a),
            Answer::Restart(r) => Body::Restart(r),
        }
    }
}

/// The policy and the streams it acts for: everything of central inference
/// but the sockets and threads, so tests can drive it step by step.
pub struct Inference {
    policy: BatchedPolicy,
    settings: InferenceSettings,
    streams: HashMap<u64, Stream>,
    /// When each stream was last heard from: its newest request's arrival
    /// (the receive threads write it) or admission.
    receipts: Arc<Receipts>,
}

impl Inference {
    /// `model` is the inference copy (on the learner's device, in its precision).
    pub fn new(model: Model, version: u64, settings: InferenceSettings) -> Self {
        let store = UnrollStore::new(settings.unroll_length);
        Inference {
            policy: BatchedPolicy::new(model, version, Some(store), settings.seed),
            settings,
            streams: HashMap::new(),
            receipts: Arc::default(),
        }
    }

    /// Where receive threads note each request's arrival.
    pub fn receipts(&self) -> Arc<Receipts> {
        self.receipts.clone()
    }

    pub fn version(&self) -> u64 {
        self.policy.version()
    }

    /// The shapes the requests must have.
    pub fn cfg(&self) -> &ModelConfig {
        &self.policy.model().cfg
    }

    /// Streams held now.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// Acts with the weights of `snapshot` (the learner's) from the next pass on.
    pub fn load_weights(&mut self, snapshot: &Snapshot) {
        if let Err(e) = self.policy.load(snapshot.version, |model| snapshot.copy_into(model)) {
            tracing::error!(
                "central inference: weights of version {} not taken: {e:#}",
                snapshot.version
            );
        }
    }

    /// Ends a stream and frees its state rows.
    fn end_stream(&mut self, id: u64) -> Option<Stream> {
        let stream = self.streams.remove(&id)?;
        self.policy.remove(&stream.rows);
        self.receipts.forget(id);
        Some(stream)
    }

    /// Frees the streams quiet for longer than the idle timeout; returns how many.
    pub fn free_idle(&mut self, now: Instant) -> usize {
        let timeout = self.settings.idle_timeout;
        let idle: Vec<u64> = self
            .streams
            .iter()
            .filter(|(&id, _)| {
                self.receipts.last(id).is_none_or(|at| now.saturating_duration_since(at) > timeout)
            })
            .map(|(&id, _)| id)
            .collect();
        self.receipts.prune(now, timeout);
        for id in &idle {
            let stream = self.end_stream(*id).expect("listed above");
            tracing::info!(
                "central inference: actor {} stream {id:x} quiet for more than {:.0} s; its {} environments are freed",
                stream.actor_id,
                timeout.as_secs_f64(),
                stream.rows.len()
            );
        }
        idle.len()
    }

    fn restart(stream: u64, reason: String) -> Answer {
        Answer::Restart(Restart { stream, reason })
    }

    /// Admits a request: its stream's environments, or why it must start over.
    fn admit(&mut self, request: &Observations, now: Instant) -> Result<(), String> {
        let envs = request.envs();
        match self.streams.get_mut(&request.stream) {
            Some(stream) => {
                if request.seq != stream.next_seq || envs != stream.rows.len() {
                    let reason = format!(
                        "step {} of {} environments, expected step {} of {}",
                        request.seq,
                        envs,
                        stream.next_seq,
                        stream.rows.len()
                    );
                    self.end_stream(request.stream);
                    return Err(reason);
                }
                stream.next_seq += 1;
                self.receipts.received(request.stream, now);
                Ok(())
            }
            None if request.seq != 0 => Err(format!(
                "stream unknown at step {} (the learner restarted, or freed it after {:.0} s without requests)",
                request.seq,
                self.settings.idle_timeout.as_secs_f64()
            )),
            None => {
                let rows = self.policy.add(request.actor_id, request.first_env, envs);
                self.streams.insert(
                    request.stream,
                    Stream { actor_id: request.actor_id, rows, next_seq: 1 },
                );
                self.receipts.received(request.stream, now);
                Ok(())
            }
        }
    }

    /// One forward pass over the current step of every environment of the
    /// (validated) requests: answers in request order; unrolls that reached
    /// T+1 steps are appended to `unrolls`.
    pub fn serve(
        &mut self,
        requests: &[&Observations],
        unrolls: &mut Vec<Trajectory>,
    ) -> Vec<Answer> {
        let now = Instant::now();
        let mut answers: Vec<Option<Answer>> = Vec::with_capacity(requests.len());
        let mut admitted = Vec::new();
        // A stream has one step in flight: a second request of it in one
        // batch (a duplicate, a replay, or its next step, which would act
        // from the state before this one) is refused, and so is the copy
        // already admitted, whose stream the refusal removes (`refused`).
        let mut refused = std::collections::HashSet::new();
        let mut seen = std::collections::HashSet::new();
        for (i, request) in requests.iter().enumerate() {
            let admission = if !seen.insert(request.stream) {
                Err("the same stream twice in one batch".to_string())
            } else {
                self.admit(request, now)
            };
            match admission {
                Ok(()) => {
                    admitted.push(i);
                    answers.push(None);
                }
                Err(reason) => {
                    refused.insert(request.stream);
                    answers.push(Some(Self::restart(request.stream, reason)));
                }
            }
        }
        admitted.retain(|&i| {
            let stream = requests[i].stream;
            if !refused.contains(&stream) {
                return true;
            }
            self.end_stream(stream);
            let reason = "the same stream twice in one batch".to_string();
            answers[i] = Some(Self::restart(stream, reason));
            false
        });
        if admitted.is_empty() {
            return answers.into_iter().map(|a| a.expect("refused")).collect();
        }

        let batch: Vec<Request> = admitted
            .iter()
            .map(|&i| Request {
                observations: requests[i],
                rows: &self.streams[&requests[i].stream].rows,
            })
            .collect();
        let acted = self.policy.act(&batch, Sampling::Sample);
        unrolls.extend(acted.unrolls);
        for (&i, actions) in admitted.iter().zip(acted.answers) {
            answers[i] = Some(Answer::Actions(Box::new(actions)));
        }
        answers.into_iter().map(|a| a.expect("answered")).collect()
    }
}

/// When each stream was last heard from, written by the receive threads as
/// its requests arrive and by the serve thread as it admits them: a stream
/// whose requests wait in the queue while the serve thread is held up (the
/// batcher full, a slow pass) is not idle.
#[derive(Default)]
pub struct Receipts(Mutex<HashMap<u64, Instant>>);

impl Receipts {
    /// Notes that `stream` was heard from at `at` (the later time is kept).
    pub fn received(&self, stream: u64, at: Instant) {
        let mut seen = self.0.lock().unwrap();
        let last = seen.entry(stream).or_insert(at);
        *last = (*last).max(at);
    }

    fn last(&self, stream: u64) -> Option<Instant> {
        self.0.lock().unwrap().get(&stream).copied()
    }

    fn forget(&self, stream: u64) {
        self.0.lock().unwrap().remove(&stream);
    }

    /// Drops what arrived longer than `timeout` before `now` (requests of
    /// streams refused or never admitted leave an entry behind).
    fn prune(&self, now: Instant, timeout: Duration) {
        self.0.lock().unwrap().retain(|_, &mut at| now.saturating_duration_since(at) <= timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;
    use wire::fixtures;

    fn settings(unroll_length: usize) -> InferenceSettings {
        InferenceSettings {
            max_envs: 1024,
            max_wait: Duration::ZERO,
            idle_timeout: Duration::from_secs(60),
            unroll_length,
            receive_threads: 1,
            seed: 0,
        }
    }

    fn model(cfg: &ModelConfig, seed: i64) -> Model {
        tch::manual_seed(seed);
        Model::new(cfg.clone(), Device::Cpu)
    }

    fn actions_of(answer: &Answer) -> &Actions {
        match answer {
            Answer::Actions(a) => a,
            Answer::Restart(r) => panic!("restart: {}", r.reason),
        }
    }

    /// Central inference in `agent::policy::replay`'s scenario: both groups
    /// as streams served in one batch each step, the new weights taken as
    /// the serve thread takes them. The actors' mode runs the same check
    /// (`agent::policy` tests).
    #[test]
    fn assembled_unrolls_replay_to_the_logits_acted_on() {
        use agent::policy::replay;
        let cfg = ModelConfig::small(3);
        let (first, second) = (model(&cfg, 1), model(&cfg, 2));
        // Another test may seed torch between two models: copy, not re-seed.
        let mut acting = Model::new(cfg.clone(), Device::Cpu);
        acting.vs.copy(&first.vs).unwrap();
        let mut inference = Inference::new(acting, 1, settings(replay::UNROLL_LENGTH));
        replay::check(&cfg, &first, &second, |_, requests, weights| {
            if let Some(w) = weights {
                inference.load_weights(&Snapshot::of(2, w));
            }
            let refs: Vec<&Observations> = requests.iter().collect();
            let mut unrolls = Vec::new();
            let answers = inference.serve(&refs, &mut unrolls);
            (answers.iter().map(|a| actions_of(a).clone()).collect(), unrolls)
        });
    }

    #[test]
    fn streams_start_at_zero_keep_order_and_are_freed_when_quiet() {
        let cfg = ModelConfig::small(3);
        let mut inference = Inference::new(model(&cfg, 1), 1, settings(4));
        let mut unrolls = Vec::new();
        let serve = |inference: &mut Inference, stream, seq, unrolls: &mut Vec<Trajectory>| {
            let o = fixtures::observations(&cfg, 2, stream, seq, &[true, false], seq);
            inference.serve(&[&o], unrolls).pop().unwrap()
        };
        assert!(matches!(serve(&mut inference, 5, 3, &mut unrolls), Answer::Restart(_)));
        assert_eq!(inference.streams(), 0);
        let first = serve(&mut inference, 5, 0, &mut unrolls);
        let maps = actions_of(&first).maps.as_ref().expect("env 0 is recorded");
        assert_eq!(maps.attention.shape[0], 1, "maps of the recorded env only");
        assert!(matches!(serve(&mut inference, 5, 1, &mut unrolls), Answer::Actions(_)));
        assert!(
            matches!(serve(&mut inference, 5, 3, &mut unrolls), Answer::Restart(_)),
            "step 2 skipped"
        );
        assert_eq!(inference.streams(), 0, "the stream ended");
        serve(&mut inference, 6, 0, &mut unrolls);
        serve(&mut inference, 7, 0, &mut unrolls);
        assert_eq!(inference.streams(), 2);
        let capacity = inference.policy.capacity();
        assert_eq!(inference.free_idle(Instant::now() + Duration::from_secs(61)), 2);
        assert_eq!(inference.streams(), 0);
        for stream in 10..12 {
            serve(&mut inference, stream, 0, &mut unrolls);
        }
        assert_eq!(inference.policy.capacity(), capacity, "freed slots are used again");
        assert!(unrolls.is_empty());
    }

    /// The same stream twice in one batch (a duplicate or replayed request):
    /// every copy is told to start over, the stream is gone, nothing panics.
    /// A learner held up for longer than the idle timeout (the batcher full,
    /// a long pass) must not free the streams whose requests wait in its
    /// queue: a stream counts as seen when its request arrives, not when the
    /// serve thread gets to it.
    #[test]
    fn a_stream_whose_request_waits_in_the_queue_is_not_idle() {
        let cfg = ModelConfig::small(3);
        let mut inference = Inference::new(model(&cfg, 1), 1, settings(4));
        let start = Instant::now();
        for stream in [1u64, 2] {
            let o = fixtures::observations(&cfg, 2, stream, 0, &[false, false], 0);
            assert!(matches!(inference.serve(&[&o], &mut Vec::new())[0], Answer::Actions(_)));
        }
        // Stream 1's next request arrives 50 s later and waits; stream 2 says nothing.
        inference.receipts().received(1, start + Duration::from_secs(50));
        assert_eq!(inference.free_idle(start + Duration::from_secs(70)), 1, "stream 2 only");
        assert_eq!(inference.streams(), 1);
        let o = fixtures::observations(&cfg, 2, 1, 1, &[false, false], 1);
        assert!(
            matches!(inference.serve(&[&o], &mut Vec::new())[0], Answer::Actions(_)),
            "the waiting request is served"
        );
        // A receipt for a stream never admitted does not stay forever.
        inference.receipts().received(99, start + Duration::from_secs(50));
        inference.free_idle(start + Duration::from_secs(200));
        assert_eq!(inference.receipts.last(99), None);
    }

    #[test]
    fn a_stream_twice_in_one_batch_is_told_to_start_over() {
        let cfg = ModelConfig::small(3);
        let mut inference = Inference::new(model(&cfg, 1), 1, settings(4));
        let mut unrolls = Vec::new();
        let first = fixtures::observations(&cfg, 2, 5, 0, &[], 1);
        let other = fixtures::observations(&cfg, 1, 6, 0, &[], 2);
        for batch in [vec![&first, &first], vec![&first, &other, &first, &first]] {
            let answers = inference.serve(&batch, &mut unrolls);
            assert_eq!(answers.len(), batch.len());
            for (request, answer) in batch.iter().zip(&answers) {
                match (request.stream, answer) {
                    (5, Answer::Restart(_)) | (6, Answer::Actions(_)) => {}
                    (stream, Answer::Restart(r)) => panic!("stream {stream}: {}", r.reason),
                    (stream, Answer::Actions(_)) => panic!("stream {stream} acted on"),
                }
            }
        }
        assert_eq!(inference.streams(), 1, "only the other stream is held");
    }

    /// Steps k and k+1 of one stream in one batch (an actor that resent, or a
    /// replay) would both act from the state before step k; at the unroll's
    /// turnover the second would need a state never fetched. Whatever k,
    /// around the turnover too: both are told to start over, nothing panics.
    #[test]
    fn consecutive_steps_of_a_stream_in_one_batch_are_told_to_start_over() {
        let cfg = ModelConfig::small(3);
        let t = 4;
        for k in 0..=2 * t as u64 + 1 {
            let mut inference = Inference::new(model(&cfg, 1), 1, settings(t));
            let mut unrolls = Vec::new();
            let step = |seq| fixtures::observations(&cfg, 2, 5, seq, &[], seq);
            for seq in 0..k {
                let answers = inference.serve(&[&step(seq)], &mut unrolls);
                actions_of(&answers[0]);
            }
            let (now, next) = (step(k), step(k + 1));
            let answers = inference.serve(&[&now, &next], &mut unrolls);
            for (seq, answer) in [k, k + 1].iter().zip(&answers) {
                assert!(matches!(answer, Answer::Restart(_)), "k = {k}: step {seq} acted on");
            }
            assert_eq!(inference.streams(), 0, "k = {k}: the stream ended");
        }
    }
}
