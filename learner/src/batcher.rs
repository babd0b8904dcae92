//! Receives trajectories, validates them, and stacks B of them into a batch.
//!
//! `--decode-threads` receive threads share the PULL socket. Each message is
//! decoded and checked against the run (run id, protocol version, shapes,
//! action range, finite numbers); a bad one is dropped with a log line and
//! counted per actor and reason ([`TrajectoryCounters`]). Good ones go to the
//! assembler thread over a channel of one per receive thread; once B are there it builds
//! the batch's CPU tensors, time-major `[T+1, B, ...]` (page-locked when the
//! learner runs on CUDA), and hands it to the learner over a channel of at most
//! `--queue-batches`. When the channels are full the threads block, stop
//! reading the socket, NNG's small buffers fill, and the actors' sends wait: a
//! fast actor is slowed, never buffered without end. Memory stays at about
//! `queue_batches + 1` batches plus a message per receive thread and per connection.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tch::{Device, Kind, Tensor};

use agent::model::{AgentState, Unroll};
use wire::config::ModelConfig;
use wire::layout::Field;
use wire::protocol::{Array, Body, DType, ProtocolError, Trajectory, TrajectorySteps};
use wire::transport::Pull;

use crate::receive::{receive_loop, Flow};

/// B unrolls ready for the learner; tensors on the CPU, time-major.
pub struct Batch {
    /// Every per-step field of the trajectories (`wire::layout`), stacked
    /// `[T+1, B, ...]` in the field's dtype, except `done`, which is bool.
    pub steps: TrajectorySteps<Tensor>,
    /// The recurrent state before step 0 of each unroll, batch B.
    pub initial_state: AgentState,
    /// Params version each unroll was acted with.
    pub params_versions: Vec<u64>,
    /// Returns of the episodes that ended inside the batch (see [`episode_ends`]).
    pub episode_returns: Vec<f32>,
    /// Lengths in agent steps of those episodes.
    pub episode_lengths: Vec<i64>,
}

impl Batch {
    /// Every tensor of the batch through `f`, the bookkeeping as it is.
    fn map_tensors(&self, f: impl Fn(&Tensor) -> Tensor) -> Batch {
        Batch {
            steps: self.steps.as_ref().map(|_, t| f(t)),
            initial_state: self.initial_state.map(&f),
            params_versions: self.params_versions.clone(),
            episode_returns: self.episode_returns.clone(),
            episode_lengths: self.episode_lengths.clone(),
        }
    }

    /// The batch on `device`.
    pub fn to_device(&self, device: Device) -> Batch {
        self.map_tensors(|t| t.to_device(device))
    }

    /// The batch in page-locked memory, for a faster copy to `device` (CUDA);
    /// unchanged for the CPU.
    pub fn pinned(self, device: Device) -> Batch {
        if !device.is_cuda() {
            return self;
        }
        self.map_tensors(|t| t.pin_memory(device))
    }

    /// The model's input over all T+1 steps.
    pub fn unroll(&self) -> Unroll {
        Unroll {
            frame: self.steps.frame.shallow_clone(),
            reward: self.steps.reward.shallow_clone(),
            done: self.steps.done.shallow_clone(),
            last_action: self.steps.last_action.shallow_clone(),
        }
    }
}

/// Episodes that ended inside a trajectory, as (return, length).
///
/// Convention (TorchBeast's, documented in the protocol): at a step t with
/// `done[t] = 1` the actor puts the *finished* episode's final return and
/// length in `episode_return[t]` and `episode_step[t]`. Step 0 repeats step T
/// of the previous unroll, so only steps 1..=T count: each episode is counted
/// once.
pub fn episode_ends(done: &[u8], episode_return: &[f32], episode_step: &[i64]) -> Vec<(f32, i64)> {
    (1..done.len())
        .filter(|&t| done[t] == 1)
        .map(|t| (episode_return[t], episode_step[t]))
        .collect()
}

/// The tensor kind of a wire dtype.
fn kind(dtype: DType) -> Kind {
    match dtype {
        DType::U8 => Kind::Uint8,
        DType::I64 => Kind::Int64,
        DType::F32 => Kind::Float,
    }
}

