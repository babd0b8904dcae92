//! The params service: a thread that owns the REP socket and answers every
//! `ParamsRequest` with the newest weights, or with `UpToDate` when the asker
//! already holds that version.
//!
//! After each update the learner [`publish`](ParamsService::publish)es a
//! snapshot of the weights: a copy on the learner's device, which costs the
//! training loop one device-to-device copy and nothing else. The thread turns
//! a snapshot into safetensors bytes (via a CPU replica of the model, so the
//! bytes are exactly `Model::to_safetensors`'s) and encodes the `Params`
//! message once per version, the first time someone asks for that version,
//! then answers any number of actors with the same bytes; versions nobody asks
//! for are never serialized. An actor holding any other version (older, or
//! newer after a learner restarted from an older checkpoint) gets the current
//! weights.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tch::{Device, Tensor};

use agent::model::Model;
use wire::config::ModelConfig;
use wire::protocol::{Body, Params, ProtocolError, UpToDate};
use wire::transport::ParamsServer;

use crate::batcher::drop_reason;
use crate::receive::{receive_loop, Flow};

/// The weights of one version: (var-store name, tensor on the learner's device).
pub struct Snapshot {
    pub version: u64,
    pub tensors: Vec<(String, Tensor)>,
}

impl Snapshot {
    /// Copies of `model`'s variables on its device, detached from the graph:
    /// the weights of `version`, taken once per update.
    pub fn of(version: u64, model: &Model) -> Self {
        let tensors = tch::no_grad(|| {
            model.vs.variables().into_iter().map(|(n, t)| (n, t.detach().copy())).collect()
        });
        Snapshot { version, tensors }
    }

    /// A second handle on each tensor, no copy: for another thread that
    /// reads the same weights (nobody writes a snapshot).
    pub fn share(&self) -> Self {
        let tensors = self.tensors.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
        Snapshot { version: self.version, tensors }
    }

    /// Copies the weights into the variables of the same names of `model`
    /// (a replica of the same architecture).
    pub fn copy_into(&self, model: &Model) -> anyhow::Result<()> {
        let vars = model.vs.variables();
        tch::no_grad(|| {
            for (name, t) in &self.tensors {
                let mut var = vars
                    .get(name)
                    .ok_or_else(|| anyhow::anyhow!("variable {name} missing in the replica"))?
                    .shallow_clone();
                var.copy_(t);
            }
            Ok(())
        })
    }
}

/// Counts of the answers given.
#[derive(Default)]
pub struct ParamsStats {
    pub requests: AtomicU64,
    pub params_sent: AtomicU64,
    pub up_to_date_sent: AtomicU64,
    pub refused: AtomicU64,
    /// Refused requests by reason (`crate::batcher::drop_reason`'s names).
    refused_by: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    /// Versions serialized and encoded (once each).
    pub encodes: AtomicU64,
}

impl ParamsStats {
    /// Refused requests by reason, for meta.json.
    pub fn refused_by_reason(&self) -> serde_json::Value {
        let by = self.refused_by.lock().unwrap();
        by.iter().map(|(reason, n)| (reason.to_string(), serde_json::Value::from(*n))).collect()
    }

    fn refuse(&self, reason: &'static str) -> u64 {
        *self.refused_by.lock().unwrap().entry(reason).or_default() += 1;
        self.refused.fetch_add(1, Ordering::Relaxed) + 1
    }
}

pub struct ParamsService {
    latest: Arc<Mutex<Snapshot>>,
    pub stats: Arc<ParamsStats>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl ParamsService {
    /// Starts answering on `server` with `model`'s current weights as `version`.
    pub fn spawn(server: ParamsServer, model: &Model, version: u64) -> Self {
        let latest = Arc::new(Mutex::new(Snapshot::of(version, model)));
        let cfg = model.cfg.clone();
        let stats = Arc::new(ParamsStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (latest, stats, stop) = (latest.clone(), stats.clone(), stop.clone());
            std::thread::Builder::new()
                .name("params".into())
                .spawn(move || serve(server, cfg, &latest, &stats, &stop))
                .expect("spawn params thread")
        };
        ParamsService { latest, stats, stop, handle: Some(handle) }
    }

    /// Makes `snapshot` the newest version (serialization happens in the
    /// params thread when asked).
    pub fn publish(&self, snapshot: Snapshot) {
        *self.latest.lock().unwrap() = snapshot;
    }
}

impl Drop for ParamsService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Safetensors bytes of a snapshot, through the CPU replica `served`.
fn serialize(served: &mut Model, snapshot: &Snapshot) -> anyhow::Result<Vec<u8>> {
    snapshot.copy_into(served)?;
    Ok(served.to_safetensors()?)
}

/// The `Params` message of the newest snapshot, encoded.
fn encode_newest(
    server: &ParamsServer,
    served: &mut Model,
    latest: &Mutex<Snapshot>,
) -> anyhow::Result<(u64, Vec<u8>)> {
    // Handles to the snapshot's tensors, so the lock is not held while copying.
    let snapshot = latest.lock().unwrap().share();
    let version = snapshot.version;
    let weights = serialize(served, &snapshot)?;
    let params = Params { version, fingerprint: served.cfg.fingerprint(), weights };
    Ok((version, server.encode(&Body::Params(params))?))
}

fn serve(
    server: ParamsServer,
    cfg: ModelConfig,
    latest: &Mutex<Snapshot>,
    stats: &ParamsStats,
    stop: &AtomicBool,
) {
    // A CPU replica whose weights are overwritten with each snapshot served,
    // so the bytes are exactly what `Model::to_safetensors` writes.
    let mut served = Model::new(cfg, Device::Cpu);
    // (version, encoded Params message) of the last version someone asked for.
    let mut encoded: Option<(u64, Vec<u8>)> = None;
    receive_loop(
        "params",
        stop,
        |wait| server.recv(Some(wait)),
        |request| {
            stats.requests.fetch_add(1, Ordering::Relaxed);
            let version = latest.lock().unwrap().version;
            let up_to_date = Body::UpToDate(UpToDate { version });
            let sent = match request {
                Ok(Body::ParamsRequest(req)) if req.version == version => {
                    stats.up_to_date_sent.fetch_add(1, Ordering::Relaxed);
                    server.reply(&up_to_date)
                }
                Ok(Body::ParamsRequest(_)) => {
                    if encoded.as_ref().map(|(v, _)| *v) != Some(version) {
                        encoded = match encode_newest(&server, &mut served, latest) {
                            Ok(message) => {
                                stats.encodes.fetch_add(1, Ordering::Relaxed);
                                Some(message)
                            }
                            Err(e) => {
                                tracing::error!("cannot encode params version {version}: {e:#}");
                                None
                            }
                        };
                    }
                    match &encoded {
                        Some((_, bytes)) => {
                            stats.params_sent.fetch_add(1, Ordering::Relaxed);
                            server.reply_encoded(bytes)
                        }
                        None => server.reply(&up_to_date),
                    }
                }
                other => {
                    // REP must answer before its next receive: with the refusal,
                    // which holds nothing; the asker (if it is ours) asks again.
                    let why = match other {
                        Err(e) => e,
                        Ok(b) => {
                            ProtocolError::UnexpectedBody { got: b.kind(), want: "ParamsRequest" }
                        }
                    };
                    let n = stats.refuse(drop_reason(&why));
                    if wire::log_throttle::worth_logging(n) {
                        tracing::warn!("refused params request ({n} so far): {why}");
                    }
                    server.refuse(&why)
                }
            };
            if let Err(e) = sent {
                tracing::warn!("cannot answer a params request: {e}");
            }
            Flow::Continue
        },
    );
}
