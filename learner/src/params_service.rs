//! The params service: a thread that owns the REP socket and answers every
//! `ParamsRequest` with the newest weights, or with `UpToDate` when the asker
//! already holds that version.
//!
//! The learner [`publish`](ParamsService::publish)es the safetensors bytes of
//! each new version; the thread encodes the `Params` message once per version,
//! the first time someone asks for it, and answers any number of actors with
//! the same bytes. An actor holding any other version (older, or newer after a
//! learner restarted from an older checkpoint) gets the current weights.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::protocol::{Body, Params, UpToDate};
use common::transport::{ParamsServer, TransportError};

struct Published {
    version: u64,
    weights: Arc<Vec<u8>>,
}

/// Counts of the answers given.
#[derive(Default)]
pub struct ParamsStats {
    pub requests: AtomicU64,
    pub params_sent: AtomicU64,
    pub up_to_date_sent: AtomicU64,
    pub refused: AtomicU64,
    /// Versions encoded (once each).
    pub encodes: AtomicU64,
}

pub struct ParamsService {
    latest: Arc<Mutex<Arc<Published>>>,
    pub stats: Arc<ParamsStats>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl ParamsService {
    /// Starts answering on `server` with `weights` as version `version`.
    pub fn spawn(
        server: ParamsServer,
        fingerprint: String,
        version: u64,
        weights: Vec<u8>,
    ) -> Self {
        let latest =
            Arc::new(Mutex::new(Arc::new(Published { version, weights: Arc::new(weights) })));
        let stats = Arc::new(ParamsStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (latest, stats, stop) = (latest.clone(), stats.clone(), stop.clone());
            std::thread::Builder::new()
                .name("params".into())
                .spawn(move || serve(server, fingerprint, &latest, &stats, &stop))
                .expect("spawn params thread")
        };
        ParamsService { latest, stats, stop, handle: Some(handle) }
    }

    /// Makes `weights` the newest version.
    pub fn publish(&self, version: u64, weights: Vec<u8>) {
        *self.latest.lock().unwrap() = Arc::new(Published { version, weights: Arc::new(weights) });
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

fn serve(
    server: ParamsServer,
    fingerprint: String,
    latest: &Mutex<Arc<Published>>,
    stats: &ParamsStats,
    stop: &AtomicBool,
) {
    // (version, encoded Params message) of the last version someone asked for.
    let mut encoded: Option<(u64, Vec<u8>)> = None;
    let mut last_error_log = Instant::now() - Duration::from_secs(60);
    while !stop.load(Ordering::Relaxed) {
        let request = match server.recv(Some(Duration::from_millis(100))) {
            Ok(None) => continue,
            Ok(Some(r)) => r,
            Err(TransportError::Closed) => break,
            Err(e) => {
                if last_error_log.elapsed() > Duration::from_secs(10) {
                    tracing::error!("params socket: {e}");
                    last_error_log = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let current = latest.lock().unwrap().clone();
        let up_to_date = Body::UpToDate(UpToDate { version: current.version });
        let sent = match request {
            Ok(Body::ParamsRequest(req)) if req.version == current.version => {
                stats.up_to_date_sent.fetch_add(1, Ordering::Relaxed);
                server.reply(&up_to_date)
            }
            Ok(Body::ParamsRequest(_)) => {
                if encoded.as_ref().map(|(v, _)| *v) != Some(current.version) {
                    let body = Body::Params(Params {
                        version: current.version,
                        fingerprint: fingerprint.clone(),
                        weights: current.weights.as_ref().clone(),
                    });
                    encoded = match server.encode(&body) {
                        Ok(bytes) => {
                            stats.encodes.fetch_add(1, Ordering::Relaxed);
                            Some((current.version, bytes))
                        }
                        Err(e) => {
                            tracing::error!(
                                "cannot encode params version {}: {e}",
                                current.version
                            );
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
                // REP must answer before its next receive: say which version is
                // current; the asker (if it is ours) asks again.
                let n = stats.refused.fetch_add(1, Ordering::Relaxed) + 1;
                if n <= 10 || n.is_power_of_two() {
                    match other {
                        Err(e) => tracing::warn!("refused params request ({n} so far): {e}"),
                        Ok(b) => tracing::warn!(
                            "refused {} on the params socket ({n} so far): expected ParamsRequest",
                            b.kind()
                        ),
                    }
                }
                server.reply(&up_to_date)
            }
        };
        if let Err(e) = sent {
            tracing::warn!("cannot answer a params request: {e}");
        }
    }
}
