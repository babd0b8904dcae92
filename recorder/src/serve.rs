//! `recorder serve`: binds the episode PULL socket and feeds the [`Writer`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tracing::{info, warn};
use wire::args::RunArgs;
use wire::config::ModelConfig;
use wire::protocol::Body;
use wire::rundir::Endpoints;
use wire::transport::{Pull, TransportError, DEFAULT_MAX_MESSAGE_BYTES};

use crate::tensorboard::RecorderBoard;
use crate::writer::{Outcome, Writer, WriterOptions};

#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Address to bind for episode chunks (default: ipc://<run dir>/sock/episodes).
    #[arg(long)]
    pub episodes_address: Option<String>,
    /// Allow binding a non-loopback tcp address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Number of actions A. Default: the model config in the run's meta.json,
    /// else learned from the first chunk.
    #[arg(long)]
    pub num_actions: Option<usize>,
    /// Close the open segment file (making its episodes readable) this many
    /// seconds after the first episode went into it.
    #[arg(long, default_value_t = 30.0)]
    pub rotate_seconds: f64,
    /// gzip level (0-9) of every dataset; 0 stores raw.
    #[arg(long, default_value_t = 1)]
    pub deflate: u8,
    /// Close an episode as incomplete when no chunk of it arrived for this long.
    #[arg(long, default_value_t = 600.0)]
    pub episode_timeout_seconds: f64,
    /// Threads that compress chunks (default: the cores, at most 8).
    #[arg(long)]
    pub compress_threads: Option<usize>,
    /// Largest accepted message in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
    /// Seconds between progress log lines.
    #[arg(long, default_value_t = 30.0)]
    pub log_seconds: f64,
    /// Write TensorBoard events to `<run dir>/tb/recorder/` (each recorded
    /// episode's return, and pictures of the attention): `true` or `false`.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub tensorboard: bool,
    /// A TensorBoard picture of one step (the frame and each head's map) every
    /// N-th recorded episode (0: none).
    #[arg(long, default_value_t = 10)]
    pub tensorboard_picture_every: u64,
}

/// Finds a model config in the learner's meta.json: any object with the
/// fields of a [`ModelConfig`].
pub fn model_config_from_meta(path: &std::path::Path) -> Option<ModelConfig> {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    fn find(v: &serde_json::Value) -> Option<ModelConfig> {
        match v {
            serde_json::Value::Object(map) => {
                if map.contains_key("heads") && map.contains_key("num_actions") {
                    if let Ok(cfg) = serde_json::from_value::<ModelConfig>(v.clone()) {
                        return Some(cfg);
                    }
                }
                map.values().find_map(find)
            }
            serde_json::Value::Array(items) => items.iter().find_map(find),
            _ => None,
        }
    }
    find(&json)
}

pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(8)
}

pub fn env_json(run: &RunArgs) -> serde_json::Value {
    serde_json::json!({
        "game": run.game,
        "preset": run.preset.to_string(),
        "full_action_set": run.full_action_set,
        "unroll_length": run.unroll_length,
        "seed": run.seed,
    })
}

