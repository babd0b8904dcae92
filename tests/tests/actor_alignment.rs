//! The actor's unrolls follow the step alignment of docs/architecture.md
//! (authoritative: `common/wire/src/protocol.rs`): replaying an unroll through the
//! model from its stored initial state gives back the logits the actor acted with and the state the next unroll starts from, and step 0 of
//! each unroll repeats step T of the one before.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent::model::{AgentState, Model, Unroll};
use tch::{Device, Tensor};
use tests::{bin, KillOnDrop};
use wire::config::ModelConfig;
use wire::protocol::{Body, Trajectory, UpToDate};
use wire::rundir::{Endpoints, RunDir};
use wire::transport::{ParamsServer, Pull, DEFAULT_MAX_MESSAGE_BYTES};

const T: usize = 7;

/// Replays an unroll's T + 1 steps from its stored initial state: the logits
/// of every step, and the recurrent state after frames 0..T-1, which is where
/// the actor's next unroll starts (its frame 0 repeats this one's frame T).
fn replay(model: &Model, t: &Trajectory) -> (Vec<f32>, AgentState) {
    let cfg = &model.cfg;
    let n = (T + 1) as i64;
    let input = Unroll {
        frame: Tensor::from_slice(&t.frame.data).view([
            n,
            1,
            cfg.height as i64,
            cfg.width as i64,
            cfg.in_channels as i64,
        ]),
        reward: Tensor::from_slice(&t.reward.to_f32("reward").unwrap()).view([n, 1]),
        done: Tensor::from_slice(&t.done.data.iter().map(|&d| d == 1).collect::<Vec<_>>())
            .view([n, 1]),
        last_action: Tensor::from_slice(&t.last_action.to_i64("last_action").unwrap()).view([n, 1]),
    };
    let steps = |from: i64, len: i64| Unroll {
        frame: input.frame.narrow(0, from, len),
        reward: input.reward.narrow(0, from, len),
        done: input.done.narrow(0, from, len),
        last_action: input.last_action.narrow(0, from, len),
    };
    let state = AgentState::from_protocol(&[&t.initial_state], cfg, Device::Cpu).unwrap();
    let (first, state_t) = tch::no_grad(|| model.unroll(&steps(0, T as i64), &state));
    let (last, _) = tch::no_grad(|| model.unroll(&steps(T as i64, 1), &state_t));
    let logits = Tensor::cat(&[first.policy_logits, last.policy_logits], 0);
    (Vec::<f32>::try_from(logits.contiguous().view([-1])).unwrap(), state_t)
}

