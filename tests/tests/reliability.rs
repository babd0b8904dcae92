//! Faults and bad input with the real processes (docs/reliability.md): a
//! learner, actor or recorder killed with `kill -9`, damaged checkpoints, bad
//! messages of every kind on the learner's sockets, a full disk, addresses
//! beyond loopback, and another run's processes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use env::EnvSpec;
use rand::{Rng, SeedableRng};
use tests::{checkpoints, interrupt, meta, stop, wait_timeout, wait_until, KillOnDrop, TestRun};
use wire::auth::{Credentials, RunKey};
use wire::config::ModelConfig;
use wire::fixtures;
use wire::protocol::{encode, Array, Body, ParamsRequest, Trajectory};
use wire::rundir::Endpoints;
use wire::seal::{End, Service};

const SMALL: [&str; 6] = ["--preset", "small", "--game", "catch", "--unroll-length", "20"];
const T: usize = 20;

/// Who runs the actors' model: the kill -9 tests run in both modes.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Actors,
    Central,
}

impl Mode {
    fn learner_flags(self) -> &'static [&'static str] {
        match self {
            Mode::Actors => &["--inference", "actors"],
            Mode::Central => &["--inference", "central"],
        }
    }

    /// An actor's log says that its learner went away.
    fn away(self, log: &str) -> bool {
        match self {
            Mode::Actors => {
                log.contains("learner not answering")
                    || log.contains("learner not taking trajectories")
            }
            Mode::Central => log.contains("starting over"),
        }
    }

    /// The actors' flags: a short inference timeout under central inference.
    fn actor_flags(self) -> &'static [&'static str] {
        match self {
            Mode::Actors => &[],
            Mode::Central => &["--inference-timeout-s", "5"],
        }
    }

    /// How long after both actors reconnected their groups may take to give
    /// unrolls again (two inference timeouts under central inference).
    fn settle(self) -> std::time::Duration {
        match self {
            Mode::Actors => std::time::Duration::ZERO,
            Mode::Central => std::time::Duration::from_secs(12),
        }
    }

    /// Connections an actor holds to the learner's data socket: its
    /// trajectory push, or one inference socket per group (2).
    fn connections_per_actor(self) -> u64 {
        match self {
            Mode::Actors => 1,
            Mode::Central => 2,
        }
    }
}

fn learner_args(extra: &[&'static str]) -> Vec<&'static str> {
    let mut a = SMALL.to_vec();
    a.extend(["--batch-size", "4", "--threads", "1", "--device", "cpu", "--precision", "fp32"]);
    a.extend(["--total-frames", "1e9", "--log-interval-s", "1"]);
    a.extend(extra);
    a
}

fn actor_args(id: &'static str, extra: &[&'static str]) -> Vec<&'static str> {
    let mut a = SMALL.to_vec();
    a.extend(["--actor-id", id, "--num-envs", "2", "--threads", "1", "--precision", "fp32"]);
    if !extra.contains(&"--record-every") {
        a.extend(["--record-every", "0"]);
    }
    a.extend(extra);
    a
}

