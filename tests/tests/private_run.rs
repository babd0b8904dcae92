//! A run's files are its user's alone whatever the umask (docs/reliability.md,
//! Threat model): a learner started under umask 000 and 002 leaves a run
//! directory whose directories are 0700 and whose files (key, endpoints,
//! meta.json, logs.csv, the checkpoint's files, socket files) no one else may
//! read or write; and an ipc address in a directory others may enter is
//! refused with what to fix.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tests::{bin, interrupt, wait_timeout, wait_until};

const LEARNER: [&str; 14] = [
    "--preset",
    "small",
    "--game",
    "catch",
    "--unroll-length",
    "20",
    "--batch-size",
    "4",
    "--threads",
    "1",
    "--device",
    "cpu",
    "--precision",
    "fp32",
];

fn learner(root: &Path, xpid: &str, umask: u32, extra: &[&str]) -> Command {
    let mut command = Command::new(bin("learner"));
    command.args(LEARNER).args(extra).arg("--runs-root").arg(root).args(["--xpid", xpid]);
    tests::default_signals(&mut command);
    // SAFETY: umask(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(move || {
            libc::umask(umask as libc::mode_t);
            Ok(())
        });
    }
    command
}

/// Every entry under `dir` that others may read, write or enter.
fn open_to_others(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.mode() & 0o077 != 0 {
            out.push(format!("{} {:o}", path.display(), meta.mode() & 0o777));
        }
        if meta.is_dir() {
            open_to_others(&path, out);
        }
    }
}

#[test]
fn the_run_directory_is_private_under_any_umask() {
    for umask in [0o000, 0o002] {
        let root = tempfile::tempdir().unwrap();
        // The runs root is the user's to choose; only the run is ours to close.
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let log = root.path().join("learner.log");
        let mut child = testkit::spawn_logged(&mut learner(root.path(), "p", umask, &[]), &log);
        let run = root.path().join("p");
        let context = || std::fs::read_to_string(&log).unwrap_or_default();
        wait_until(120, "the learner's endpoints", context, || {
            run.join("endpoints.json").exists() && run.join("meta.json").exists()
        });
        let mut open = Vec::new();
        open_to_others(&run, &mut open);
        interrupt(&child);
        let status = wait_timeout(&mut child, Duration::from_secs(60)).expect("the learner stops");
        assert!(status.success(), "{}", context());
        open_to_others(&run, &mut open);
        assert!(
            run.join("run.key").exists() && run.join("checkpoints").read_dir().unwrap().count() > 0
        );
        assert!(open.is_empty(), "umask {umask:03o}: open to others: {open:?}\n{}", context());
        assert_eq!(std::fs::metadata(&run).unwrap().mode() & 0o777, 0o700);
    }
}

#[test]
fn an_ipc_address_in_a_directory_others_may_enter_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let shared = root.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let address = format!("ipc://{}/trajectories", shared.display());
    let out = learner(root.path(), "q", 0o022, &["--trajectories-address", &address])
        .output()
        .expect("run the learner");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "bound in an open directory:\n{stderr}");
    assert!(stderr.contains("755") && stderr.contains("chmod 700"), "{stderr}");
    assert!(!shared.join("trajectories").exists(), "a socket file was made:\n{stderr}");
}
