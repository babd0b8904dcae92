//! Central inference (docs/architecture.md, Central inference): the learner
//! runs the actors' model on its own device, as SEED RL does.
//!
//! Actors send each step of a group of environments ([`Observations`]) and
//! get the actions back ([`Actions`]). Here:
//!
//! - receive threads (`--decode-threads` of them) decode and check requests, dropping and counting bad
//!   ones ([`InferenceCounters`]);
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

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use agent::model::Model;
use agent::policy::{BatchedPolicy, Request, Row, Sampling, UnrollStore};
use wire::config::ModelConfig;
use wire::protocol::{Actions, Body, Observations, ProtocolError, Restart, Trajectory};
use wire::transport::{InferenceServer, ReplyTo, TransportError};

use crate::batcher::{drop_reason, Inlet};
use crate::params_service::Snapshot;

/// How the serve thread batches and when it frees streams.
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
    last_seen: Instant,
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
    cfg: ModelConfig,
    settings: InferenceSettings,
    streams: HashMap<u64, Stream>,
    /// When each stream's newest request arrived (the receive threads write it).
    receipts: Arc<Receipts>,
}

impl Inference {
    /// `model` is the inference copy (on the learner's device, in its precision).
    pub fn new(model: Model, version: u64, settings: InferenceSettings) -> Self {
        let cfg = model.cfg.clone();
        let store = UnrollStore::new(settings.unroll_length);
        Inference {
            policy: BatchedPolicy::new(model, version, Some(store), settings.seed),
            cfg,
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
            .filter(|(&id, s)| {
                let last = self.receipts.last(id).map_or(s.last_seen, |r| r.max(s.last_seen));
                now.saturating_duration_since(last) > timeout
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
                stream.last_seen = now;
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
                    Stream { actor_id: request.actor_id, rows, next_seq: 1, last_seen: now },
                );
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

/// What central inference did, for logs and meta.json.
#[derive(Default)]
pub struct InferenceCounters {
    pub requests: AtomicU64,
    pub env_steps: AtomicU64,
    pub passes: AtomicU64,
    pub restarts: AtomicU64,
    pub unrolls: AtomicU64,
    /// Microseconds the serve thread spent in passes (its busy time).
    pub busy_us: AtomicU64,
    /// Requests refused, by reason.
    pub dropped: Mutex<BTreeMap<&'static str, u64>>,
}

impl InferenceCounters {
    fn drop_request(&self, reason: &'static str, e: &dyn std::fmt::Display) {
        let n = {
            let mut map = self.dropped.lock().unwrap();
            let n = map.entry(reason).or_default();
            *n += 1;
            *n
        };
        if wire::log_throttle::worth_logging(n) {
            tracing::warn!("central inference: dropped a request ({reason}, {n} so far): {e}");
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "requests": get(&self.requests),
            "env_steps": get(&self.env_steps),
            "passes": get(&self.passes),
            "restarts": get(&self.restarts),
            "unrolls": get(&self.unrolls),
            "busy_s": get(&self.busy_us) as f64 * 1e-6,
            "dropped": *self.dropped.lock().unwrap(),
        })
    }
}

/// The newest weights for the serve thread: the training loop publishes, the
/// serve thread takes. [`take`](WeightsSlot::take) returns the snapshot with
/// the lock already released, so copying the weights in never blocks the
/// next publish (a guard in an `if let` would live through the copy).
#[derive(Default)]
pub struct WeightsSlot(Mutex<Option<Snapshot>>);

impl WeightsSlot {
    pub fn publish(&self, snapshot: Snapshot) {
        *self.0.lock().unwrap() = Some(snapshot);
    }

    /// The snapshot published since the last take, if any.
    pub fn take(&self) -> Option<Snapshot> {
        self.0.lock().unwrap().take()
    }
}

/// When each stream's newest request arrived, written by the receive
/// threads: a stream whose requests wait in the queue while the serve thread
/// is held up (the batcher full, a slow pass) is not idle.
#[derive(Default)]
pub struct Receipts(Mutex<HashMap<u64, Instant>>);

impl Receipts {
    pub fn received(&self, stream: u64, at: Instant) {
        self.0.lock().unwrap().insert(stream, at);
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

/// The running receive and serve threads.
pub struct InferenceService {
    pub counters: Arc<InferenceCounters>,
    weights: Arc<WeightsSlot>,
    /// Why a thread of the service died, if one did.
    failure: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

/// Set to `serve` in a learner's environment, the serve thread panics at its
/// first pass: how the tests check that a dead serve thread stops the learner.
pub const FAILPOINT_ENV: &str = "LEARNER_FAILPOINT";

/// Runs `body` as a thread of the service; a panic is recorded in `failure`
/// (the first one wins) for the training loop to find.
fn guarded(name: &str, failure: &Mutex<Option<String>>, body: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".to_string());
        let reason = format!("central inference: the {name} thread died: {what}");
        tracing::error!("{reason}");
        failure.lock().unwrap().get_or_insert(reason);
    }
}

impl InferenceService {
    /// Starts serving on `server` with `model` (the inference copy, already
    /// holding the weights of `version`); finished unrolls go to `inlet`.
    pub fn spawn(
        server: InferenceServer,
        model: Model,
        version: u64,
        settings: InferenceSettings,
        inlet: Inlet,
    ) -> Self {
        let counters = Arc::new(InferenceCounters::default());
        let weights = Arc::new(WeightsSlot::default());
        let failure = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let inference = Inference::new(model, version, settings.clone());
        let receipts = inference.receipts();
        let cfg = inference.cfg.clone();
        // Requests waiting for a pass: enough for every stream of a large run.
        let (tx, rx) = std::sync::mpsc::sync_channel(4096);
        let server = Arc::new(server);
        let mut handles = Vec::new();
        for i in 0..settings.receive_threads.max(1) {
            let (server, counters, stop) = (server.clone(), counters.clone(), stop.clone());
            let (cfg, tx, receipts, failure) =
                (cfg.clone(), tx.clone(), receipts.clone(), failure.clone());
            handles.push(
                std::thread::Builder::new()
                    .name(format!("inference-receive-{i}"))
                    .spawn(move || {
                        guarded("receive", &failure, || {
                            receive(&server, &cfg, &tx, &receipts, &counters, &stop)
                        })
                    })
                    .expect("spawn inference receive thread"),
            );
        }
        drop(tx);
        {
            let (counters, stop, weights) = (counters.clone(), stop.clone(), weights.clone());
            let failure = failure.clone();
            let fail_at_first_pass = std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == "serve");
            handles.push(
                std::thread::Builder::new()
                    .name("inference".into())
                    .spawn(move || {
                        guarded("serve", &failure, || {
                            let serving = Serving { server: &server, rx, inlet: &inlet };
                            serve(
                                inference,
                                serving,
                                &weights,
                                &counters,
                                &stop,
                                fail_at_first_pass,
                            )
                        })
                    })
                    .expect("spawn inference thread"),
            );
        }
        InferenceService { counters, weights, failure, stop, handles }
    }

    /// Hands the serve thread the weights of a version (the snapshot the
    /// params service publishes too: [`Snapshot::share`], no second copy).
    pub fn publish(&self, snapshot: Snapshot) {
        self.weights.publish(snapshot);
    }

    /// Why the service stopped serving, once one of its threads died: the
    /// learner then ends the run (`EndReason::Failed`) instead of waiting
    /// for unrolls that will never come.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap().clone()
    }
}

impl Drop for InferenceService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Receive thread: decode, check, queue for the serve thread.
fn receive(
    server: &InferenceServer,
    cfg: &ModelConfig,
    tx: &SyncSender<(ReplyTo, Observations)>,
    receipts: &Receipts,
    counters: &InferenceCounters,
    stop: &AtomicBool,
) {
    let mut last_error_log = Instant::now() - Duration::from_secs(60);
    while !stop.load(Ordering::Relaxed) {
        let (to, body) = match server.recv(Some(Duration::from_millis(100))) {
            Ok(None) => continue,
            Ok(Some(Ok(request))) => request,
            // Nothing that cannot be read is answered: its sender times out.
            Ok(Some(Err(e))) => {
                counters.drop_request(drop_reason(&e), &e);
                continue;
            }
            Err(TransportError::Closed) => break,
            Err(e) => {
                if last_error_log.elapsed() > Duration::from_secs(10) {
                    tracing::error!("inference socket: {e}");
                    last_error_log = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let refuse = |stream: u64, e: ProtocolError| {
            counters.drop_request(drop_reason(&e), &e);
            let answer = Restart { stream, reason: format!("request refused: {e}") };
            let _ = server.reply(&to, &Body::Restart(answer));
        };
        let observations = match body {
            Body::Observations(o) => *o,
            other => {
                refuse(
                    0,
                    ProtocolError::UnexpectedBody { got: other.kind(), want: "Observations" },
                );
                continue;
            }
        };
        if let Err(e) = observations.validate(cfg) {
            refuse(observations.stream, e);
            continue;
        }
        receipts.received(observations.stream, Instant::now());
        if tx.send((to, observations)).is_err() {
            break;
        }
    }
}

/// The next batch of requests: the one held back last time or the first to
/// come (waiting at most 100 ms), then whatever comes within `max_wait`
/// while the batch stays within `max_envs` environments. A request that
/// would take it past the limit is held for the next batch (one larger than
/// the limit on its own is a batch alone).
fn next_batch<T>(
    rx: &Receiver<T>,
    held: &mut Option<T>,
    max_envs: usize,
    max_wait: Duration,
    envs_of: impl Fn(&T) -> usize,
) -> Result<Vec<T>, std::sync::mpsc::RecvTimeoutError> {
    let first = match held.take() {
        Some(first) => first,
        None => rx.recv_timeout(Duration::from_millis(100))?,
    };
    let mut envs = envs_of(&first);
    let mut batch = vec![first];
    let deadline = Instant::now() + max_wait;
    while envs < max_envs {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = if left.is_zero() { rx.try_recv().ok() } else { rx.recv_timeout(left).ok() };
        let Some(next) = next else { break };
        if envs + envs_of(&next) > max_envs {
            *held = Some(next);
            break;
        }
        envs += envs_of(&next);
        batch.push(next);
    }
    Ok(batch)
}

/// Where the serve thread's requests come from and its answers and unrolls go.
struct Serving<'a> {
    server: &'a InferenceServer,
    rx: Receiver<(ReplyTo, Observations)>,
    inlet: &'a Inlet,
}

/// Serve thread: batch, pass, answer, hand over unrolls, free idle streams.
fn serve(
    mut inference: Inference,
    Serving { server, rx, inlet }: Serving,
    weights: &WeightsSlot,
    counters: &InferenceCounters,
    stop: &AtomicBool,
    fail_at_first_pass: bool,
) {
    let (max_envs, max_wait) = (inference.settings.max_envs.max(1), inference.settings.max_wait);
    let mut last_sweep = Instant::now();
    let mut last_report = Instant::now();
    let mut report = (0u64, 0u64, Duration::ZERO); // passes, env steps, busy since last report
    let mut unrolls = Vec::new();
    let mut held = None;
    while !stop.load(Ordering::Relaxed) {
        if last_sweep.elapsed() > Duration::from_secs(1) {
            inference.free_idle(Instant::now());
            last_sweep = Instant::now();
        }
        let batch = match next_batch(&rx, &mut held, max_envs, max_wait, |(_, o)| o.envs()) {
            Ok(batch) => batch,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let envs: usize = batch.iter().map(|(_, o)| o.envs()).sum();
        if let Some(snapshot) = weights.take() {
            inference.load_weights(&snapshot);
        }
        assert!(!fail_at_first_pass, "{FAILPOINT_ENV}=serve: failing at the first pass");
        let started = Instant::now();
        let requests: Vec<&Observations> = batch.iter().map(|(_, o)| o).collect();
        let answers = inference.serve(&requests, &mut unrolls);
        for ((to, _), answer) in batch.iter().zip(answers) {
            if matches!(answer, Answer::Restart(_)) {
                counters.restarts.fetch_add(1, Ordering::Relaxed);
            }
            if let Err(e) = server.reply(to, &answer.into_body()) {
                tracing::warn!("central inference: answer not sent: {e}");
            }
        }
        let busy = started.elapsed();
        counters.passes.fetch_add(1, Ordering::Relaxed);
        counters.env_steps.fetch_add(envs as u64, Ordering::Relaxed);
        counters.busy_us.fetch_add(busy.as_micros() as u64, Ordering::Relaxed);
        report = (report.0 + 1, report.1 + envs as u64, report.2 + busy);
        for trajectory in unrolls.drain(..) {
            counters.unrolls.fetch_add(1, Ordering::Relaxed);
            if !inlet.send(trajectory, stop) {
                break;
            }
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            let seconds = last_report.elapsed().as_secs_f64();
            tracing::info!(
                "central inference: {:.0} env steps/s, {:.1} environments per pass, busy {:.0}%, {} streams, params version {}",
                report.1 as f64 / seconds,
                report.1 as f64 / report.0.max(1) as f64,
                100.0 * report.2.as_secs_f64() / seconds,
                inference.streams(),
                inference.version()
            );
            report = (0, 0, Duration::ZERO);
            last_report = Instant::now();
        }
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

    /// The serve thread takes the newest weights with `if let Some(s) =
    /// weights.take()` and copies them in inside that block: the lock must
    /// already be free there, or the next publish waits for the copy (here,
    /// on one thread, it would never return).
    #[test]
    fn publishing_weights_never_waits_for_the_copy_of_the_last_ones() {
        let cfg = ModelConfig::small(3);
        let m = model(&cfg, 1);
        let slot = Arc::new(WeightsSlot::default());
        slot.publish(Snapshot::of(1, &m));
        let (done, finished) = std::sync::mpsc::channel();
        let (slot2, m2) = (slot.clone(), Snapshot::of(2, &m));
        std::thread::spawn(move || {
            if let Some(snapshot) = slot2.take() {
                // Where the serve thread copies `snapshot` in: a publish now.
                slot2.publish(m2);
                let _ = done.send(snapshot.version);
            }
        });
        let taken = finished.recv_timeout(Duration::from_secs(10));
        assert_eq!(taken, Ok(1), "publish blocked while the last weights were taken");
        assert_eq!(slot.take().map(|s| s.version), Some(2));
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

    /// A batch never goes past `--inference-batch` environments: the request
    /// that would cross it waits for the next batch, first in line; one
    /// larger than the limit is served alone; nothing is lost or reordered.
    #[test]
    fn a_batch_stays_within_its_environments_and_holds_the_request_that_would_cross() {
        let (tx, rx) = std::sync::mpsc::channel();
        for envs in [3, 4, 2, 9, 1, 1] {
            tx.send(envs).unwrap();
        }
        let mut held = None;
        let mut batches = Vec::new();
        while let Ok(batch) = next_batch(&rx, &mut held, 8, Duration::ZERO, |&e| e) {
            batches.push(batch);
        }
        assert_eq!(batches, [vec![3, 4], vec![2], vec![9], vec![1, 1]]);
        assert!(held.is_none());
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