/// One field of B validated trajectories stacked time-major into a fresh
/// CPU tensor `[T+1, B, ...]`: each step of each trajectory is copied once,
/// as bytes (the wire is little-endian, as this host), by up to
/// `copy_threads` threads for the large fields (one range of steps each).
fn stack_time_major(
    field: &Field,
    arrays: &[&Array],
    steps: usize,
    copy_threads: usize,
) -> Result<Tensor, ProtocolError> {
    let first = arrays[0];
    let step_bytes = first.data.len() / steps.max(1);
    if arrays.iter().any(|a| a.shape != first.shape || a.data.len() != steps * step_bytes) {
        return Err(ProtocolError::Invalid(format!(
            "field {}: trajectories of different shapes in one batch",
            field.name
        )));
    }
    let batch = arrays.len();
    let mut shape = vec![steps as i64, batch as i64];
    shape.extend(first.shape[1..].iter().map(|&d| d as i64));
    let tensor = Tensor::empty(shape.as_slice(), (kind(field.dtype), Device::Cpu));
    let total = steps * batch * step_bytes;
    if total == 0 {
        return Ok(tensor);
    }
    // SAFETY: `tensor` is a fresh, contiguous CPU tensor of exactly `total`
    // bytes that nothing else references while this slice lives.
    let dst = unsafe { std::slice::from_raw_parts_mut(tensor.data_ptr() as *mut u8, total) };
    let row_bytes = batch * step_bytes;
    // Threads only pay for themselves on the frames (megabytes per batch).
    let threads = if total >= 1 << 20 { copy_threads.clamp(1, steps) } else { 1 };
    let steps_per_thread = steps.div_ceil(threads);
    std::thread::scope(|scope| {
        for (chunk, out) in dst.chunks_mut(steps_per_thread * row_bytes).enumerate() {
            scope.spawn(move || {
                for (i, row) in out.chunks_mut(row_bytes).enumerate() {
                    let t = chunk * steps_per_thread + i;
                    for (j, array) in arrays.iter().enumerate() {
                        row[j * step_bytes..][..step_bytes]
                            .copy_from_slice(&array.data[t * step_bytes..][..step_bytes]);
                    }
                }
            });
        }
    });
    Ok(tensor)
}

#[cfg(target_endian = "big")]
compile_error!("the batch is built from the wire's little-endian bytes as they are");

/// Stacks validated trajectories (all of unroll length T) into one batch:
/// every per-step field of the layout the same way, the frames (nearly all of
/// the bytes) copied once, straight into the batch tensor.
pub fn build_batch(
    trajectories: &[Trajectory],
    cfg: &ModelConfig,
    copy_threads: usize,
) -> Result<Batch, ProtocolError> {
    let steps = trajectories[0].unroll_length() + 1;
    if trajectories.iter().any(|t| t.unroll_length() + 1 != steps) {
        return Err(ProtocolError::Invalid("trajectories of different lengths".into()));
    }
    // Each field's arrays, one per trajectory, then each field stacked.
    let mut columns = TrajectorySteps::from_fn(|_| Vec::with_capacity(trajectories.len()));
    for t in trajectories {
        for ((_, column), (_, array)) in columns.iter_mut().zip(t.steps().iter()) {
            column.push(*array);
        }
    }
    let mut stacked = columns.try_map(|field, arrays: Vec<&Array>| {
        stack_time_major(field, &arrays, steps, copy_threads)
    })?;
    stacked.done = stacked.done.to_kind(Kind::Bool);

    let mut episode_returns = Vec::new();
    let mut episode_lengths = Vec::new();
    for tr in trajectories {
        let ends = episode_ends(
            &tr.done.data,
            &tr.episode_return.to_f32("episode_return")?,
            &tr.episode_step.to_i64("episode_step")?,
        );
        for (ret, len) in ends {
            episode_returns.push(ret);
            episode_lengths.push(len);
        }
    }
    let states: Vec<_> = trajectories.iter().map(|t| &t.initial_state).collect();
    let initial_state = AgentState::from_protocol(&states, cfg, Device::Cpu)
        .map_err(|e| ProtocolError::Invalid(format!("initial_state: {e}")))?;
    Ok(Batch {
        steps: stacked,
        initial_state,
        params_versions: trajectories.iter().map(|t| t.params_version).collect(),
        episode_returns,
        episode_lengths,
    })
}

/// Per-actor trajectory counts: received (decoded), used (in a batch), and
/// dropped by reason. Messages that cannot be decoded count under no actor.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ActorCounts {
    pub received: u64,
    pub used: u64,
    pub dropped: BTreeMap<&'static str, u64>,
}