fn steps(run: &TestRun) -> Vec<u64> {
    run.logs().iter().filter_map(|r| r.get("step")?.parse().ok()).collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Damages a copy of a good checkpoint in one of the ways a crash, a bad disk
/// or a careless copy would; every one must be detected on load.
fn damage_checkpoint(dir: &Path, rng: &mut impl Rng) -> &'static str {
    let files = ["model.safetensors", "optimizer.safetensors"];
    match rng.gen_range(0..6) {
        0 => {
            let f = dir.join(files[rng.gen_range(0..2)]);
            let bytes = std::fs::read(&f).unwrap();
            std::fs::write(&f, &bytes[..rng.gen_range(0..bytes.len())]).unwrap();
            "file cut short"
        }
        1 => {
            let f = dir.join(files[rng.gen_range(0..2)]);
            let mut bytes = std::fs::read(&f).unwrap();
            let i = rng.gen_range(0..bytes.len());
            bytes[i] ^= rng.gen_range(1..=255u8);
            std::fs::write(&f, &bytes).unwrap();
            "byte changed"
        }
        2 => {
            let f = dir.join("manifest.json");
            let bytes = std::fs::read(&f).unwrap();
            std::fs::write(&f, &bytes[..rng.gen_range(0..bytes.len() - 1)]).unwrap();
            "manifest cut short"
        }
        3 => {
            let f = dir.join("manifest.json");
            let junk: Vec<u8> = (0..rng.gen_range(0..300)).map(|_| rng.gen()).collect();
            std::fs::write(&f, junk).unwrap();
            "manifest replaced by random bytes"
        }
        4 => {
            std::fs::remove_file(dir.join(files[rng.gen_range(0..2)])).unwrap();
            "file missing"
        }
        _ => {
            let f = dir.join(files[rng.gen_range(0..2)]);
            let mut bytes = std::fs::read(&f).unwrap();
            bytes.extend((0..rng.gen_range(1..64)).map(|_| rng.gen::<u8>()));
            std::fs::write(&f, &bytes).unwrap();
            "bytes appended"
        }
    }
}

/// The learner dies with `kill -9` while actors play. The actors wait; a
/// learner started with `--resume` loads the newest checkpoint that verifies,
/// never a damaged or half-written one, continues its counters, moves the
/// logs.csv rows of the lost updates aside (so the step column never goes
/// backwards), and the same actors reconnect and are learned from.
#[test]
fn a_learner_killed_with_kill_9_resumes_from_its_last_verified_checkpoint() {
    learner_killed(Mode::Actors);
}

#[test]
fn under_central_inference_a_learner_killed_with_kill_9_resumes() {
    learner_killed(Mode::Central);
}

