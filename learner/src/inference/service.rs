//! Central inference's threads: receive threads that decode and check
//! requests, and the serve thread that batches them, runs [`Inference`]'s
//! pass, answers, and hands the unrolls to the batcher; with the slot the
//! training loop publishes weights through and the counts for `meta.json`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use agent::model::Model;
use wire::config::ModelConfig;
use wire::protocol::{Body, Observations, ProtocolError, Restart};
use wire::transport::{InferenceServer, ReplyTo};

use super::{Answer, Inference, InferenceSettings, Receipts};
use crate::batcher::{drop_reason, Inlet};
use crate::params_service::Snapshot;
use crate::receive::{receive_loop, Flow};

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
        let cfg = inference.cfg().clone();
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
    receive_loop(
        "inference",
        stop,
        |wait| server.recv(Some(wait)),
        |message| {
            let (to, body) = match message {
                Ok(request) => request,
                // One that cannot be opened was answered with the refusal
                // (`InferenceServer::recv`); one that cannot be decoded too.
                Err(e) => {
                    counters.drop_request(drop_reason(&e), &e);
                    return Flow::Continue;
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
                    return Flow::Continue;
                }
            };
            if let Err(e) = observations.validate(cfg) {
                refuse(observations.stream, e);
                return Flow::Continue;
            }
            receipts.received(observations.stream, Instant::now());
            match tx.send((to, observations)) {
                Ok(()) => Flow::Continue,
                Err(_) => Flow::Stop,
            }
        },
    );
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
    use wire::config::ModelConfig;

    fn model(cfg: &ModelConfig, seed: i64) -> Model {
        tch::manual_seed(seed);
        Model::new(cfg.clone(), Device::Cpu)
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
}