#[derive(Default)]
pub struct TrajectoryCounters {
    /// Key: actor id, or None for messages whose sender is unknown.
    per_actor: Mutex<BTreeMap<Option<u32>, ActorCounts>>,
}

impl TrajectoryCounters {
    fn received(&self, actor: u32) {
        self.per_actor.lock().unwrap().entry(Some(actor)).or_default().received += 1;
    }

    fn used(&self, actor: u32) {
        self.per_actor.lock().unwrap().entry(Some(actor)).or_default().used += 1;
    }

    /// Counts a drop; returns how many drops of this reason there were so far (all actors).
    fn dropped(&self, actor: Option<u32>, reason: &'static str) -> u64 {
        let mut map = self.per_actor.lock().unwrap();
        *map.entry(actor).or_default().dropped.entry(reason).or_default() += 1;
        map.values().map(|c| c.dropped.get(reason).copied().unwrap_or(0)).sum()
    }

    pub fn snapshot(&self) -> BTreeMap<Option<u32>, ActorCounts> {
        self.per_actor.lock().unwrap().clone()
    }

    /// Total drops over all actors and reasons.
    pub fn total_dropped(&self) -> u64 {
        self.per_actor.lock().unwrap().values().flat_map(|c| c.dropped.values()).sum()
    }

    /// One line per actor, for the exit report.
    pub fn report(&self) -> String {
        let mut lines = Vec::new();
        for (actor, c) in self.snapshot() {
            let who = actor.map_or("unknown sender".to_string(), |a| format!("actor {a}"));
            let dropped = if c.dropped.is_empty() {
                "none".to_string()
            } else {
                c.dropped.iter().map(|(r, n)| format!("{r} {n}")).collect::<Vec<_>>().join(", ")
            };
            lines.push(format!(
                "{who}: received {}, used {}, dropped: {dropped}",
                c.received, c.used
            ));
        }
        lines.join("\n")
    }
}

/// Short reason names for the counters and logs.
pub fn drop_reason(e: &ProtocolError) -> &'static str {
    match e {
        ProtocolError::Decode(_) => "undecodable",
        ProtocolError::Unauthenticated => "unauthenticated",
        ProtocolError::Replayed => "replayed",
        ProtocolError::Stale { .. } => "stale",
        ProtocolError::RefusedByPeer(_) => "refused_by_peer",
        ProtocolError::Encode(_) => "encode",
        ProtocolError::WrongProtocol { .. } => "wrong_protocol",
        ProtocolError::WrongRun { .. } => "wrong_run",
        ProtocolError::UnexpectedBody { .. } => "unexpected_body",
        ProtocolError::DType { .. }
        | ProtocolError::Shape { .. }
        | ProtocolError::Length { .. } => "bad_shape",
        ProtocolError::ActionOutOfRange { .. } => "action_out_of_range",
        ProtocolError::NonFinite { .. } => "non_finite",
        ProtocolError::Fingerprint { .. } => "fingerprint",
        ProtocolError::Invalid(_) => "invalid",
    }
}

