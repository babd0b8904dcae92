//! Drives the real `learner` binary over ipc from this test process, the way
//! actors do: hand-made trajectories over PUSH, params requests over REQ,
//! Ctrl-C (SIGINT), and `--resume`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use agent::model::AgentState;
use env::EnvSpec;
use rand::{Rng, SeedableRng};
use testkit::{interrupt, spawn_logged, wait_timeout, KillOnDrop};
use wire::auth::Credentials;
use wire::config::ModelConfig;
use wire::protocol::{Array, Body, Params, ParamsRequest, Trajectory, UpToDate};
use wire::rundir::{Endpoints, RunDir};
use wire::transport::{ParamsClient, Push};

const XPID: &str = "learner-test";
const T: usize = 4;
const B: usize = 2;
const TOTAL_FRAMES: u64 = 1_000_000;
const LEARNING_RATE: f64 = 0.01;

fn cfg() -> ModelConfig {
    ModelConfig::small(EnvSpec::catch_default().num_actions().unwrap())
}

/// A learner process, killed when the test ends.
struct Learner {
    child: KillOnDrop,
    log: PathBuf,
}

impl Learner {
    fn start(root: &Path, session: &str, extra: &[&str]) -> Learner {
        let log = root.join(format!("learner-{session}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_learner"));
        command
            .args(["--runs-root", root.to_str().unwrap(), "--xpid", XPID])
            .args(["--preset", "small", "--game", "catch"])
            .args(["--unroll-length", &T.to_string(), "--batch-size", &B.to_string()])
            .args(["--total-frames", &TOTAL_FRAMES.to_string()])
            .args(["--learning-rate", &LEARNING_RATE.to_string()])
            .args(["--device", "cpu", "--precision", "fp32", "--threads", "1"])
            .args(["--log-interval-s", "0.5"])
            .args(extra);
        Learner { child: spawn_logged(&mut command, &log), log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn interrupt(&mut self) -> ExitStatus {
        interrupt(&self.child);
        self.wait(Duration::from_secs(60))
    }

    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        wait_timeout(&mut self.child, timeout)
            .unwrap_or_else(|| panic!("learner did not exit:\n{}", self.log()))
    }
}

/// Waits until the learner wrote both addresses.
fn endpoints(run: &RunDir, learner: &mut Learner) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Endpoints { trajectories: Some(t), params: Some(p), .. }) =
            Endpoints::read(&run.endpoints())
        {
            return (t, p);
        }
        if let Some(status) = learner.child.try_wait().unwrap() {
            panic!("learner exited with {status}:\n{}", learner.log());
        }
        assert!(Instant::now() < deadline, "no endpoints.json:\n{}", learner.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A trajectory with random frames and actions, an episode ending inside it.
fn trajectory(rng: &mut impl Rng, actor_id: u32, env_index: u32, version: u64) -> Trajectory {
    let cfg = cfg();
    let n = T + 1;
    let a = cfg.num_actions;
    let mut frame = vec![0u8; n * cfg.frame_len()];
    rng.fill(frame.as_mut_slice());
    let action: Vec<i64> = (0..n).map(|_| rng.gen_range(0..a as i64)).collect();
    let mut last_action = vec![0i64; n];
    last_action[1..].copy_from_slice(&action[..n - 1]);
    let logits: Vec<f32> = (0..n * a).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let reward: Vec<f32> = (0..n).map(|_| rng.gen_range(-2.0..2.0)).collect();
    // Frame 2 starts a new episode; it carries the finished episode's return (7) and length (12).
    let mut done = vec![0u8; n];
    done[2] = 1;
    let mut episode_return = vec![0.5f32; n];
    episode_return[2] = 7.0;
    let mut episode_step = vec![1i64; n];
    episode_step[2] = 12;
    Trajectory {
        actor_id,
        env_index,
        params_version: version,
        frame: Array::from_u8(vec![n, cfg.height, cfg.width, cfg.in_channels], frame),
        reward: Array::from_f32(vec![n], &reward),
        done: Array::from_u8(vec![n], done),
        last_action: Array::from_i64(vec![n], &last_action),
        action: Array::from_i64(vec![n], &action),
        policy_logits: Array::from_f32(vec![n, a], &logits),
        episode_return: Array::from_f32(vec![n], &episode_return),
        episode_step: Array::from_i64(vec![n], &episode_step),
        initial_state: AgentState::zeros(&cfg, 1, tch::Device::Cpu).to_protocol(0),
    }
}

fn request(client: &ParamsClient, version: u64) -> Body {
    let body = Body::ParamsRequest(ParamsRequest { actor_id: 9, version });
    client.request(&body, Duration::from_secs(30)).expect("params socket").expect("decodes")
}

/// Asks (holding `have`) until the learner serves a version of at least `want`.
fn wait_for_version(client: &ParamsClient, have: u64, want: u64, learner: &Learner) -> Params {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match request(client, have) {
            Body::Params(p) if p.version >= want => return p,
            Body::Params(_) | Body::UpToDate(_) => {}
            other => panic!("unexpected answer {}", other.kind()),
        }
        assert!(Instant::now() < deadline, "no version {want}:\n{}", learner.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Tensor name -> little-endian bytes of the weights in a params message.
fn tensors(params: &Params) -> HashMap<String, Vec<u8>> {
    let file = safetensors::SafeTensors::deserialize(&params.weights).unwrap();
    file.tensors().into_iter().map(|(name, view)| (name, view.data().to_vec())).collect()
}

fn csv_rows(run: &RunDir) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(run.logs_csv()).unwrap_or_default();
    let mut lines = text.lines();
    let Some(header) = lines.next() else { return Vec::new() };
    let columns: Vec<&str> = header.split(',').collect();
    lines
        .map(|line| {
            columns.iter().map(|c| c.to_string()).zip(line.split(',').map(str::to_string)).collect()
        })
        .collect()
}

fn send(push: &Push, trajectory: Trajectory) {
    push.send(&Body::Trajectory(Box::new(trajectory)), Some(Duration::from_secs(30))).unwrap();
}

#[test]
fn learner_learns_serves_checkpoints_and_resumes() {
    let root = tempfile::tempdir().unwrap();
    let run = RunDir::new(root.path(), XPID).unwrap();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
    let mut learner = Learner::start(root.path(), "1", &[]);
    let (trajectories_address, params_address) = endpoints(&run, &mut learner);
    assert!(trajectories_address.starts_with("ipc://"), "{trajectories_address}");

    // An actor holding nothing (version 0) gets the initial weights, version 1,
    // once; then "up to date".
    let creds = Credentials::of(&run).unwrap();
    let client = ParamsClient::dial(&params_address, &creds, 64 << 20).unwrap();
    let Body::Params(v1) = request(&client, 0) else { panic!("expected params") };
    assert_eq!(v1.version, 1);
    assert_eq!(v1.fingerprint, cfg().fingerprint());
    assert_eq!(request(&client, 1), Body::UpToDate(UpToDate { version: 1 }));

    // Bad trajectories are dropped and counted, never learned from.
    let push = Push::dial(&trajectories_address, &creds).unwrap();
    let mut bad = trajectory(&mut rng, 5, 0, 1);
    bad.action = Array::from_i64(vec![T + 1], &[0, 1, 99, 0, 0]);
    send(&push, bad);
    let mut short = trajectory(&mut rng, 5, 1, 1);
    short.reward = Array::from_f32(vec![T], &[0.0; T]);
    send(&push, short);
    // Another run's process: its own run id and key.
    let stranger =
        Push::dial(&trajectories_address, &Credentials::ephemeral("another-run")).unwrap();
    send(&stranger, trajectory(&mut rng, 6, 0, 1));

    // B good ones: one update, version 2, new weights.
    for env in 0..B as u32 {
        send(&push, trajectory(&mut rng, 1, env, 1));
    }
    let v2 = wait_for_version(&client, 1, 2, &learner);
    assert_eq!(v2.version, 2, "one batch makes one update");
    let (w1, w2) = (tensors(&v1), tensors(&v2));
    assert_eq!(w1.keys().len(), w2.keys().len());
    let changed = w1.iter().filter(|(name, data)| w2[*name] != **data).count();
    assert!(changed > w1.len() / 2, "only {changed} of {} tensors changed", w1.len());
    // The asker that holds version 2 gets "up to date", an old one the weights
    // again, and so does any other actor: the same bytes, encoded once.
    assert_eq!(request(&client, 2), Body::UpToDate(UpToDate { version: 2 }));
    assert_eq!(request(&client, 1), Body::Params(v2.clone()));
    let other_actor = ParamsClient::dial(&params_address, &creds, 64 << 20).unwrap();
    assert_eq!(request(&other_actor, 0), Body::Params(v2.clone()));
    assert_eq!(request(&other_actor, 2), Body::UpToDate(UpToDate { version: 2 }));

    let rows = csv_rows(&run);
    assert_eq!(rows.len(), 1, "one row per update");
    assert_eq!(rows[0]["step"], "1");
    assert_eq!(rows[0]["frames"], (T * B).to_string());
    assert_eq!(rows[0]["episodes"], B.to_string());
    assert_eq!(rows[0]["mean_episode_return"].parse::<f64>().unwrap(), 7.0);
    assert_eq!(rows[0]["policy_lag"].parse::<f64>().unwrap(), 0.0);
    assert!(rows[0]["total_loss"].parse::<f64>().unwrap().is_finite());
    assert_eq!(rows[0]["learning_rate"].parse::<f64>().unwrap(), LEARNING_RATE);

    // A second batch: one unroll acted with version 2, one with version 1 (lags 0 and 1).
    send(&push, trajectory(&mut rng, 1, 0, 2));
    send(&push, trajectory(&mut rng, 2, 0, 1));
    let v3 = wait_for_version(&client, 2, 3, &learner);
    assert_eq!(v3.version, 3);
    let rows = csv_rows(&run);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["policy_lag"].parse::<f64>().unwrap(), 0.5);
    let lr2: f64 = rows[1]["learning_rate"].parse().unwrap();
    let lr_step = LEARNING_RATE - lr2;
    assert!((lr_step - LEARNING_RATE * (T * B) as f64 / TOTAL_FRAMES as f64).abs() < 1e-12);

    // Ctrl-C: a checkpoint at step 2, exit 0.
    let status = learner.interrupt();
    let log = learner.log();
    assert!(status.success(), "exit status {status}:\n{log}");
    assert!(run.checkpoints().join("ckpt-000000000002/manifest.json").is_file(), "{log}");
    assert!(log.contains("action_out_of_range"), "{log}");
    assert!(log.contains("bad_shape"), "{log}");
    // On ipc messages carry no tag (the operating system keeps other users
    // out): another run's message is refused by its run id.
    assert!(log.contains("wrong_run"), "{log}");
    // Versions 1, 2 and 3 were asked for: each serialized once, however often served.
    assert!(log.contains("3 versions encoded"), "{log}");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.meta_json()).unwrap()).unwrap();
    assert_eq!(meta["end_reason"], "interrupted");
    assert_eq!(meta["config"]["batch_size"], B);
    drop(learner);

    // Without --resume the learner refuses to overwrite the run.
    let mut refused = Learner::start(root.path(), "refused", &[]);
    let status = refused.wait(Duration::from_secs(60));
    assert!(!status.success());
    assert!(refused.log().contains("--resume"), "{}", refused.log());
    drop(refused);

    // --resume: the same weights at the same version, the same step counter and schedule.
    let mut learner = Learner::start(root.path(), "2", &["--resume"]);
    let (_, params_address) = endpoints(&run, &mut learner);
    let creds = Credentials::of(&run).unwrap();
    let client = ParamsClient::dial(&params_address, &creds, 64 << 20).unwrap();
    let Body::Params(resumed) = request(&client, 0) else { panic!("expected params") };
    assert_eq!(resumed.version, 3);
    assert_eq!(tensors(&resumed), tensors(&v3), "resumed weights differ from the checkpointed");
    assert!(learner.log().contains("resumed from"), "{}", learner.log());

    let push = Push::dial(&trajectories_address, &creds).unwrap();
    for env in 0..B as u32 {
        send(&push, trajectory(&mut rng, 1, env, 3));
    }
    let v4 = wait_for_version(&client, 3, 4, &learner);
    assert_eq!(v4.version, 4);
    let rows = csv_rows(&run);
    assert_eq!(rows.len(), 3, "logs.csv continues");
    assert_eq!(rows[2]["step"], "3");
    assert_eq!(rows[2]["frames"], (3 * T * B).to_string());
    let lr3: f64 = rows[2]["learning_rate"].parse().unwrap();
    assert!((lr2 - lr3 - lr_step).abs() < 1e-12, "schedule broke: {lr2} then {lr3}");

    let status = learner.interrupt();
    assert!(status.success(), "{}", learner.log());
    assert!(run.checkpoints().join("ckpt-000000000003/manifest.json").is_file());
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.meta_json()).unwrap()).unwrap();
    assert_eq!(meta["previous_sessions"].as_array().map(Vec::len), Some(1));
}
