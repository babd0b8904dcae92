//! Central inference with the real processes (docs/architecture.md, Central
//! inference), on the CPU: a learner serving inference keeps training while
//! an actor is killed with `kill -9` and another joins; malformed requests
//! are dropped and counted; an actor whose stream the learner does not know
//! is told to start over; Ctrl-C stops every process cleanly.

use std::time::Duration;

use tests::{checkpoints, interrupt, meta, signal, stop, wait_timeout, wait_until, TestRun};
use wire::auth::Credentials;
use wire::config::ModelConfig;
use wire::fixtures;
use wire::protocol::{Body, Refusal};
use wire::rundir::{Endpoints, RunDir};
use wire::transport::{InferenceClient, TransportError};

const SMALL: [&str; 6] = ["--preset", "small", "--game", "catch", "--unroll-length", "20"];

fn learner_args() -> Vec<&'static str> {
    let mut a = SMALL.to_vec();
    a.extend(["--batch-size", "4", "--threads", "1", "--device", "cpu", "--precision", "fp32"]);
    a.extend(["--total-frames", "1e9", "--log-interval-s", "1", "--inference", "central"]);
    // A killed actor's streams are freed after 3 s (the default is 60).
    a.extend(["--inference-idle-s", "3"]);
    a
}

fn actor_args(id: &'static str) -> Vec<&'static str> {
    let mut a = SMALL.to_vec();
    a.extend(["--actor-id", id, "--num-envs", "2", "--groups", "2", "--record-every", "0"]);
    // auto: the actor follows the learner. Its precision is stated: with
    // --inference auto an actor resolves it before it knows the mode.
    a.extend(["--inference", "auto", "--precision", "fp32"]);
    a
}

fn last_step(run: &TestRun) -> u64 {
    run.logs().iter().filter_map(|r| r.get("step")?.parse().ok()).max().unwrap_or(0)
}

#[test]
fn central_inference_survives_actors_coming_and_going_and_bad_requests() {
    let run = TestRun::new("central");
    let context = || {
        format!(
            "{}\n--- actor 0\n{}\n--- actor 1\n{}",
            run.log("learner"),
            run.log("actor-0"),
            run.log("actor-1")
        )
    };
    let mut learner = run.spawn("learner", "learner", &learner_args());
    let mut actor0 = run.spawn("actor", "actor-0", &actor_args("0"));
    wait_until(300, "5 updates with actor 0", context, || last_step(&run) >= 5);
    assert!(
        run.log("actor-0").contains("inference on the learner"),
        "--inference auto follows the learner\n{}",
        run.log("actor-0")
    );

    // Malformed requests: bytes that are no message (answered with the
    // one-byte refusal; on ipc nothing is sealed, the operating system keeps
    // strangers out), and a request of the wrong shape (answered with
    // Restart); then a request on a stream the learner does not know, past
    // step 0.
    let run_dir = RunDir::new(run.dir.path(), &run.xpid).unwrap();
    let address =
        Endpoints::read(&run_dir.endpoints()).unwrap().inference.expect("inference address");
    let raw = nng::Socket::new(nng::Protocol::Req0).unwrap();
    nng::options::Options::set_opt::<nng::options::RecvTimeout>(
        &raw,
        Some(Duration::from_millis(500)),
    )
    .unwrap();
    raw.dial(&address).unwrap();
    raw.send(nng::Message::from(&b"not a request"[..])).unwrap();
    let refusal = raw.recv().expect("an answer");
    assert_eq!(refusal.as_slice(), [Refusal::Invalid as u8], "the refusal, holding nothing else");
    let creds = Credentials::of(&run_dir).unwrap();
    let client = InferenceClient::dial(&address, &creds, 1 << 24).unwrap();
    let cfg = ModelConfig::small(3);
    let mut bad = fixtures::observations(&cfg, 2, 77, 0, &[], 1);
    bad.frame.shape[1] += 1;
    let timeout = Duration::from_secs(30);
    client.send(&Body::Observations(Box::new(bad)), timeout).unwrap();
    match client.recv(timeout).unwrap() {
        Ok(Body::Restart(r)) => assert!(r.reason.contains("frame"), "{}", r.reason),
        other => panic!("a malformed request: {other:?}"),
    }
    let unknown = fixtures::observations(&cfg, 2, 78, 9, &[], 1);
    client.send(&Body::Observations(Box::new(unknown)), timeout).unwrap();
    match client.recv(timeout).unwrap() {
        Ok(Body::Restart(r)) => assert!(r.reason.contains("unknown"), "{}", r.reason),
        other => panic!("an unknown stream: {other:?}"),
    }
    let good = fixtures::observations(&cfg, 2, 79, 0, &[true, false], 1);
    client.send(&Body::Observations(Box::new(good.clone())), timeout).unwrap();
    match client.recv(timeout).unwrap() {
        Ok(Body::Actions(a)) => a.validate(&cfg, &good).unwrap(),
        other => panic!("a good request: {other:?}"),
    }
    assert!(matches!(client.recv(Duration::from_millis(200)), Err(TransportError::TimedOut)));

    // Actor 0 dies; actor 1 joins; the learner goes on training on actor 1's steps.
    signal(&actor0, "KILL");
    let _ = wait_timeout(&mut actor0, Duration::from_secs(10));
    let mut actor1 = run.spawn("actor", "actor-1", &actor_args("1"));
    let at_kill = last_step(&run);
    wait_until(300, "10 more updates after actor 0 died", context, || {
        last_step(&run) >= at_kill + 10
    });
    wait_until(60, "actor 0's streams freed", context, || {
        run.log("learner").matches("actor 0 stream").count() >= 2
    });

    // Ctrl-C: the actor and the learner stop cleanly.
    let status = stop(&mut actor1, "actor 1", context);
    assert!(status.success(), "actor 1 exited with {status}\n{}", context());
    let status = stop(&mut learner, "learner", context);
    assert!(status.success(), "learner exited with {status}\n{}", context());
    let meta = meta(&run);
    assert_eq!(meta["end_reason"], "interrupted", "{meta:#}");
    assert_eq!(meta["config"]["inference_resolved"], "central", "{meta:#}");
    let central = &meta["central_inference"];
    assert!(central["dropped"]["undecodable"].as_u64() >= Some(1), "{central:#}");
    assert!(central["dropped"]["bad_shape"].as_u64() >= Some(1), "{central:#}");
    assert!(central["restarts"].as_u64() >= Some(1), "{central:#}");
    let per_actor = &meta["trajectories_per_actor"];
    for actor in ["0", "1"] {
        assert!(per_actor[actor]["used"].as_u64() > Some(0), "actor {actor}: {per_actor:#}");
    }
    assert!(!checkpoints(&run).is_empty(), "a checkpoint at the end");
}

/// A run that reaches its total frames ends its actors as in the actors'
/// mode: the learner's inference socket closes with the run, and the actor,
/// learning that the learner finished, stops at once and without a warning,
/// not after its inference timeout (30 s) as after a fault.
#[test]
fn the_actor_stops_without_a_warning_when_the_learner_finishes_the_run() {
    let run = TestRun::new("central-finish");
    let args: Vec<&str> =
        learner_args().into_iter().map(|a| if a == "1e9" { "4e3" } else { a }).collect();
    let mut learner = run.spawn("learner", "learner", &args);
    let mut actor = run.spawn("actor", "actor-0", &actor_args("0"));
    let context = || format!("{}\n--- actor\n{}", run.log("learner"), run.log("actor-0"));
    let status = wait_timeout(&mut learner, Duration::from_secs(300))
        .unwrap_or_else(|| panic!("the learner did not reach its frames\n{}", context()));
    let learner_ended = std::time::Instant::now();
    assert!(status.success(), "learner exited with {status}\n{}", context());
    assert_eq!(meta(&run)["end_reason"], "total frames reached", "{}", context());
    let status = wait_timeout(&mut actor, Duration::from_secs(90))
        .unwrap_or_else(|| panic!("the actor did not stop\n{}", context()));
    let waited = learner_ended.elapsed();
    assert!(status.success(), "actor exited with {status}\n{}", context());
    let log = run.log("actor-0");
    assert!(log.contains("the learner finished the run"), "{}", context());
    assert!(!log.contains("starting over"), "a normal end is not a fault\n{}", context());
    assert!(
        waited < Duration::from_secs(10),
        "the actor stopped {waited:?} after the learner\n{}",
        context()
    );
}

/// A serve thread that dies answers nobody: the learner must not wait for
/// unrolls that will never come. It stops with a non-zero exit, a final
/// checkpoint, and the reason in meta.json (`end_reason` "failed",
/// `failure` naming the thread and its panic).
#[test]
fn a_learner_whose_serve_thread_dies_stops_with_the_reason() {
    let run = TestRun::new("central-serve-dies");
    let mut learner = run.spawn_with_env(
        "learner",
        "learner",
        &learner_args(),
        &[("LEARNER_FAILPOINT", "serve")],
    );
    let mut actor = run.spawn("actor", "actor-0", &actor_args("0"));
    let context = || format!("{}\n--- actor\n{}", run.log("learner"), run.log("actor-0"));
    let status = wait_timeout(&mut learner, Duration::from_secs(120))
        .unwrap_or_else(|| panic!("the learner kept waiting\n{}", context()));
    assert!(!status.success(), "a failed run exits non-zero\n{}", context());
    let meta = meta(&run);
    assert_eq!(meta["end_reason"], "failed", "{meta:#}");
    let failure = meta["failure"].as_str().unwrap_or_default();
    assert!(failure.contains("serve thread died"), "{meta:#}");
    assert!(failure.contains("LEARNER_FAILPOINT"), "the panic's message: {meta:#}");
    assert!(!checkpoints(&run).is_empty(), "a final checkpoint\n{}", context());
    assert!(run.log("learner").contains("resume"), "{}", context());
    stop(&mut actor, "the actor", context);
}

/// The README's launcher in this mode, stopped with one Ctrl-C: learner,
/// recorder and actor all end cleanly (exit 0, a checkpoint, the recorder's
/// file closed), and none of them is left running.
#[test]
fn ctrl_c_stops_every_process_of_a_central_inference_run() {
    let run = TestRun::new("central-ctrl-c");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/train-local.sh");
    let bin_dir = tests::bin("learner").parent().unwrap().to_path_buf();
    let log = run.dir.path().join("train-local.log");
    let mut launcher = tests::spawn_logged(
        std::process::Command::new("bash")
            .arg(&script)
            .args(["--demo", "--xpid", &run.xpid, "--device", "cpu", "--precision", "fp32"])
            .args(["--inference", "central", "--record-every", "2", "--total-frames", "1e9"])
            .env("AAA_NO_TMUX", "1")
            .env("AAA_NO_BUILD", "1")
            .env("AAA_BIN_DIR", &bin_dir)
            .env("AAA_RUNS_ROOT", run.dir.path()),
        &log,
    );
    let context = || {
        format!(
            "{}\n--- learner\n{}\n--- actor\n{}\n--- recorder\n{}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            run.log("learner"),
            run.log("actor-0"),
            run.log("recorder")
        )
    };
    wait_until(300, "5 updates and a recorded episode", context, || {
        last_step(&run) >= 5 && run.log("recorder").contains("episode recorded")
    });
    interrupt(&launcher);
    let status = wait_timeout(&mut launcher, Duration::from_secs(120))
        .unwrap_or_else(|| panic!("the launcher did not stop on Ctrl-C\n{}", context()));
    assert!(status.success(), "launcher exited with {status}\n{}", context());
    let meta = meta(&run);
    assert_eq!(meta["end_reason"], "interrupted", "{meta:#}");
    assert_eq!(meta["config"]["inference_resolved"], "central", "{meta:#}");
    assert!(run.log("actor-0").contains("inference on the learner"), "{}", context());
    assert!(run.log("actor-0").contains("stopped after"), "the actor stops cleanly\n{}", context());
    assert!(run.log("recorder").contains("recorder stopped"), "{}", context());
    let leftover = std::process::Command::new("pgrep")
        .args(["-f", run.dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        leftover.stdout.is_empty(),
        "processes left running: {}",
        String::from_utf8_lossy(&leftover.stdout)
    );
    // The recorder closed its file: h5 files that the recorder can read back.
    let inspect = std::process::Command::new(tests::bin("recorder"))
        .arg("inspect")
        .arg(run.run_dir())
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "recorder inspect: {}\n{}",
        String::from_utf8_lossy(&inspect.stderr),
        context()
    );
}

/// A learner killed with `kill -9` and started again with `--resume`: the
/// actor's group is told to start over (or times out and does), and the new
/// learner trains on its new episodes.
#[test]
fn after_a_learner_restart_the_actor_starts_over_and_is_learned_from() {
    let run = TestRun::new("central-restart");
    let context = || {
        format!(
            "{}\n--- learner 2\n{}\n--- actor\n{}",
            run.log("learner"),
            run.log("learner-2"),
            run.log("actor-0")
        )
    };
    let mut first = learner_args();
    first.extend(["--checkpoint-interval-s", "2"]);
    let mut learner = run.spawn("learner", "learner", &first);
    let mut actor_flags = actor_args("0");
    actor_flags.extend(["--inference-timeout-s", "5"]);
    let mut actor = run.spawn("actor", "actor-0", &actor_flags);
    wait_until(300, "5 updates", context, || last_step(&run) >= 5);
    // A finished checkpoint: one still being written (.tmp-) is not resumed from.
    wait_until(120, "a checkpoint", context, || !checkpoints(&run).is_empty());
    signal(&learner, "KILL");
    let _ = wait_timeout(&mut learner, Duration::from_secs(10));
    let before = last_step(&run);
    let mut args = learner_args();
    args.push("--resume");
    let mut learner = run.spawn("learner", "learner-2", &args);
    wait_until(300, "10 updates of the resumed learner", context, || {
        run.log("learner-2").contains("resumed from") && last_step(&run) >= before + 10
    });
    assert!(
        run.log("actor-0").contains("starting over with new episodes"),
        "the actor's groups start over\n{}",
        context()
    );
    let status = stop(&mut actor, "the actor", context);
    assert!(status.success(), "actor exited with {status}\n{}", context());
    let status = stop(&mut learner, "the resumed learner", context);
    assert!(status.success(), "learner exited with {status}\n{}", context());
    let meta = meta(&run);
    assert!(meta["trajectories_per_actor"]["0"]["used"].as_u64() > Some(0), "{meta:#}");
}