/// The running receive threads and the batch assembler, and what they share.
pub struct Batcher {
    pub counters: Arc<TrajectoryCounters>,
    /// The assembler's input, for unrolls assembled in this process (central inference).
    inlet: SyncSender<Trajectory>,
    /// Trajectories accepted and not yet taken by the learner (pending + queued batches).
    pub queued: Arc<AtomicUsize>,
    pub batches: Receiver<Batch>,
    handles: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

/// Settings of the batcher threads.
pub struct BatcherConfig {
    pub model: ModelConfig,
    pub unroll_length: usize,
    pub batch_size: usize,
    /// Batches ready and waiting for the learner at most (0: none waits; the
    /// next batch is assembled while the learner updates).
    pub queue_batches: usize,
    /// Threads that receive, decode and validate trajectories (they share the
    /// socket); the assembler copies frames with as many.
    pub decode_threads: usize,
    /// The learner's device: batches for CUDA are put in page-locked memory.
    pub device: Device,
}

impl Batcher {
    /// Starts the receive threads, which share `pull`, and the assembler.
    pub fn spawn(pull: Pull, cfg: BatcherConfig) -> Batcher {
        // 0: a rendezvous; the assembler hands a batch over when the learner asks.
        let (batch_tx, batch_rx) = std::sync::mpsc::sync_channel(cfg.queue_batches);
        // Decoded trajectories waiting for the assembler: one per receive thread.
        // More would only add policy lag: the assembler is never the bottleneck.
        let (traj_tx, traj_rx) = std::sync::mpsc::sync_channel(cfg.decode_threads.max(1));
        let counters = Arc::new(TrajectoryCounters::default());
        let queued = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let pull = Arc::new(pull);
        let cfg = Arc::new(cfg);
        let mut handles = Vec::new();
        for i in 0..cfg.decode_threads.max(1) {
            let (pull, cfg, tx) = (pull.clone(), cfg.clone(), traj_tx.clone());
            let (counters, queued, stop) = (counters.clone(), queued.clone(), stop.clone());
            handles.push(
                std::thread::Builder::new()
                    .name(format!("receive-{i}"))
                    .spawn(move || receive(&pull, &cfg, &tx, &counters, &queued, &stop))
                    .expect("spawn receive thread"),
            );
        }
        let inlet = traj_tx;
        {
            let (counters, queued, stop) = (counters.clone(), queued.clone(), stop.clone());
            handles.push(
                std::thread::Builder::new()
                    .name("batcher".into())
                    .spawn(move || assemble(&cfg, traj_rx, batch_tx, &counters, &queued, &stop))
                    .expect("spawn batcher thread"),
            );
        }
        Batcher { counters, queued, inlet, batches: batch_rx, handles, stop }
    }

    /// A way into the batches for unrolls assembled in this process
    /// (central inference): they are counted as received from their actor,
    /// and wait for the assembler as decoded messages do.
    pub fn inlet(&self) -> Inlet {
        Inlet {
            tx: self.inlet.clone(),
            counters: self.counters.clone(),
            queued: self.queued.clone(),
        }
    }

