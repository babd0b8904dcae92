//! The actor's unrolls follow SPEC section 2's alignment: replaying an unroll
//! through the model from its stored initial state gives back the logits the
//! actor acted with, and step 0 of each unroll repeats step T of the one before.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::config::ModelConfig;
use common::model::{AgentState, Model, Unroll};
use common::protocol::{Body, Trajectory, UpToDate};
use common::rundir::{Endpoints, RunDir};
use common::transport::{ParamsServer, Pull, DEFAULT_MAX_MESSAGE_BYTES};
use tch::{Device, Tensor};
use tests::{bin, KillOnDrop};

const T: usize = 7;

fn replay(model: &Model, t: &Trajectory) -> Vec<f32> {
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
    let state = AgentState::from_protocol(&[&t.initial_state], cfg, Device::Cpu).unwrap();
    let (out, _) = tch::no_grad(|| model.unroll(&input, &state));
    Vec::<f32>::try_from(out.policy_logits.contiguous().view([-1])).unwrap()
}

#[test]
fn replayed_unrolls_give_back_the_actors_logits() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path(), "align").unwrap();
    run.create().unwrap();
    let pull =
        Pull::bind(&run.ipc("trajectories"), "align", DEFAULT_MAX_MESSAGE_BYTES, false).unwrap();
    let server = ParamsServer::bind(&run.ipc("params"), "align", false).unwrap();
    let endpoints = Endpoints {
        trajectories: Some(run.ipc("trajectories")),
        params: Some(run.ipc("params")),
        episodes: None,
    };
    Endpoints::merge_into(&run.endpoints(), &endpoints).unwrap();

    let cfg = ModelConfig::small(3);
    tch::manual_seed(5);
    let model = Model::new(cfg.clone(), Device::Cpu);
    let params = model.to_params(1).unwrap();

    let _actor = KillOnDrop(
        Command::new(bin("actor"))
            .args(["--runs-root", dir.path().to_str().unwrap(), "--xpid", "align"])
            .args(["--preset", "small", "--game", "catch", "--unroll-length", &T.to_string()])
            .args(["--num-envs", "2", "--record-every", "0", "--max-unrolls", "3"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let mut received: Vec<Trajectory> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.len() < 6 && Instant::now() < deadline {
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
        t.validate(&cfg, T).unwrap();
        assert_eq!(t.params_version, 1);
        let actor_logits = t.policy_logits.to_f32("policy_logits").unwrap();
        let replayed = replay(&model, t);
        let worst =
            actor_logits.iter().zip(&replayed).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "env {}: replayed logits differ by {worst}", t.env_index);
    }
    for env in 0..2 {
        let unrolls: Vec<&Trajectory> = received.iter().filter(|t| t.env_index == env).collect();
        assert_eq!(unrolls.len(), 3);
        assert_eq!(unrolls[0].done.data[0], 1, "the first frame starts an episode");
        for pair in unrolls.windows(2) {
            let frame = pair[0].frame.data.len() / (T + 1);
            assert_eq!(pair[1].frame.data[..frame], pair[0].frame.data[T * frame..]);
            assert_eq!(pair[1].action.data[..8], pair[0].action.data[T * 8..]);
            assert_eq!(pair[1].reward.data[..4], pair[0].reward.data[T * 4..]);
        }
    }
}