fn learner_killed(mode: Mode) {
    let run = TestRun::new(&format!("learner-kill9-{mode:?}"));
    let flags = [mode.learner_flags(), &["--checkpoint-interval-s", "2"][..]].concat();
    let mut learner = run.spawn("learner", "learner-1", &learner_args(&flags));
    // Under central inference a request lost with the learner waits out the
    // actor's inference timeout (30 s by default) before its group starts over.
    let actor_flags = mode.actor_flags();
    let _a0 = run.spawn("actor", "actor-0", &actor_args("0", actor_flags));
    let _a1 = run.spawn("actor", "actor-1", &actor_args("1", actor_flags));
    wait_until(
        180,
        "a checkpoint and updates after it",
        || run.log("learner-1"),
        || {
            let newest = checkpoints(&run).last().map(|c| c.0);
            newest.is_some_and(|s| steps(&run).last().is_some_and(|&last| last > s + 2))
        },
    );
    learner.0.kill().unwrap(); // SIGKILL
    learner.0.wait().unwrap();
    let before = steps(&run);
    let (good_step, good) = checkpoints(&run).pop().unwrap();
    let killed_at = *before.last().unwrap();

    // The damage a crash or a bad disk could leave, all newer than the good
    // checkpoint: a writer killed before its rename, and copies damaged in
    // 40 random ways. Every one must be skipped.
    let ckpts = run.run_dir().join("checkpoints");
    copy_dir(&good, &ckpts.join(format!(".tmp-ckpt-{:012}-4242", killed_at + 1)));
    let mut rng = rand_pcg::Pcg64::seed_from_u64(9);
    let mut kinds: HashMap<&str, usize> = HashMap::new();
    let damaged = 40;
    for i in 0..damaged {
        let dir = ckpts.join(format!("ckpt-{:012}", killed_at + 10 + i));
        copy_dir(&good, &dir);
        *kinds.entry(damage_checkpoint(&dir, &mut rng)).or_default() += 1;
    }
    assert!(kinds.len() >= 5, "too few kinds of damage tried: {kinds:?}");

    // The actors live on and say that they wait (or, under central
    // inference, start their groups over).
    let away = |log: &str| mode.away(log);
    wait_until(
        60,
        "the actors to notice",
        || run.log("actor-0"),
        || away(&run.log("actor-0")) && away(&run.log("actor-1")),
    );

    let flags = [mode.learner_flags(), &["--resume"][..]].concat();
    let mut learner = run.spawn("learner", "learner-2", &learner_args(&flags));
    wait_until(
        120,
        "the resume",
        || run.log("learner-2"),
        || run.log("learner-2").contains("resumed from"),
    );
    wait_until(
        120,
        "updates after the resume",
        || run.log("learner-2"),
        // Past the step the first learner died at: rows of the new session
        // (the lost ones' count alone would be met by the old rows).
        || steps(&run).last().is_some_and(|&last| last > killed_at.max(good_step + 3)),
    );
    let log = run.log("learner-2");
    let resumed = format!("resumed from {}", good.display());
    assert!(log.contains(&resumed), "expected '{resumed}':\n{log}");
    assert_eq!(log.matches("skipping checkpoint").count(), damaged as usize, "{log}");
    let after = steps(&run);
    assert!(
        after.windows(2).all(|w| w[1] == w[0] + 1),
        "the step column of logs.csv goes backwards or skips: {after:?}"
    );
    assert_eq!(after[0], 1);
    if killed_at > good_step {
        let aside = run.run_dir().join(format!("logs.csv.lost-after-step-{good_step}"));
        let lost = std::fs::read_to_string(&aside).unwrap_or_default();
        let listing: Vec<String> = std::fs::read_dir(run.run_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            lost.lines().count() as u64,
            1 + killed_at - good_step,
            "the lost updates' rows are kept aside in {} (killed at step {killed_at}, steps \
             before the kill {before:?}; the run directory holds {listing:?})\n{log}\n\
             --- logs.csv now:\n{}",
            aside.display(),
            std::fs::read_to_string(run.run_dir().join("logs.csv")).unwrap_or_default()
        );
    }
    // Both actors reconnect and are learned from (meta.json below). Each
    // redials on its own schedule (NNG's backoff reaches 2 s, a params request
    // is resent after 5 s), and on a fast machine one actor alone can fill many
    // updates before the other is back; so wait for both connections, then
    // for enough updates that the trajectories queued before them are used up.
    wait_until(
        60,
        "both actors to reconnect",
        || run.log("learner-2"),
        || {
            let log = run.log("learner-2");
            log.contains("actor 0 connected") && log.contains("actor 1 connected")
        },
    );
    let reconnected_at = steps(&run).len() as u64;
    // A connection shows at an actor's first message; under central inference
    // that may be a stale request, answered with Restart, after which the
    // group needs T + 1 steps, or an inference timeout, to give an unroll.
    let settle = std::time::Instant::now() + mode.settle();
    wait_until(
        120,
        "more updates",
        || run.log("learner-2"),
        || {
            steps(&run).len() as u64 > reconnected_at.max(good_step) + 10
                && std::time::Instant::now() >= settle
        },
    );

    let status = stop(&mut learner, "the resumed learner", || run.log("learner-2"));
    assert!(status.success(), "{}", run.log("learner-2"));
    let m = meta(&run);
    assert_eq!(m["resumed_from"], serde_json::json!(good));
    assert!(m["final_counters"]["step"].as_u64().unwrap() > good_step);
    for actor in ["0", "1"] {
        let used = m["trajectories_per_actor"][actor]["used"].as_u64().unwrap_or(0);
        assert!(used > 0, "actor {actor} was not learned from after the resume: {m}");
    }
    // The damaged ones are set aside, not deleted, and do not crowd out the
    // resumed session's checkpoints: the newest now is the resumed session's.
    let aside = std::fs::read_dir(&ckpts)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".damaged"))
        .count();
    assert_eq!(aside, damaged as usize);
    let newest = checkpoints(&run).pop().unwrap();
    assert_eq!(newest.0, m["final_counters"]["step"].as_u64().unwrap());
}

/// An actor killed with `kill -9` mid-unroll: the learner goes on, logs which
/// actor went away and counts it in meta.json; a new actor with the same id
/// joins and is learned from.
#[test]
fn an_actor_killed_with_kill_9_is_counted_gone_and_its_id_rejoins() {
    actor_killed(Mode::Actors);
}

