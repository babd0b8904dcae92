//! Helpers for the end-to-end tests in `tests/tests/`: they start the real
//! `actor`, `learner` and `recorder` binaries from `target/release`.
//!
//! `scripts/test.sh` builds the binaries before it runs the tests; when you
//! run `cargo test -p tests` by hand, run `cargo build --release --bins` first.

pub mod demo;

use std::path::PathBuf;
use std::process::Child;

/// Path of a workspace binary next to the running test executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the binaries first (cargo build --release --bins; scripts/test.sh does it)",
        path.display()
    );
    path
}

/// A child process killed (and reaped) when the test ends, pass or fail.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

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
        let out = std::fs::File::create(self.run_dir().join(format!("{log}.log"))).expect("log");
        let err = out.try_clone().expect("log");
        let child = std::process::Command::new(bin(name))
            .args(args)
            .args(["--runs-root", self.dir.path().to_str().unwrap(), "--xpid", &self.xpid])
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        KillOnDrop(child)
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

/// Sends SIGINT (what Ctrl-C sends) to a child.
pub fn interrupt(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Waits up to `timeout` for a child to exit.
pub fn wait_timeout(
    child: &mut Child,
    timeout: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}