pub fn serve(args: ServeArgs) -> Result<()> {
    // The run's files and sockets are this user's alone, whatever the umask.
    wire::private::restrict_umask();
    let run_dir = args.run.run_dir().map_err(anyhow::Error::msg)?;
    run_dir.create().with_context(|| format!("create {}", run_dir.root().display()))?;
    let meta_config = if args.num_actions.is_none() {
        model_config_from_meta(&run_dir.meta_json())
    } else {
        None
    };
    if let Some(cfg) = &meta_config {
        info!(num_actions = cfg.num_actions, "model config from {}", run_dir.meta_json().display());
    }
    let mut writer = Writer::new(writer_options(&args, &run_dir, meta_config))?;
    let address = args.episodes_address.clone().unwrap_or_else(|| run_dir.ipc("episodes"));
    // On tcp nothing sealed before this recorder started is taken: a replay
    // of an earlier session's episodes is refused.
    let creds =
        wire::auth::Credentials::of(&run_dir)?.refusing_sealed_before(std::time::SystemTime::now());
    let pull = Pull::bind(&address, &creds, args.max_message_bytes, args.allow_remote)
        .with_context(|| format!("bind the episode socket {address}"))?;
    Endpoints::merge_into(
        &run_dir.endpoints(),
        &Endpoints { episodes: Some(address.clone()), ..Default::default() },
    )
    .with_context(|| format!("write {}", run_dir.endpoints().display()))?;
    info!(address = %address, run = run_dir.xpid(), "recorder listening");

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("install the Ctrl-C handler")?;
    }
    let mut board = args
        .tensorboard
        .then(|| RecorderBoard::new(run_dir.root(), args.tensorboard_picture_every));
    let started = Instant::now();
    let mut last_log = Instant::now();
    let mut logged = writer.stats.clone();
    while !stop.load(Ordering::SeqCst) {
        match pull.recv(Some(Duration::from_millis(200))) {
            Ok(None) => {}
            Ok(Some(message)) => take(&mut writer, &mut board, message),
            Err(TransportError::Closed) => break,
            Err(e) => return Err(e).context("receive episode chunks"),
        }
        writer.tick()?;
        let since = last_log.elapsed().as_secs_f64();
        if since >= args.log_seconds {
            let s = &writer.stats;
            info!(
                open = writer.open_episodes(),
                episodes = s.episodes,
                steps = s.steps,
                steps_per_s = format!("{:.0}", (s.steps - logged.steps) as f64 / since),
                frame_mb_per_s =
                    format!("{:.1}", (s.frame_bytes - logged.frame_bytes) as f64 / since / 1e6),
                dropped = s.dropped,
                "recorder progress"
            );
            logged = s.clone();
            last_log = Instant::now();
        }
    }
    info!("stopping: closing open episodes as incomplete");
    if let Some(Err(e)) = board.as_mut().map(RecorderBoard::flush) {
        warn!("{e:#}");
    }
    let stats = writer.shutdown()?;
    info!(
        episodes = stats.episodes,
        incomplete = stats.incomplete,
        steps = stats.steps,
        dropped = stats.dropped,
        segments = stats.segments,
        seconds = format!("{:.0}", started.elapsed().as_secs_f64()),
        "recorder stopped"
    );
    Ok(())
}

/// How the writer is set up: files, compression, timeouts, and the model's
/// shapes from the learner's meta.json when it has them.
fn writer_options(
    args: &ServeArgs,
    run_dir: &wire::rundir::RunDir,
    meta_config: Option<ModelConfig>,
) -> WriterOptions {
    WriterOptions {
        run_dir: PathBuf::from(run_dir.root()),
        run_id: run_dir.xpid().to_owned(),
        model: args.run.model_choice(),
        model_config: meta_config,
        num_actions: args.num_actions,
        env: env_json(&args.run),
        rotate_every: Duration::from_secs_f64(args.rotate_seconds.max(0.0)),
        deflate: args.deflate.min(9),
        episode_timeout: Duration::from_secs_f64(args.episode_timeout_seconds.max(1.0)),
        compress_threads: args.compress_threads.unwrap_or_else(default_threads),
    }
}

/// One received message: an episode chunk goes to the writer (and a
/// finished episode to TensorBoard); anything else is dropped and counted.
fn take(
    writer: &mut Writer,
    board: &mut Option<RecorderBoard>,
    message: Result<Body, wire::protocol::ProtocolError>,
) {
    match message {
        Err(e) => {
            writer.stats.dropped += 1;
            warn!(dropped = writer.stats.dropped, "dropped message: {e}");
        }
        Ok(Body::EpisodeChunk(chunk)) => match writer.accept(&chunk) {
            Ok(Outcome::Appended) => {}
            Ok(Outcome::Finished(s)) => {
                info!(
                    uid = %s.uid, steps = s.steps, episode_return = s.episode_return, complete = s.complete,
                    end = s.end_reason,
                    "episode recorded"
                );
                if let Some(Err(e)) = board.as_mut().map(|b| b.episode(&s, &chunk)) {
                    warn!("TensorBoard stops for this session, recording goes on: {e:#}");
                    *board = None;
                }
            }
            Ok(Outcome::Dropped(why)) => warn!(dropped = writer.stats.dropped, "dropped {why}"),
            Err(e) => warn!("cannot write chunk {} of {}: {e:#}", chunk.sequence, chunk.uid),
        },
        Ok(other) => {
            writer.stats.dropped += 1;
            warn!(
                dropped = writer.stats.dropped,
                "dropped a {} message: expected EpisodeChunk",
                other.kind()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_config_is_found_anywhere_in_meta_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.json");
        let cfg = ModelConfig::small(5);
        let meta =
            serde_json::json!({"command": ["learner"], "config": {"model": cfg, "lr": 6e-4}});
        std::fs::write(&path, serde_json::to_vec(&meta).unwrap()).unwrap();
        assert_eq!(model_config_from_meta(&path), Some(cfg));
        std::fs::write(&path, b"{\"config\": {}}").unwrap();
        assert_eq!(model_config_from_meta(&path), None);
        assert_eq!(model_config_from_meta(&dir.path().join("missing.json")), None);
    }
}
