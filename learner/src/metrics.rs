//! What the learner tells its user: `logs.csv` (one row per update),
//! `meta.json` (how the run was started, on which host and commit, when it
//! started and ended), and a one-line progress report every few seconds.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

/// Columns of `logs.csv`, in order.
pub const COLUMNS: &[&str] = &[
    "time",
    "step",
    "agent_steps",
    "frames",
    "sps",
    "fps",
    "total_loss",
    "pg_loss",
    "baseline_loss",
    "entropy_loss",
    "mean_episode_return",
    "episodes",
    "episodes_total",
    "policy_lag",
    "queue_size",
    "learning_rate",
    "grad_norm",
];

/// One row of `logs.csv`.
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// Seconds since the Unix epoch.
    pub time: f64,
    /// Updates done, this one included.
    pub step: u64,
    pub agent_steps: u64,
    pub frames: u64,
    /// Agent steps learned per second since the previous row.
    pub sps: f64,
    /// Environment frames learned per second since the previous row.
    pub fps: f64,
    pub total_loss: f64,
    pub pg_loss: f64,
    pub baseline_loss: f64,
    pub entropy_loss: f64,
    /// Mean raw return of the episodes that ended in this batch (NaN: none did).
    pub mean_episode_return: f64,
    /// Episodes that ended in this batch.
    pub episodes: u64,
    pub episodes_total: u64,
    /// Mean over the batch of (learner version - version the actor used).
    pub policy_lag: f64,
    /// Trajectories received and waiting for an update when this one started.
    pub queue_size: usize,
    /// The learning rate this update used.
    pub learning_rate: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
}

fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        String::new()
    }
}

impl Row {
    /// The row's fields as `logs.csv` writes them, in [`COLUMNS`] order
    /// (empty where a value is undefined).
    pub fn fields(&self) -> [String; COLUMNS.len()] {
        [
            format!("{:.3}", self.time),
            self.step.to_string(),
            self.agent_steps.to_string(),
            self.frames.to_string(),
            format!("{:.1}", self.sps),
            format!("{:.1}", self.fps),
            num(self.total_loss),
            num(self.pg_loss),
            num(self.baseline_loss),
            num(self.entropy_loss),
            num(self.mean_episode_return),
            self.episodes.to_string(),
            self.episodes_total.to_string(),
            format!("{:.2}", self.policy_lag),
            self.queue_size.to_string(),
            num(self.learning_rate),
            num(self.grad_norm),
        ]
    }

    fn csv(&self) -> String {
        self.fields().join(",")
    }
}

/// Appends rows to `logs.csv`, writing the header when the file is new.
/// Every row is flushed, so `tail -f` and plotting scripts see it at once.
pub struct CsvLog {
    out: BufWriter<File>,
    path: PathBuf,
}

