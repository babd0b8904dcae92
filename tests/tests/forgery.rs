//! A run reachable over tcp (`--allow-remote`) takes part only from processes
//! that can read its key (`<run dir>/run.key`, `wire::auth`). A forger that
//! knows the run id, the addresses and the wire format, but not the key, sends
//! well-formed trajectories, params requests and episode chunks: every one is
//! dropped and counted, no weights go to it, and the real actor beside it is
//! learned from and recorded as usual.

use std::time::Duration;

use env::EnvSpec;
use tests::{interrupt, wait_timeout, TestRun};
use wire::auth::Credentials;
use wire::config::ModelConfig;
use wire::fixtures;
use wire::protocol::{Body, ParamsRequest, ProtocolError, Refusal};
use wire::transport::{ParamsClient, Push};

const SMALL: [&str; 6] = ["--preset", "small", "--game", "catch", "--unroll-length", "20"];
const T: usize = 20;

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for(what: &str, log: impl Fn() -> String, cond: impl Fn(&str) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let text = log();
        if cond(&text) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_forger_without_the_key_is_dropped_and_counted_and_the_real_actor_learned_from() {
    let run = TestRun::new("remote");
    let tcp = |port: u16| format!("tcp://127.0.0.1:{port}");
    let (trajectories, params, episodes) = (tcp(free_port()), tcp(free_port()), tcp(free_port()));
    let mut learner_args = SMALL.to_vec();
    learner_args.extend(["--batch-size", "4", "--threads", "1", "--device", "cpu"]);
    learner_args.extend(["--precision", "fp32", "--total-frames", "1e9", "--allow-remote"]);
    learner_args.extend(["--trajectories-address", &trajectories, "--params-address", &params]);
    let mut learner = run.spawn("learner", "learner", &learner_args);
    let recorder_args = ["serve", "--preset", "small", "--game", "catch", "--allow-remote"];
    let recorder_args = [&recorder_args[..], &["--episodes-address", &episodes]].concat();
    let recorder_args = [&recorder_args[..], &["--rotate-seconds", "1", "--log-seconds", "1"]];
    let mut recorder = run.spawn("recorder", "recorder", &recorder_args.concat());
    wait_for(
        "both to listen",
        || run.log("learner") + &run.log("recorder"),
        |_| {
            let endpoints = std::fs::read_to_string(run.run_dir().join("endpoints.json"));
            endpoints.is_ok_and(|e| e.contains(&params) && e.contains(&episodes))
        },
    );
    assert!(run.run_dir().join("run.key").is_file(), "the learner made the run's key");

    // The forger: the right run id, addresses and formats, its own key.
    let forger = Credentials::ephemeral(&run.xpid);
    let cfg = ModelConfig::small(EnvSpec::catch_default().num_actions().unwrap());
    let push = Push::dial(&trajectories, &forger).unwrap();
    let forged_trajectories = 12;
    for seed in 0..forged_trajectories {
        let mut t = fixtures::trajectory(&cfg, T, seed);
        (t.actor_id, t.params_version) = (9, 1);
        push.send(&Body::Trajectory(Box::new(t)), Some(Duration::from_secs(30))).unwrap();
    }
    let client = ParamsClient::dial(&params, &forger, 64 << 20).unwrap();
    let forged_requests = 3;
    for _ in 0..forged_requests {
        let request = Body::ParamsRequest(ParamsRequest { actor_id: 9, version: 0 });
        let answer = client.request(&request, Duration::from_secs(30)).unwrap();
        // The learner answers (REP must) with the one-byte refusal, which
        // holds nothing, not even the run's current version.
        let what = answer.as_ref().map(Body::kind);
        let unreadable = ProtocolError::RefusedByPeer(Refusal::Unreadable);
        assert!(answer.as_ref().err() == Some(&unreadable), "the forger got {what:?}");
    }
    let chunks = Push::dial(&episodes, &forger).unwrap();
    let forged_chunks = 5;
    for seed in 0..forged_chunks {
        let mut chunk = fixtures::episode_chunk(&cfg, 4, (42, 42), seed, true);
        chunk.uid.actor = 9;
        chunks.send(&Body::EpisodeChunk(Box::new(chunk)), Some(Duration::from_secs(30))).unwrap();
    }

    // The real actor, which reads the key from the run directory.
    let mut actor_args = SMALL.to_vec();
    actor_args.extend(["--actor-id", "0", "--num-envs", "2", "--threads", "1"]);
    actor_args.extend(["--precision", "fp32", "--record-every", "1", "--chunk-steps", "8"]);
    let mut actor = run.spawn("actor", "actor", &actor_args);
    wait_for("two updates from the real actor", || run.log("learner"), |_| run.logs().len() >= 2);
    wait_for("an episode recorded", || run.log("recorder"), |log| log.contains("episode recorded"));

    interrupt(&actor);
    assert!(wait_timeout(&mut actor, Duration::from_secs(60)).is_some());
    for (child, name) in [(&mut learner, "learner"), (&mut recorder, "recorder")] {
        interrupt(child);
        let status = wait_timeout(child, Duration::from_secs(90));
        assert!(status.is_some_and(|s| s.success()), "{name}:\n{}", run.log(name));
    }

    let learner_log = run.log("learner");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.run_dir().join("meta.json")).unwrap()).unwrap();
    let counts = &meta["trajectories_per_actor"];
    assert_eq!(
        counts["unknown"]["dropped"]["unauthenticated"], forged_trajectories,
        "every forged trajectory dropped unread and counted: {counts}\n{learner_log}"
    );
    assert!(counts.get("9").is_none(), "nothing was taken from the forger's actor 9: {counts}");
    assert!(counts["0"]["used"].as_u64().unwrap() > 0, "the real actor is learned from: {counts}");
    assert!(
        learner_log.contains(&format!("refused params request ({forged_requests} so far)")),
        "{learner_log}"
    );
    let recorder_log = run.log("recorder");
    assert!(recorder_log.contains("not sealed with this run's key"), "{recorder_log}");
    assert!(recorder_log.contains(&format!("dropped={forged_chunks}")), "{recorder_log}");
    assert!(
        !recorder_log.contains("uid=a9-"),
        "the forger's episode was recorded:\n{recorder_log}"
    );
    assert!(recorder_log.contains("uid=a0-"), "the real actor's episodes are:\n{recorder_log}");
}