#[test]
fn under_central_inference_an_actor_killed_with_kill_9_is_counted_gone_and_rejoins() {
    actor_killed(Mode::Central);
}

fn actor_killed(mode: Mode) {
    let run = TestRun::new(&format!("actor-kill9-{mode:?}"));
    let mut learner = run.spawn("learner", "learner", &learner_args(mode.learner_flags()));
    let _a0 = run.spawn("actor", "actor-0", &actor_args("0", &[]));
    let mut a1 = run.spawn("actor", "actor-1", &actor_args("1", &[]));
    // Actor 1 must have reached the learner (a connection is tied to an actor
    // by its first message) before it dies, or nothing names it.
    wait_until(
        120,
        "updates, with both actors connected",
        || run.log("learner"),
        || steps(&run).len() >= 3 && run.log("learner").contains("actor 1 connected"),
    );
    a1.0.kill().unwrap();
    a1.0.wait().unwrap();
    wait_until(
        30,
        "the learner to notice",
        || run.log("learner"),
        || run.log("learner").contains("actor 1 disconnected"),
    );
    let at_kill = steps(&run).len();
    wait_until(
        120,
        "updates after the kill",
        || run.log("learner"),
        || steps(&run).len() >= at_kill + 3,
    );
    assert!(learner.try_wait().unwrap().is_none(), "the learner exited after an actor died");

    let _a1 = run.spawn("actor", "actor-1-again", &actor_args("1", &[]));
    wait_until(
        120,
        "the new actor 1 to act",
        || run.log("actor-1-again"),
        || run.log("actor-1-again").contains("unrolls per env"),
    );
    let at_join = steps(&run).len();
    wait_until(
        120,
        "updates after the join",
        || run.log("learner"),
        || steps(&run).len() >= at_join + 2,
    );
    let status = stop(&mut learner, "the learner", || run.log("learner"));
    assert!(status.success(), "{}", run.log("learner"));
    let m = meta(&run);
    let gone = m["actors_disconnected"]["1"].as_u64();
    assert_eq!(gone, Some(mode.connections_per_actor()), "{}", m["actors_disconnected"]);
    assert!(m["actors_disconnected"].get("0").is_none(), "{}", m["actors_disconnected"]);
    assert!(m["trajectories_per_actor"]["1"]["used"].as_u64().unwrap() > 0);
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn cfg() -> ModelConfig {
    ModelConfig::small(EnvSpec::catch_default().num_actions().unwrap())
}

fn endpoints(run: &TestRun, log: &str) -> (String, String) {
    let path = run.run_dir().join("endpoints.json");
    let mut found = None;
    wait_until(
        60,
        "endpoints.json",
        || run.log(log),
        || {
            if let Ok(Endpoints { trajectories: Some(t), params: Some(p), .. }) =
                Endpoints::read(&path)
            {
                found = Some((t, p));
            }
            found.is_some()
        },
    );
    found.unwrap()
}

fn trajectory(actor: u32, seed: u64) -> Trajectory {
    let mut t = fixtures::trajectory(&cfg(), T, seed);
    t.actor_id = actor;
    t.params_version = 1;
    t
}

fn raw_push(address: &str) -> nng::Socket {
    let s = nng::Socket::new(nng::Protocol::Push0).unwrap();
    use nng::options::Options;
    s.set_opt::<nng::options::SendTimeout>(Some(Duration::from_secs(30))).unwrap();
    s.dial(address).unwrap();
    s
}

/// Every kind of bad message on the learner's sockets: dropped with a log
/// line, counted by reason (per actor where the sender is known) in
/// meta.json, and harmless: good trajectories after them are learned from.
#[test]
fn bad_messages_to_a_running_learner_are_dropped_counted_and_harmless() {
    let run = TestRun::new("bad-input");
    // B = 4 good trajectories make an update; T = 20 small trajectories are
    // ~120 KB, so 1 MB is a generous maximum that a 3 MB message exceeds.
    // On tcp, where messages are sealed with the run's key (on ipc the
    // operating system keeps strangers out, and messages go as they are).
    let [t, p] = [free_port(), free_port()].map(|port| -> &'static str {
        Box::leak(format!("tcp://127.0.0.1:{port}").into_boxed_str())
    });
    let flags =
        ["--max-message-bytes", "1000000", "--trajectories-address", t, "--params-address", p];
    let mut learner = run.spawn("learner", "learner", &learner_args(&flags));
    let (trajectories, params) = endpoints(&run, "learner");
    let xpid = run.xpid.clone();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(5);

    // Beyond the socket's maximum: NNG closes that connection; the learner
    // logs it and goes on.
    {
        let big = raw_push(&trajectories);
        big.send(nng::Message::from(&vec![0x90u8; 3 << 20][..])).unwrap();
        wait_until(
            30,
            "the oversized message's connection to close",
            || run.log("learner"),
            || run.log("learner").contains("connection closed before it carried a valid message"),
        );
    }

    let push = raw_push(&trajectories);
    let send_raw = |bytes: Vec<u8>| push.send(nng::Message::from(&bytes[..])).unwrap();
    // Bad bytes sealed with the run's key, as a buggy process of the run could
    // send: they get past the seal and reach the decoder and validation.
    let creds = Credentials::new(&xpid, RunKey::load_file(&run.run_dir().join("run.key")).unwrap());
    let actor = creds.for_address(&trajectories, End::Dialer, Service::Stream).unwrap();
    let send = |bytes: Vec<u8>| send_raw(actor.seal(&bytes, None).0);
    let good = encode(&xpid, &Body::Trajectory(Box::new(trajectory(8, 1)))).unwrap();
    let (random, truncated, unsealed) = (30, 20, 10);
    for _ in 0..random {
        let n = rng.gen_range(0..4096);
        send((0..n).map(|_| rng.gen()).collect());
    }
    for _ in 0..truncated {
        send(good[..rng.gen_range(0..good.len())].to_vec());
    }
    // Not sealed with the run's key: random bytes, and good messages sealed with another
    // key (a forger who knows the run id) are dropped unread.
    for _ in 0..unsealed / 2 {
        let n = rng.gen_range(0..4096);
        send_raw((0..n).map(|_| rng.gen()).collect());
    }
    let forger = Credentials::ephemeral(&xpid)
        .for_address(&trajectories, End::Dialer, Service::Stream)
        .unwrap();
    for seed in 0..unsealed / 2 {
        let body = Body::Trajectory(Box::new(trajectory(8, 30 + seed as u64)));
        send_raw(forger.seal(&encode(&xpid, &body).unwrap(), None).0);
    }
    let mut other_version = good.clone();
    let at = other_version.windows(8).position(|w| w == b"protocol").unwrap() + 8;
    other_version[at] += 1;
    send(other_version);
    send(encode("another-run", &Body::Trajectory(Box::new(trajectory(8, 2)))).unwrap());
    send(encode(&xpid, &Body::ParamsRequest(ParamsRequest { actor_id: 8, version: 0 })).unwrap());
    let bad = |f: &dyn Fn(&mut Trajectory)| {
        let mut t = trajectory(7, 3);
        f(&mut t);
        send(encode(&xpid, &Body::Trajectory(Box::new(t))).unwrap());
    };
    bad(&|t| t.frame = Array::from_u8(vec![T + 1, 84, 84, 3], vec![0; (T + 1) * 84 * 84 * 3]));
    bad(&|t| t.reward = Array::from_f32(vec![T], &[0.0; T]));
    bad(&|t| t.action = Array::from_i64(vec![T + 1], &[99; T + 1]));
    bad(&|t| t.last_action = Array::from_i64(vec![T + 1], &[-1; T + 1]));
    bad(&|t| t.reward = Array::from_f32(vec![T + 1], &[f32::NAN; T + 1]));
    bad(&|t| t.policy_logits.data[0..4].copy_from_slice(&f32::INFINITY.to_le_bytes()));
    bad(&|t| t.episode_return = Array::from_f32(vec![T + 1], &[f32::NEG_INFINITY; T + 1]));
    // And then 8 good ones (two updates).
    for seed in 0..8 {
        send(encode(&xpid, &Body::Trajectory(Box::new(trajectory(8, 10 + seed)))).unwrap());
    }

    // The params socket: random bytes, another run's request and a forged
    // one each get an answer (REP must answer) that holds no weights, and a count.
    let request = |run: &str| {
        encode(run, &Body::ParamsRequest(ParamsRequest { actor_id: 1, version: 0 })).unwrap()
    };
    let asker = creds.for_address(&params, End::Dialer, Service::Params).unwrap();
    let forger =
        Credentials::ephemeral(&xpid).for_address(&params, End::Dialer, Service::Params).unwrap();
    for body in [
        asker.seal(&[0xc1u8, 0x00, 0x13], None).0,
        asker.seal(&request("another-run"), None).0,
        forger.seal(&request(&xpid), None).0,
    ] {
        let req = nng::Socket::new(nng::Protocol::Req0).unwrap();
        req.dial(&params).unwrap();
        req.send(nng::Message::from(&body[..])).unwrap();
        let reply = req.recv().unwrap();
        assert_eq!(reply.len(), 1, "the one-byte refusal: it carries no weights");
    }

    wait_until(120, "two updates", || run.log("learner"), || steps(&run).len() >= 2);
    assert!(learner.try_wait().unwrap().is_none(), "the learner exited");
    let status = stop(&mut learner, "the learner", || run.log("learner"));
    assert!(status.success(), "{}", run.log("learner"));
    let log = run.log("learner");
    let m = meta(&run);
    let counts = &m["trajectories_per_actor"];
    let unknown = &counts["unknown"]["dropped"];
    assert_eq!(unknown["undecodable"], random + truncated, "{counts}\n{log}");
    assert_eq!(unknown["unauthenticated"], unsealed, "{counts}\n{log}");
    assert_eq!(unknown["wrong_protocol"], 1, "{counts}");
    assert_eq!(unknown["wrong_run"], 1, "{counts}");
    assert_eq!(unknown["unexpected_body"], 1, "{counts}");
    let seven = &counts["7"];
    assert_eq!(seven["received"], 7, "{counts}");
    assert_eq!(seven["used"], 0, "{counts}");
    assert_eq!(seven["dropped"]["bad_shape"], 2, "{counts}");
    assert_eq!(seven["dropped"]["action_out_of_range"], 2, "{counts}");
    assert_eq!(seven["dropped"]["non_finite"], 3, "{counts}");
    assert_eq!(counts["8"]["received"], 8, "{counts}");
    assert_eq!(counts["8"]["used"], 8, "{counts}");
    assert!(counts["8"]["dropped"].as_object().is_none_or(|d| d.is_empty()), "{counts}");
    for reason in
        ["undecodable", "unauthenticated", "wrong_protocol", "wrong_run", "bad_shape", "non_finite"]
    {
        assert!(log.contains(&format!("({reason}, ")), "no log line for {reason}:\n{log}");
    }
    assert!(log.contains("refused params request (3 so far)"), "{log}");
}

