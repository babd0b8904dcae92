//! Helpers for the end-to-end tests in `tests/tests/`: they start the real
//! `actor`, `learner` and `recorder` binaries from `target/release`.
//!
//! `scripts/test.sh` builds the binaries before it runs the tests; when you
//! run `cargo test -p tests` by hand, run `cargo build --release --bins` first.

pub mod demo;

use std::path::PathBuf;

pub use testkit::{bin, interrupt, signal, spawn_logged, wait_for, wait_timeout, KillOnDrop};

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
        std::fs::create_dir_all(self.run_dir()).expect("run dir");
        spawn_logged(
            std::process::Command::new(bin(name)).args(args).args([
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