impl CsvLog {
    pub fn open(path: &Path) -> Result<Self> {
        let header = COLUMNS.join(",");
        let existing = std::fs::read_to_string(path).ok();
        let fresh = existing.as_deref().unwrap_or("").is_empty();
        if let Some(first) = existing.as_deref().and_then(|s| s.lines().next()) {
            if !fresh && first != header {
                // Another layout (older build): keep it aside rather than mix columns.
                let aside = path.with_extension(format!("csv.{}", unix_seconds() as u64));
                std::fs::rename(path, &aside)
                    .with_context(|| format!("moving {} aside", path.display()))?;
                tracing::warn!(
                    "{} had other columns; moved to {}",
                    path.display(),
                    aside.display()
                );
                return Self::open(path);
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut out = BufWriter::new(file);
        if fresh {
            writeln!(out, "{header}")?;
            out.flush()?;
        }
        Ok(CsvLog { out, path: path.to_path_buf() })
    }

    pub fn write(&mut self, row: &Row) -> Result<()> {
        writeln!(self.out, "{}", row.csv())
            .and_then(|_| self.out.flush())
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// On `--resume` from a checkpoint at `step`: rows of `logs.csv` with a
/// higher step came from updates after that checkpoint, lost when the learner
/// died (`kill -9`, node failure). They are moved to
/// `logs.csv.lost-after-step-<step>` so that the step column of `logs.csv`
/// never goes backwards and nothing is deleted. Returns how many rows moved.
pub fn set_aside_rows_after(path: &Path, step: u64) -> Result<usize> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            tracing::warn!(
                "cannot read {} to set aside rows after step {step}: {e}",
                path.display()
            );
            return Ok(0);
        }
    };
    let mut lines = text.lines();
    let Some(header) = lines.next() else { return Ok(0) };
    let Some(column) = header.split(',').position(|c| c == "step") else { return Ok(0) };
    let (mut keep, mut lost) = (vec![header], vec![header]);
    for line in lines {
        let row_step = line.split(',').nth(column).and_then(|v| v.parse::<u64>().ok());
        if row_step.is_some_and(|s| s > step) {
            lost.push(line);
        } else {
            keep.push(line);
        }
    }
    let moved = lost.len() - 1;
    if moved == 0 {
        return Ok(0);
    }
    let aside = path.with_extension(format!("csv.lost-after-step-{step}"));
    std::fs::write(&aside, lost.join("\n") + "\n")
        .with_context(|| format!("writing {}", aside.display()))?;
    let tmp = path.with_extension("csv.tmp");
    std::fs::write(&tmp, keep.join("\n") + "\n")
        .and_then(|_| std::fs::rename(&tmp, path))
        .with_context(|| format!("rewriting {}", path.display()))?;
    tracing::warn!(
        "{moved} rows of {} are of updates after the checkpoint at step {step} (lost with the \
         previous session); moved to {}",
        path.display(),
        aside.display()
    );
    Ok(moved)
}

/// CPU seconds (user + system) this process has used, all threads together,
/// from `/proc/self/stat` (Linux; None elsewhere). Unlike wall time it does not
/// grow when other processes share the cores, which makes it the fairer
/// figure for "what does the loop cost" on a shared machine.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces, inside parentheses).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux configuration we build for.
    Some(ticks / 100.0)
}

pub fn unix_seconds() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_timestamp(unix: f64) -> String {
    let secs = unix as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The git commit of the checkout the binary was started from, if any.
fn git_commit() -> Option<String> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        dirs.extend(exe.parent().map(Path::to_path_buf));
    }
    dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dirs.push(PathBuf::from("."));
    for dir in dirs {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(["rev-parse", "HEAD"])
            .stderr(std::process::Stdio::null())
            .output();
        if let Ok(out) = out {
            if out.status.success() {
                let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
                let dirty = std::process::Command::new("git")
                    .arg("-C")
                    .arg(&dir)
                    .args(["status", "--porcelain", "--untracked-files=no"])
                    .output()
                    .map(|o| !o.stdout.is_empty())
                    .unwrap_or(false);
                return Some(if dirty { format!("{commit}-dirty") } else { commit });
            }
        }
    }
    None
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// `meta.json`: written at start, rewritten with the end time at exit. A
/// resumed run keeps the earlier sessions under `previous_sessions`.
pub struct Meta {
    path: PathBuf,
    value: serde_json::Value,
}

impl Meta {
    pub fn start(
        path: &Path,
        config: serde_json::Value,
        resumed_from: Option<&Path>,
    ) -> Result<Self> {
        let now = unix_seconds();
        let slurm: serde_json::Map<String, serde_json::Value> = std::env::vars()
            .filter(|(k, _)| k.starts_with("SLURM_"))
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        let mut previous: Vec<serde_json::Value> = Vec::new();
        if resumed_from.is_some() {
            if let Ok(old) = std::fs::read(path)
                .map_err(anyhow::Error::from)
                .and_then(|b| Ok(serde_json::from_slice::<serde_json::Value>(&b)?))
            {
                let mut old = old;
                if let Some(p) = old.get_mut("previous_sessions").map(serde_json::Value::take) {
                    previous.extend(p.as_array().cloned().unwrap_or_default());
                }
                if let Some(o) = old.as_object_mut() {
                    o.remove("previous_sessions");
                }
                previous.push(old);
            }
        }
        let value = serde_json::json!({
            "command": std::env::args().collect::<Vec<_>>(),
            "cwd": std::env::current_dir().ok(),
            "config": config,
            "git_commit": git_commit(),
            "host": hostname(),
            "pid": std::process::id(),
            "slurm": slurm,
            "start": utc_timestamp(now),
            "start_unix": now,
            "end": null,
            "end_unix": null,
            "end_reason": null,
            "resumed_from": resumed_from,
            "previous_sessions": previous,
        });
        let meta = Meta { path: path.to_path_buf(), value };
        meta.write()?;
        Ok(meta)
    }

