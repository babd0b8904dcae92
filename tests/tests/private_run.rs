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

/// Connects to the unix socket at `path` from a child process running as
/// `uid`: 0 when it connected, else the connect's errno. The child does only
/// async-signal-safe calls (the socket address is built before the fork).
fn connect_as(uid: u32, path: &Path) -> i32 {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: plain C structs and calls; the child only calls setgroups,
    // setgid, setuid, socket, connect and _exit.
    unsafe {
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        assert!(bytes.len() < addr.sun_path.len(), "socket path too long: {}", path.display());
        for (d, &b) in addr.sun_path.iter_mut().zip(bytes) {
            *d = b as libc::c_char;
        }
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(uid) != 0
                || libc::setuid(uid) != 0
            {
                libc::_exit(255);
            }
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            let r = libc::connect(fd, &addr as *const _ as *const libc::sockaddr, len);
            libc::_exit(if r == 0 { 0 } else { *libc::__errno_location() });
        }
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        libc::WEXITSTATUS(status)
    }
}

/// On ipc the operating system keeps other users out (messages there carry
/// no tag): a process of another user cannot even connect to a running
/// learner's sockets, while one of the run's user can.
#[test]
fn another_user_cannot_connect_to_the_runs_ipc_sockets() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        wire::fixtures::skip_test(
            "another_user_cannot_connect_to_the_runs_ipc_sockets",
            "acting as another user needs root",
        );
        return;
    }
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = root.path().join("learner.log");
    let mut child = tests::spawn_logged(&mut learner(root.path(), "u", 0o022, &[]), &log);
    let run = root.path().join("u");
    let context = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until(120, "the learner's endpoints", context, || run.join("endpoints.json").exists());
    let socket = run.join("sock").join("trajectories");
    assert_eq!(connect_as(0, &socket), 0, "the run's own user connects\n{}", context());
    let nobody = 65534;
    assert_eq!(connect_as(nobody, &socket), libc::EACCES, "another user\n{}", context());
    interrupt(&child);
    let status = wait_timeout(&mut child, Duration::from_secs(60)).expect("the learner stops");
    assert!(status.success(), "{}", context());
}
