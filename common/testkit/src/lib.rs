//! What the tests across processes share, in every crate that has them
//! (`tests/`, `recorder/tests/`, `learner/tests/`): finding the workspace's
//! binaries, a child process that is killed when the test ends, signals, and
//! bounded waits that fail with what the process logged.
//!
//! It depends on nothing of the workspace, so the recorder's tests use it
//! without libtorch. Fixtures of messages live in `wire::fixtures`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Path of a workspace binary next to the running test executable
/// (`target/<profile>/deps/<test>` -> `target/<profile>/<name>`), for tests
/// outside the binary's own crate (inside it, use `env!("CARGO_BIN_EXE_<name>")`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the binaries first (cargo build --release --bins; scripts/test.sh does it)",
        path.display()
    );
    path
}

/// The workspace's Python (`.venv`, set up by scripts/bootstrap.sh), for the
/// tests that compare against PyTorch, h5py or TensorBoard, or run a script.
pub fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `. scripts/bootstrap.sh` in the workspace root first",
        python.display()
    );
    python
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

/// Makes `command`'s process start with the default action for SIGINT and
/// SIGQUIT, whatever this process has.
///
/// A shell started without job control (`nohup scripts/test.sh &`, a script's
/// `cmd &`) starts its background commands with SIGINT and SIGQUIT ignored,
/// and an ignored signal stays ignored across `exec`: cargo, the test
/// binaries and every child they start would inherit it, and a test that
/// stops a child with SIGINT (as Ctrl-C would) would wait in vain. The
/// processes under test are what a user starts from a terminal, where these
/// signals have their default action; so the tests start them that way.
pub fn default_signals(command: &mut Command) -> &mut Command {
    // SAFETY: between fork and exec only async-signal-safe calls are allowed;
    // signal(2) is one, and the closure touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            for sig in [libc::SIGINT, libc::SIGQUIT] {
                if libc::signal(sig, libc::SIG_DFL) == libc::SIG_ERR {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        })
    }
}

/// Starts `command` with stdout and stderr in the file `log` (created anew)
/// and the default signal dispositions ([`default_signals`]), killed when the
/// returned value drops.
pub fn spawn_logged(command: &mut Command, log: &Path) -> KillOnDrop {
    let out = std::fs::File::create(log)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
    let err = out.try_clone().expect("log file");
    let child = default_signals(command)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", command.get_program()));
    KillOnDrop(child)
}

/// Sends signal `sig` (`INT`, `TERM`, `KILL`, ...) to a child.
pub fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{sig} {} failed", child.id());
}

/// Sends SIGINT (what Ctrl-C sends) to a child.
pub fn interrupt(child: &Child) {
    signal(child, "INT");
}

/// Waits up to `timeout` for a child to exit.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `cond` holds, at most `secs`; fails naming `what`.
pub fn wait_for(secs: f64, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed().as_secs_f64() < secs, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test, not two: it sets this process's SIGINT disposition, which
    /// tests running beside it in other threads would share.
    #[test]
    fn a_child_is_interrupted_waited_for_and_killed_on_drop() {
        let dir = std::env::temp_dir().join(format!("testkit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("sleep.log");
        // As under `nohup scripts/test.sh &`: this process ignores SIGINT,
        // and the child must still stop on it.
        // SAFETY: setting a disposition; no handler runs.
        let before = unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
        let mut child = spawn_logged(Command::new("sleep").arg("30"), &log);
        unsafe { libc::signal(libc::SIGINT, before) };
        assert_eq!(wait_timeout(&mut child, Duration::from_millis(200)), None, "still sleeping");
        interrupt(&child);
        let status = wait_timeout(&mut child, Duration::from_secs(10))
            .expect("exits on SIGINT, though this process ignored it when it started the child");
        assert!(!status.success());
        let pid = {
            let other = spawn_logged(Command::new("sleep").arg("30"), &log);
            other.id()
        };
        // Dropped: killed and reaped, so the pid is gone.
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "pid {pid} still alive");
        let mut n = 0;
        wait_for(5.0, "a counter", || {
            n += 1;
            n == 3
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