fn max_difference(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn replayed_unrolls_give_back_the_actors_logits() {
    alignment("small", ModelConfig::small(3), 1);
}

/// At the paper preset the actor's pass runs the ConvLSTM gates as Winograd
/// (`Model::act`) and the replay, as the learner does, through libtorch's
/// convolution: logits and carried-over states must still agree. Two threads,
/// so the Winograd blocks run on libtorch's OpenMP team as in a real actor.
#[test]
fn paper_preset_actor_matches_the_learners_pass() {
    alignment("paper", ModelConfig::paper(3), 2);
}

/// Runs the actor binary on `game` for 3 unrolls of 2 envs, as the learner
/// would see it (params served here, trajectories pulled here). Returns the
/// model it acted with and the 6 trajectories.
fn collect(
    preset: &str,
    game: &str,
    cfg: &ModelConfig,
    threads: i32,
    unroll_length: usize,
) -> (Model, Vec<Trajectory>) {
    tch::set_num_threads(threads);
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path(), "align").unwrap();
    run.create().unwrap();
    let creds = wire::auth::Credentials::of(&run).unwrap();
    let pull =
        Pull::bind(&run.ipc("trajectories"), &creds, DEFAULT_MAX_MESSAGE_BYTES, false).unwrap();
    let server = ParamsServer::bind(&run.ipc("params"), &creds, false).unwrap();
    let endpoints = Endpoints {
        trajectories: Some(run.ipc("trajectories")),
        params: Some(run.ipc("params")),
        episodes: None,
        inference: None,
    };
    Endpoints::merge_into(&run.endpoints(), &endpoints).unwrap();

    tch::manual_seed(5);
    let model = Model::new(cfg.clone(), Device::Cpu);
    let params = model.to_params(1).unwrap();

    let mut actor = KillOnDrop(
        Command::new(bin("actor"))
            .args(["--runs-root", dir.path().to_str().unwrap(), "--xpid", "align"])
            .args(["--preset", preset, "--game", game])
            .args(["--unroll-length", &unroll_length.to_string()])
            .args(["--threads", &threads.to_string(), "--precision", "fp32"])
            .args(["--num-envs", "2", "--record-every", "0", "--max-unrolls", "3"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let mut received: Vec<Trajectory> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.len() < 6 && Instant::now() < deadline {
        if let Some(status) = actor.try_wait().unwrap() {
            assert!(status.success(), "the actor stopped with {status} (its error is above)");
        }
        if let Some(Ok(request)) = server.recv(Some(Duration::from_millis(20))).unwrap() {
            let answer = match request {
                Body::ParamsRequest(r) if r.version < 1 => Body::Params(params.clone()),
                _ => Body::UpToDate(UpToDate { version: 1 }),
            };
            server.reply(&answer).unwrap();
        }
        if let Some(message) = pull.recv(Some(Duration::from_millis(20))).unwrap() {
            match message.unwrap() {
                Body::Trajectory(t) => received.push(*t),
                other => panic!("unexpected {}", other.kind()),
            }
        }
    }
    assert_eq!(received.len(), 6, "expected 3 unrolls of 2 envs");
    for t in &received {
        t.validate(cfg, unroll_length).unwrap();
        assert_eq!(t.params_version, 1);
    }
    (model, received)
}

fn alignment(preset: &str, cfg: ModelConfig, threads: i32) {
    let (model, received) = collect(preset, "catch", &cfg, threads, T);
    for t in &received {
        let actor_logits = t.policy_logits.to_f32("policy_logits").unwrap();
        let (replayed, _) = replay(&model, t);
        let worst =
            actor_logits.iter().zip(&replayed).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "env {}: replayed logits differ by {worst}", t.env_index);
    }
    for env in 0..2 {
        let unrolls: Vec<&Trajectory> = received.iter().filter(|t| t.env_index == env).collect();
        assert_eq!(unrolls.len(), 3);
        assert_eq!(unrolls[0].done.data[0], 1, "the first frame starts an episode");
        for pair in unrolls.windows(2) {
            // The recurrent state carries over: the actor's state after frames
            // 0..T-1 of one unroll, computed in its own pass, is the next one's
            // initial state. The ConvLSTM's cell state shows any difference in
            // the gate convolution, which the logits at initialisation barely do.
            let (_, replayed) = replay(&model, pair[0]);
            let next =
                AgentState::from_protocol(&[&pair[1].initial_state], &cfg, Device::Cpu).unwrap();
            for (name, a, b) in [
                ("vision_h", &replayed.vision_h, &next.vision_h),
                ("vision_c", &replayed.vision_c, &next.vision_c),
                ("core_h", &replayed.core_h, &next.core_h),
                ("core_c", &replayed.core_c, &next.core_c),
            ] {
                let d = max_difference(a, b);
                assert!(
                    d < 1e-4,
                    "env {env}: the replayed {name} differs by {d} from the next unroll's"
                );
            }
            let frame = pair[0].frame.data.len() / (T + 1);
            assert_eq!(pair[1].frame.data[..frame], pair[0].frame.data[T * frame..]);
            assert_eq!(pair[1].action.data[..8], pair[0].action.data[T * 8..]);
            assert_eq!(pair[1].reward.data[..4], pair[0].reward.data[T * 4..]);
        }
    }
}

/// End to end on the scripted `probe` environment, whose rewards and episode
/// ends are known (`env::probe`): in every unroll the actor sends,
/// `reward[t+1]` is the reward of `action[t]` at the position of `frame[t]`
/// and `done[t+1]` marks the end of the episode `action[t]` finished; and the
/// learner's loss pairs them the same way: with its own policy as the
/// behaviour policy, a zero baseline and discount 0, every V-trace target
/// and policy-gradient advantage is exactly the scripted reward of the
/// action taken. A reward recorded one step early or late fails here; a
/// replay of the trajectory's own rewards could not tell.
#[test]
fn probe_rewards_and_episode_ends_are_paired_with_their_actions() {
    use agent::vtrace::{impala_loss, LossConfig, LossInputs};
    use env::probe::{reward_for, EPISODE_STEPS};

    let cfg = ModelConfig::small(3);
    // 10 steps per unroll against the probe's 7 per episode: the ends fall at
    // every place in an unroll.
    const T: usize = 10;
    let (_, received) = collect("small", "probe", &cfg, 1, T);
    let mut checked = 0;
    let mut ends_seen = 0;
    for t in &received {
        let action = t.action.to_i64("action").unwrap();
        let reward = t.reward.to_f32("reward").unwrap();
        let done = &t.done.data;
        let step = t.episode_step.to_i64("episode_step").unwrap();
        // The position of frame t: 0 where an episode starts, else the steps
        // taken so far, which the actor reports in episode_step.
        let position = |i: usize| if done[i] == 1 { 0 } else { step[i] as usize };
        let mut expected = Vec::with_capacity(T);
        for i in 0..T {
            let p = position(i);
            let r = reward_for(p, action[i] as usize);
            assert_eq!(
                reward[i + 1],
                r,
                "env {} step {i}: action {} at position {p} earns {r}, but reward[{}] = {}",
                t.env_index,
                action[i],
                i + 1,
                reward[i + 1]
            );
            let ends = p + 1 == EPISODE_STEPS;
            assert_eq!(done[i + 1] == 1, ends, "env {} step {i}: done[{}]", t.env_index, i + 1);
            ends_seen += usize::from(ends);
            expected.push(f64::from(r));
            checked += 1;
        }

        // The learner's pairing of the same unroll, [T+1, 1].
        let n = (T + 1) as i64;
        let logits = Tensor::from_slice(&t.policy_logits.to_f32("policy_logits").unwrap()).view([
            n,
            1,
            cfg.num_actions as i64,
        ]);
        let losses = impala_loss(
            &LossInputs {
                learner_logits: &logits,
                learner_baseline: &Tensor::zeros([n, 1], (tch::Kind::Float, Device::Cpu)),
                behaviour_logits: &logits,
                action: &Tensor::from_slice(&action).view([n, 1]),
                reward: &Tensor::from_slice(&reward).view([n, 1]),
                done: &Tensor::from_slice(done).view([n, 1]),
            },
            &LossConfig { discount: 0.0, ..LossConfig::default() },
        );
        for (name, targets) in
            [("vs", &losses.vtrace.vs), ("pg_advantages", &losses.vtrace.pg_advantages)]
        {
            let got = Vec::<f64>::try_from(targets.to_kind(tch::Kind::Double).view([-1])).unwrap();
            assert_eq!(got, expected, "env {}: the learner's {name}", t.env_index);
        }
    }
    assert_eq!(checked, 6 * T);
    assert!(ends_seen >= 4, "too few episode ends to check: {ends_seen}");
}