    pub fn set(&mut self, key: &str, value: serde_json::Value) {
        self.value[key] = value;
    }

    pub fn finish(&mut self, reason: wire::rundir::EndReason) -> Result<()> {
        let now = unix_seconds();
        self.value["end"] = utc_timestamp(now).into();
        self.value["end_unix"] = now.into();
        self.value["end_reason"] = serde_json::to_value(reason)?;
        self.write()
    }

    fn write(&self) -> Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&self.value)?)
            .and_then(|_| std::fs::rename(&tmp, &self.path))
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// Rate over a sliding window of the last updates: (time, agent steps, frames).
pub struct Throughput {
    window: std::collections::VecDeque<(Instant, u64, u64)>,
    span: Duration,
}

impl Throughput {
    pub fn new(span: Duration) -> Self {
        Throughput { window: Default::default(), span }
    }

    /// Records the totals now and returns (agent steps/s, frames/s) over the window.
    pub fn record(&mut self, agent_steps: u64, frames: u64) -> (f64, f64) {
        let now = Instant::now();
        self.window.push_back((now, agent_steps, frames));
        while self.window.len() > 2 && now - self.window[1].0 > self.span {
            self.window.pop_front();
        }
        let (t0, s0, f0) = self.window[0];
        let dt = (now - t0).as_secs_f64();
        if self.window.len() < 2 || dt <= 0.0 {
            return (f64::NAN, f64::NAN);
        }
        ((agent_steps - s0) as f64 / dt, (frames - f0) as f64 / dt)
    }
}

/// Emits the progress line at most every `every`.
pub struct Progress {
    every: Duration,
    last: Instant,
    returns: Vec<f32>,
}

impl Progress {
    pub fn new(every: Duration) -> Self {
        Progress { every, last: Instant::now(), returns: Vec::new() }
    }

    /// Collects episode returns between reports.
    pub fn episodes(&mut self, returns: &[f32]) {
        self.returns.extend_from_slice(returns);
    }

    pub fn maybe_report(&mut self, row: &Row, dropped: u64) {
        if self.last.elapsed() < self.every {
            return;
        }
        self.last = Instant::now();
        let ret = if self.returns.is_empty() {
            "return -".to_string()
        } else {
            let mean =
                self.returns.iter().map(|&r| f64::from(r)).sum::<f64>() / self.returns.len() as f64;
            format!("return {mean:.2} ({} eps)", self.returns.len())
        };
        self.returns.clear();
        tracing::info!(
            "step {} frames {} sps {:.0} loss {:.3} (pg {:.3} baseline {:.3} entropy {:.3}) {ret} lag {:.1} queue {} lr {:.2e} dropped {dropped}",
            row.step,
            row.frames,
            row.sps,
            row.total_loss,
            row.pg_loss,
            row.baseline_loss,
            row.entropy_loss,
            row.policy_lag,
            row.queue_size,
            row.learning_rate,
        );
    }

    /// A line while no batch arrives, so a stalled run says so.
    pub fn maybe_report_waiting(&mut self, queue: usize, received: u64) {
        if self.last.elapsed() < self.every {
            return;
        }
        self.last = Instant::now();
        tracing::info!("waiting for trajectories: {queue} queued, {received} received so far");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_timestamps() {
        assert_eq!(utc_timestamp(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_700_000_000.0), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn csv_appends_under_one_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.csv");
        for step in 1..=2 {
            let mut log = CsvLog::open(&path).unwrap();
            log.write(&Row { step, mean_episode_return: f64::NAN, ..Default::default() }).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], COLUMNS.join(","));
        assert_eq!(lines[2].split(',').count(), COLUMNS.len());
        assert_eq!(lines[2].split(',').nth(1), Some("2"));
    }
}
