//! Helpers for the end-to-end tests in `tests/tests/`: they start the real
//! `actor`, `learner` and `recorder` binaries from `target/release`.
//!
//! `scripts/test.sh` builds the binaries before it runs the tests; when you
//! run `cargo test -p tests` by hand, run `cargo build --release --bins` first.

pub mod demo;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use testkit::{
    bin, default_signals, interrupt, python, signal, spawn_logged, wait_for, wait_timeout,
    KillOnDrop,
};

/// One run directory in a temporary folder and the processes started in it.
pub struct TestRun {
    pub dir: tempfile::TempDir,
    pub xpid: String,
}

impl TestRun {
    pub fn new(xpid: &str) -> Self {
        TestRun { dir: tempfile::tempdir().expect("temp dir"), xpid: xpid.to_owned() }
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join(&self.xpid)
    }

    /// `name` with `--runs-root`, `--xpid` and `args`; output to `<run dir>/<log>.log`.
    pub fn spawn(&self, name: &str, log: &str, args: &[&str]) -> KillOnDrop {
        self.spawn_with_env(name, log, args, &[])
    }

    /// [`spawn`](Self::spawn) with variables added to the child's environment.
    pub fn spawn_with_env(
        &self,
        name: &str,
        log: &str,
        args: &[&str],
        vars: &[(&str, &str)],
    ) -> KillOnDrop {
        std::fs::create_dir_all(self.run_dir()).expect("run dir");
        spawn_logged(
            std::process::Command::new(bin(name)).envs(vars.iter().copied()).args(args).args([
                "--runs-root",
                self.dir.path().to_str().unwrap(),
                "--xpid",
                &self.xpid,
            ]),
            &self.run_dir().join(format!("{log}.log")),
        )
    }

    /// The rows of logs.csv as maps from column to value (empty if missing).
    pub fn logs(&self) -> Vec<std::collections::HashMap<String, String>> {
        let Ok(text) = std::fs::read_to_string(self.run_dir().join("logs.csv")) else {
            return Vec::new();
        };
        let mut lines = text.lines();
        let Some(header) = lines.next() else { return Vec::new() };
        let columns: Vec<&str> = header.split(',').collect();
        lines
            .map(|l| {
                columns.iter().map(|c| c.to_string()).zip(l.split(',').map(str::to_owned)).collect()
            })
            .collect()
    }

    /// A log file's contents, for assertion messages.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.run_dir().join(format!("{name}.log"))).unwrap_or_default()
    }
}

/// Waits until `cond` holds, at most `secs`; fails naming `what`, with
/// `context()` (the processes' logs).
pub fn wait_until(
    secs: u64,
    what: &str,
    context: impl Fn() -> String,
    mut cond: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", context());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The run's meta.json.
pub fn meta(run: &TestRun) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(run.run_dir().join("meta.json")).unwrap()).unwrap()
}

/// Ctrl-C to `child` and its exit status; fails, with `log()`, when it has
/// not stopped after 90 s.
pub fn stop(
    child: &mut KillOnDrop,
    what: &str,
    log: impl Fn() -> String,
) -> std::process::ExitStatus {
    interrupt(child);
    let status = wait_timeout(child, Duration::from_secs(90));
    status.unwrap_or_else(|| panic!("{what} did not stop on Ctrl-C\n{}", log()))
}

/// The run's finished checkpoints (`ckpt-<step>`, not a `.tmp-` one being
/// written), by step.
pub fn checkpoints(run: &TestRun) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(run.run_dir().join("checkpoints"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let step = e.file_name().to_str()?.strip_prefix("ckpt-")?.parse().ok()?;
            Some((step, e.path()))
        })
        .collect();
    found.sort();
    found
}