/// Another run's actor pointed at this learner is refused both ways, and a
/// learner or recorder asked to bind beyond loopback refuses without
/// `--allow-remote`.
#[test]
fn other_runs_and_non_loopback_addresses_are_refused() {
    let run = TestRun::new("run-a");
    let mut learner = run.spawn("learner", "learner", &learner_args(&[]));
    let (trajectories, params) = endpoints(&run, "learner");
    let other = TestRun::new("run-b");
    let mut args = actor_args("0", &[]);
    args.extend(["--trajectories-address", &trajectories, "--params-address", &params]);
    let mut stranger = other.spawn("actor", "actor", &args);
    let status = wait_timeout(&mut stranger, Duration::from_secs(120));
    let log = other.log("actor");
    assert!(status.is_some_and(|s| !s.success()), "the other run's actor was not refused:\n{log}");
    assert!(log.contains("two runs share an address"), "{log}");
    assert!(learner.try_wait().unwrap().is_none());
    let status = stop(&mut learner, "the learner", || run.log("learner"));
    assert!(status.success());
    assert!(
        run.log("learner").contains("refused params request (1 so far)"),
        "{}",
        run.log("learner")
    );

    for (bin, args) in [
        ("learner", {
            let mut a = learner_args(&[]);
            a.extend(["--trajectories-address", "tcp://0.0.0.0:47123"]);
            a
        }),
        (
            "recorder",
            vec!["serve", "--preset", "small", "--episodes-address", "tcp://0.0.0.0:47124"],
        ),
    ] {
        let run = TestRun::new(&format!("remote-{bin}"));
        let mut child = run.spawn(bin, bin, &args);
        let status = wait_timeout(&mut child, Duration::from_secs(60));
        let log = run.log(bin);
        assert!(status.is_some_and(|s| !s.success()), "{bin} bound 0.0.0.0:\n{log}");
        assert!(log.contains("--allow-remote"), "{bin}:\n{log}");
    }
}

