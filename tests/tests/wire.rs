//! A paper-sized trajectory crosses a process boundary over `ipc://` and
//! arrives identical. The test binary runs itself a second time as the sender.

use std::process::Command;
use std::time::Duration;

use wire::auth::Credentials;
use wire::config::ModelConfig;
use wire::fixtures;
use wire::protocol::Body;
use wire::rundir::RunDir;
use wire::transport::{Pull, Push, DEFAULT_MAX_MESSAGE_BYTES};

const RUN: &str = "wire-test";
const T: usize = 50;
const SEED: u64 = 42;

fn credentials(runs_root: &std::path::Path) -> Credentials {
    Credentials::of(&RunDir::new(runs_root, RUN).unwrap()).unwrap()
}

#[test]
fn paper_sized_trajectory_crosses_processes_identical() {
    if let Ok(address) = std::env::var("AAA_WIRE_SEND_TO") {
        // Child: send the trajectory and wait until it is taken.
        let root = std::env::var("AAA_WIRE_RUNS_ROOT").unwrap();
        let push = Push::dial(&address, &credentials(std::path::Path::new(&root))).unwrap();
        let trajectory = fixtures::trajectory(&ModelConfig::paper(18), T, SEED);
        push.send(&Body::Trajectory(Box::new(trajectory)), Some(Duration::from_secs(30))).unwrap();
        std::thread::sleep(Duration::from_millis(500)); // let NNG flush before exit
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    wire::private::private_dir(dir.path()).unwrap();
    let address = format!("ipc://{}/trajectories", dir.path().display());
    // Both processes read the run's key from the same run directory.
    let pull =
        Pull::bind(&address, &credentials(dir.path()), DEFAULT_MAX_MESSAGE_BYTES, false).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "paper_sized_trajectory_crosses_processes_identical", "--nocapture"])
        .env("AAA_WIRE_SEND_TO", &address)
        .env("AAA_WIRE_RUNS_ROOT", dir.path())
        .spawn()
        .unwrap();
    let received =
        pull.recv(Some(Duration::from_secs(60))).unwrap().expect("nothing arrived in 60 s");
    assert!(child.wait().unwrap().success());
    let cfg = ModelConfig::paper(18);
    let expected = fixtures::trajectory(&cfg, T, SEED);
    match received.unwrap() {
        Body::Trajectory(t) => {
            t.validate(&cfg, T).unwrap();
            assert_eq!(t.frame.data.len(), (T + 1) * 210 * 160 * 3);
            assert!(*t == expected, "trajectory changed in transit");
        }
        other => panic!("expected a Trajectory, got {}", other.kind()),
    }
}