    /// Waits up to `timeout` for the next batch.
    pub fn next(&self, timeout: Duration) -> Option<Batch> {
        let batch = self.batches.recv_timeout(timeout).ok()?;
        self.queued.fetch_sub(batch.params_versions.len(), Ordering::Relaxed);
        Some(batch)
    }
}

/// See [`Batcher::inlet`].
#[derive(Clone)]
pub struct Inlet {
    tx: SyncSender<Trajectory>,
    counters: Arc<TrajectoryCounters>,
    queued: Arc<AtomicUsize>,
}

impl Inlet {
    /// Hands an unroll to the assembler, waiting while it is full (the
    /// learner is behind: back-pressure onto whoever assembles) unless `stop`
    /// is set. False: stopped or the batcher is gone, and the unroll is lost.
    pub fn send(&self, trajectory: Trajectory, stop: &AtomicBool) -> bool {
        self.counters.received(trajectory.actor_id);
        self.queued.fetch_add(1, Ordering::Relaxed);
        let mut item = trajectory;
        loop {
            match self.tx.try_send(item) {
                Ok(()) => return true,
                Err(std::sync::mpsc::TrySendError::Full(back)) => {
                    if stop.load(Ordering::Relaxed) {
                        self.queued.fetch_sub(1, Ordering::Relaxed);
                        return false;
                    }
                    item = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                    self.queued.fetch_sub(1, Ordering::Relaxed);
                    return false;
                }
            }
        }
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        // Every thread notices `stop` within one receive timeout (100 ms).
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            while !h.is_finished() {
                while self.batches.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = h.join();
        }
    }
}

fn drop_log(
    counters: &TrajectoryCounters,
    actor: Option<u32>,
    reason: &'static str,
    e: &dyn std::fmt::Display,
) {
    let n = counters.dropped(actor, reason);
    // Every drop is counted; the log shows the first ten of each reason, then
    // every power of two, so a misconfigured actor cannot flood it.
    if wire::log_throttle::worth_logging(n) {
        let who = actor.map_or("unknown sender".to_string(), |a| format!("actor {a}"));
        tracing::warn!("dropped trajectory from {who} ({reason}, {n} so far): {e}");
    }
}

/// One receive thread: receive, decode, validate, hand over to the assembler.
fn receive(
    pull: &Pull,
    cfg: &BatcherConfig,
    tx: &SyncSender<Trajectory>,
    counters: &TrajectoryCounters,
    queued: &AtomicUsize,
    stop: &AtomicBool,
) {
    receive_loop(
        "trajectory",
        stop,
        |wait| pull.recv(Some(wait)),
        |message| {
            let body = match message {
                Ok(body) => body,
                Err(e) => {
                    drop_log(counters, None, drop_reason(&e), &e);
                    return Flow::Continue;
                }
            };
            let trajectory = match body {
                Body::Trajectory(t) => *t,
                other => {
                    let e = ProtocolError::UnexpectedBody { got: other.kind(), want: "Trajectory" };
                    drop_log(counters, None, drop_reason(&e), &e);
                    return Flow::Continue;
                }
            };
            let actor = trajectory.actor_id;
            counters.received(actor);
            if let Err(e) = trajectory.validate(&cfg.model, cfg.unroll_length) {
                drop_log(counters, Some(actor), drop_reason(&e), &e);
                return Flow::Continue;
            }
            queued.fetch_add(1, Ordering::Relaxed);
            // Blocks while the assembler is full: back-pressure onto the actors.
            match tx.send(trajectory) {
                Ok(()) => Flow::Continue,
                Err(_) => Flow::Stop,
            }
        },
    );
}

/// The assembler: B trajectories into one batch, handed to the learner.
fn assemble(
    cfg: &BatcherConfig,
    rx: Receiver<Trajectory>,
    tx: SyncSender<Batch>,
    counters: &TrajectoryCounters,
    queued: &AtomicUsize,
    stop: &AtomicBool,
) {
    let mut pending: Vec<Trajectory> = Vec::with_capacity(cfg.batch_size);
    while !stop.load(Ordering::Relaxed) {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(t) => pending.push(t),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if pending.len() < cfg.batch_size {
            continue;
        }
        let batch = match build_batch(&pending, &cfg.model, cfg.decode_threads) {
            Ok(batch) => batch.pinned(cfg.device),
            Err(e) => {
                // Validation passed, so this is a bug; drop the batch, keep going.
                for t in pending.drain(..) {
                    drop_log(counters, Some(t.actor_id), "batching", &e);
                }
                queued.fetch_sub(cfg.batch_size, Ordering::Relaxed);
                continue;
            }
        };
        for t in pending.drain(..) {
            counters.used(t.actor_id);
        }
        // Waits while the learner is busy (back-pressure), but not past `stop`.
        let mut batch = Some(batch);
        while let Some(b) = batch.take() {
            match tx.try_send(b) {
                Ok(()) => {}
                Err(std::sync::mpsc::TrySendError::Full(b)) => {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    batch = Some(b);
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use wire::protocol::Array;
    use wire::transport::Push;

    /// Actors faster than the learner are slowed, not buffered: with nobody
    /// taking batches, sends start timing out after a bounded number of
    /// trajectories, and resume once the learner takes a batch.
    #[test]
    fn back_pressure_bounds_what_is_buffered() {
        let dir = tempfile::tempdir().unwrap();
        wire::private::private_dir(dir.path()).unwrap();
        let address = format!("ipc://{}/trajectories", dir.path().display());
        let cfg = ModelConfig::paper(18);
        let (t_len, batch_size) = (5, 2);
        let creds = wire::auth::Credentials::ephemeral("run");
        let pull = Pull::bind(&address, &creds, 64 << 20, false).unwrap();
        let batcher = Batcher::spawn(
            pull,
            BatcherConfig {
                model: cfg.clone(),
                unroll_length: t_len,
                batch_size,
                queue_batches: 1,
                decode_threads: 2,
                device: Device::Cpu,
            },
        );
        let push = Push::dial(&address, &creds).unwrap();
        let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
        let message = Body::Trajectory(Box::new(crate::bench::random_trajectory(
            &cfg, t_len, 1, 0, &mut rng,
        )));
        let timeout = Some(Duration::from_millis(300));
        let mut accepted = 0;
        while accepted < 200 {
            match push.send(&message, timeout) {
                Ok(()) => accepted += 1,
                Err(wire::transport::TransportError::TimedOut) => break,
                Err(e) => panic!("{e}"),
            }
        }
        eprintln!("accepted {accepted} before the first send timed out");
        // 1 batch queued + 1 being assembled + one in the channel and one in
        // hand per receive thread, plus what NNG and the kernel hold (~0.6 MB messages).
        assert!(accepted < 24, "{accepted} trajectories accepted with nobody learning");
        let batch = batcher.next(Duration::from_secs(5)).expect("a batch is ready");
        assert_eq!(
            batch.steps.frame.size(),
            vec![t_len as i64 + 1, batch_size as i64, 210, 160, 3]
        );
        // Taking a batch makes room again.
        push.send(&message, Some(Duration::from_secs(5))).unwrap();
        let counts = batcher.counters.snapshot();
        assert_eq!(counts[&Some(1)].dropped.len(), 0);
    }

    #[test]
    fn bad_trajectories_are_counted_per_actor_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        wire::private::private_dir(dir.path()).unwrap();
        let address = format!("ipc://{}/trajectories", dir.path().display());
        let cfg = ModelConfig::small(3);
        let creds = wire::auth::Credentials::ephemeral("run");
        let pull = Pull::bind(&address, &creds, 64 << 20, false).unwrap();
        let batcher = Batcher::spawn(
            pull,
            BatcherConfig {
                model: cfg.clone(),
                unroll_length: 4,
                batch_size: 2,
                queue_batches: 1,
                decode_threads: 1,
                device: Device::Cpu,
            },
        );
        let push = Push::dial(&address, &creds).unwrap();
        let mut rng = rand_pcg::Pcg64::seed_from_u64(2);
        let mut bad = crate::bench::random_trajectory(&cfg, 4, 7, 0, &mut rng);
        bad.policy_logits = Array::from_f32(vec![5, 3], &[f32::NAN; 15]);
        let good = crate::bench::random_trajectory(&cfg, 4, 8, 0, &mut rng);
        for t in [bad, good.clone(), good] {
            push.send(&Body::Trajectory(Box::new(t)), Some(Duration::from_secs(5))).unwrap();
        }
        let batch = batcher.next(Duration::from_secs(10)).expect("the two good ones batch");
        assert_eq!(batch.params_versions.len(), 2);
        let counts = batcher.counters.snapshot();
        assert_eq!(counts[&Some(7)].received, 1);
        assert_eq!(counts[&Some(7)].dropped.get("non_finite"), Some(&1));
        assert_eq!(counts[&Some(8)].used, 2);
        assert_eq!(batcher.counters.total_dropped(), 1);
    }

    #[test]
    fn episode_ends_count_steps_after_the_first() {
        let done = [1u8, 0, 1, 0, 1];
        let ret = [9.0f32, 1.0, 5.0, 0.0, 2.0];
        let len = [7i64, 1, 3, 0, 2];
        // Step 0 (a repeat of the previous unroll's last step) is not counted.
        assert_eq!(episode_ends(&done, &ret, &len), vec![(5.0, 3), (2.0, 2)]);
    }

    /// Every per-step field of the layout lands at [t, b] as step t of
    /// trajectory b sent it, byte for byte (done's bool is one byte, 0 or 1).
    #[test]
    fn every_field_of_the_batch_is_time_major_and_unchanged() {
        let cfg = ModelConfig::preset(wire::config::Preset::Small, 3);
        let (t_len, batch_size) = (5, 3);
        let trajectories: Vec<Trajectory> = (0..batch_size)
            .map(|seed| wire::fixtures::trajectory(&cfg, t_len, seed as u64 + 1))
            .collect();
        let batch = build_batch(&trajectories, &cfg, 2).unwrap();
        let mut checked = 0;
        for (field, tensor) in batch.steps.iter() {
            let tensor = tensor.contiguous();
            let len = tensor.numel() * tensor.kind().elt_size_in_bytes();
            // SAFETY: a contiguous CPU tensor of `len` bytes, alive for the slice's use.
            let bytes = unsafe { std::slice::from_raw_parts(tensor.data_ptr() as *const u8, len) };
            let step = len / ((t_len + 1) * batch_size);
            assert_eq!(tensor.size()[..2], [t_len as i64 + 1, batch_size as i64], "{}", field.name);
            for (b, tr) in trajectories.iter().enumerate() {
                let sent = *tr.steps().iter().find(|(f, _)| f.name == field.name).unwrap().1;
                for t in 0..=t_len {
                    assert_eq!(
                        &bytes[(t * batch_size + b) * step..][..step],
                        &sent.data[t * step..][..step],
                        "{} at t = {t}, b = {b}",
                        field.name
                    );
                }
            }
            checked += 1;
        }
        assert_eq!(checked, wire::protocol::TRAJECTORY_STEPS.len());
        assert_eq!(batch.steps.done.kind(), Kind::Bool);
    }
}