/// The recorder dies with `kill -9` while actors stream episodes to it: the
/// actors and the learner go on, every closed segment opens in h5py, a new
/// recorder on the same run directory recovers the finished episodes and
/// records new ones.
#[test]
fn a_recorder_killed_with_kill_9_leaves_actors_playing_and_files_readable() {
    let run = TestRun::new("recorder-kill9");
    let mut learner = run.spawn("learner", "learner", &learner_args(&[]));
    let recorder_args = ["serve", "--preset", "small", "--game", "catch", "--rotate-seconds", "1"];
    let recorder_args =
        [&recorder_args[..], &["--log-seconds", "1", "--compress-threads", "1"]].concat();
    let mut recorder = run.spawn("recorder", "recorder-1", &recorder_args);
    let record = ["--record-every", "1", "--chunk-steps", "4"];
    let mut a0 = run.spawn("actor", "actor-0", &actor_args("0", &record));
    let mut a1 = run.spawn("actor", "actor-1", &actor_args("1", &record));
    wait_until(
        180,
        "recorded episodes in a closed segment",
        || format!("{}\n--- actor-0:\n{}", run.log("recorder-1"), run.log("actor-0")),
        || {
            let log = run.log("recorder-1");
            log.matches("episode recorded").count() >= 4 && log.contains("closed segment")
        },
    );
    recorder.0.kill().unwrap();
    recorder.0.wait().unwrap();
    let recorded_before: Vec<String> = run
        .log("recorder-1")
        .lines()
        .filter(|l| l.contains("episode recorded"))
        .filter_map(|l| l.split("uid=").nth(1)?.split_whitespace().next().map(str::to_owned))
        .collect();

    // Acting and learning go on without a recorder.
    let rows = steps(&run).len();
    wait_until(
        120,
        "updates without a recorder",
        || run.log("learner"),
        || steps(&run).len() >= rows + 3,
    );
    assert!(a0.try_wait().unwrap().is_none() && a1.try_wait().unwrap().is_none());

    let mut recorder = run.spawn("recorder", "recorder-2", &recorder_args);
    wait_until(
        120,
        "new episodes after the restart",
        || run.log("recorder-2"),
        || run.log("recorder-2").matches("episode recorded").count() >= 2,
    );
    let status = stop(&mut recorder, "the second recorder", || run.log("recorder-2"));
    assert!(status.success(), "{}", run.log("recorder-2"));
    for a in [&mut a0, &mut a1] {
        interrupt(a);
        assert!(wait_timeout(a, Duration::from_secs(60)).is_some());
    }
    let status = stop(&mut learner, "the learner", || run.log("learner"));
    assert!(status.success(), "{}", run.log("learner"));

    // Every segment opens in h5py; every episode the first recorder finished is there.
    let script = r#"
import glob, json, sys, h5py
uids = []
for path in sorted(glob.glob(sys.argv[1] + "/episodes-*.h5")):
    with h5py.File(path, "r") as f:
        for uid, g in f["episodes"].items():
            n = g["frame"].shape[0]
            assert g["action"].shape[0] == n and g["attention"].shape[0] == n, uid
            uids.append(uid)
print(json.dumps(uids))
"#;
    let out = std::process::Command::new(tests::python())
        .args(["-c", script])
        .arg(run.run_dir())
        .output()
        .expect("run the project's python");
    assert!(out.status.success(), "h5py: {}", String::from_utf8_lossy(&out.stderr));
    let uids: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    for uid in &recorded_before {
        assert!(uids.contains(uid), "episode {uid} finished before the kill is missing: {uids:?}");
    }
    let mut unique = uids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), uids.len(), "an episode is in two segments: {uids:?}");
    assert!(uids.len() > recorded_before.len(), "nothing recorded after the restart");
}

/// A disk that fills up under a running learner (a small tmpfs as the runs
/// root): rows of logs.csv that cannot be written are counted and learning
/// goes on; a checkpoint that cannot be written stops the learner with a
/// clear error and exit status 1, leaving the checkpoints before it intact.
/// Needs permission to mount a tmpfs (root); skipped, loudly, otherwise.
#[test]
fn a_full_disk_loses_log_rows_with_a_count_and_stops_cleanly_at_a_checkpoint() {
    let run = TestRun::new("disk-full");
    let mount = run.dir.path();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(mount)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        wire::fixtures::skip_test(
            "a_full_disk_loses_log_rows_with_a_count_and_stops_cleanly_at_a_checkpoint",
            "cannot mount a tmpfs here (needs root)",
        );
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.to_path_buf());
    // The logs go to another directory: they must outlive a full disk.
    let logs = tempfile::tempdir().unwrap();
    let spawn = |bin: &str, log: &str, args: &[&str]| {
        std::fs::create_dir_all(run.run_dir()).unwrap();
        let out = std::fs::File::create(logs.path().join(log)).unwrap();
        let child = std::process::Command::new(tests::bin(bin))
            .args(args)
            .args(["--runs-root", mount.to_str().unwrap(), "--xpid", &run.xpid])
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        KillOnDrop(child)
    };
    let read = |log: &str| std::fs::read_to_string(logs.path().join(log)).unwrap_or_default();
    let mut learner =
        spawn("learner", "learner", &learner_args(&["--checkpoint-interval-s", "1e9"]));
    let _a0 = spawn("actor", "actor", &actor_args("0", &[]));
    wait_until(120, "updates", || read("learner"), || steps(&run).len() >= 3);

    // Fill the disk.
    let filler = mount.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![7u8; 1 << 16];
        while f.write_all(&block).and_then(|_| f.flush()).is_ok() {}
        let _ = f.sync_all();
    }
    wait_until(
        120,
        "lost rows",
        || read("learner"),
        || read("learner").contains("rows lost so far"),
    );
    let lost_at = steps(&run).len();
    std::fs::remove_file(&filler).unwrap();
    wait_until(
        120,
        "rows again once there is room",
        || read("learner"),
        || steps(&run).len() > lost_at + 1,
    );
    assert!(learner.try_wait().unwrap().is_none(), "the learner stopped:\n{}", read("learner"));

    // Full again, then a checkpoint is due (at Ctrl-C): a clear error, exit 1.
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![7u8; 1 << 16];
        while f.write_all(&block).and_then(|_| f.flush()).is_ok() {}
    }
    interrupt(&learner);
    let status = wait_timeout(&mut learner, Duration::from_secs(90));
    let log = read("learner");
    assert!(status.is_some_and(|s| s.code() == Some(1)), "{status:?}\n{log}");
    assert!(log.contains("learner: error:") && log.contains("No space left"), "{log}");
    assert!(
        checkpoints(&run).iter().all(|(_, p)| p.join("manifest.json").is_file()),
        "a half-written checkpoint carries a checkpoint's name"
    );
}
