//! The replay check both inference modes run (the actor's own policy in
//! `agent`'s tests, the learner's central inference in `learner`'s): two
//! groups of environments (2 and 3 of them) are driven for 14 steps with
//! episode ends and a weights change at step 7, in the middle of an unroll
//! (T = 4). Replaying each unroll the driver returned from its initial state,
//! with the weights live at each step, must give back the logits acted on;
//! actions and last actions must be those answered, and step 0 of each
//! unroll must repeat step T of the one before. Shared so that the check is
//! written once and the modes cannot drift apart.

use std::collections::HashMap;

use tch::{Device, Tensor};

use wire::config::ModelConfig;
use wire::fixtures;
use wire::protocol::{Actions, Observations, Trajectory};

use crate::model::{AgentState, Model, Unroll};

pub const UNROLL_LENGTH: usize = 4;
const STEPS: u64 = 14;
/// The step from which the second weights act (version 2; before: version 1).
pub const SWITCH: u64 = 7;
/// (stream, environments, first env index) of the two groups.
pub const GROUPS: [(u64, usize, u32); 2] = [(10, 2, 0), (20, 3, 100)];

/// Drives a policy through the scenario: `drive(step, requests, weights)`
/// answers the requests of one step (one per group, in order) and returns
/// the unrolls completed; `weights` is `Some` at the step from which the
/// second model's weights (version 2) must act. `first` and `second` are the
/// models of versions 1 and 2; the policy starts with `first`'s weights.
pub fn check(
    cfg: &ModelConfig,
    first: &Model,
    second: &Model,
    mut drive: impl FnMut(u64, &[Observations], Option<&Model>) -> (Vec<Actions>, Vec<Trajectory>),
) {
    let t_len = UNROLL_LENGTH;
    let mut unrolls = Vec::new();
    // answered[stream][step] = (actions, logits)
    type Answered = Vec<(Vec<i64>, Vec<f32>)>;
    let mut answered: HashMap<u64, Answered> = HashMap::new();
    for step in 0..STEPS {
        let requests: Vec<Observations> = GROUPS
            .iter()
            .map(|&(stream, envs, first_env)| {
                let mut o = fixtures::observations(cfg, envs, stream, step, &[], stream + step);
                o.first_env = first_env;
                // Episode ends: env 0 at steps 0 (start), 5 and 9; others random.
                o.done.data[0] = u8::from(matches!(step, 0 | 5 | 9));
                if step == 0 {
                    o.done.data.iter_mut().for_each(|d| *d = 1);
                }
                o
            })
            .collect();
        let (answers, completed) = drive(step, &requests, (step == SWITCH).then_some(second));
        unrolls.extend(completed);
        assert_eq!(answers.len(), requests.len(), "one answer per request");
        for (request, a) in requests.iter().zip(&answers) {
            a.validate(cfg, request).unwrap();
            assert_eq!(a.params_version, if step < SWITCH { 1 } else { 2 });
            answered.entry(request.stream).or_default().push((
                a.action.to_i64("action").unwrap(),
                a.policy_logits.to_f32("policy_logits").unwrap(),
            ));
        }
    }
    // Unrolls end at steps 4, 8 and 12: three per environment, in order.
    assert_eq!(unrolls.len(), 3 * 5);
    let a = cfg.num_actions;
    for &(stream, envs, first_env) in &GROUPS {
        for e in 0..envs {
            let mine: Vec<&Trajectory> =
                unrolls.iter().filter(|tr| tr.env_index == first_env + e as u32).collect();
            assert_eq!(mine.len(), 3, "stream {stream} env {e}");
            for (k, tr) in mine.iter().enumerate() {
                tr.validate(cfg, t_len).unwrap();
                let mut state =
                    AgentState::from_protocol(&[&tr.initial_state], cfg, Device::Cpu).unwrap();
                let logits = tr.policy_logits.to_f32("policy_logits").unwrap();
                let actions = tr.action.to_i64("action").unwrap();
                let last = tr.last_action.to_i64("last_action").unwrap();
                let rewards = tr.reward.to_f32("reward").unwrap();
                let f = cfg.frame_len();
                if k > 0 {
                    let before = mine[k - 1];
                    assert_eq!(tr.frame.data[..f], before.frame.data[t_len * f..], "step 0 = T");
                }
                for t in 0..=t_len {
                    let step = k * t_len + t;
                    let (acted, acted_logits) = &answered[&stream][step];
                    assert_eq!(actions[t], acted[e], "action at step {step}");
                    let previous = if step == 0 { 0 } else { answered[&stream][step - 1].0[e] };
                    assert_eq!(last[t], previous, "last action at step {step}");
                    let model = if (step as u64) < SWITCH { first } else { second };
                    let shape = [1, 1, cfg.height as i64, cfg.width as i64, cfg.in_channels as i64];
                    let input = Unroll {
                        frame: Tensor::from_slice(&tr.frame.data[t * f..(t + 1) * f]).view(shape),
                        reward: Tensor::from_slice(&rewards[t..t + 1]).view([1, 1]),
                        done: Tensor::from_slice(&[tr.done.data[t] == 1]).view([1, 1]),
                        last_action: Tensor::from_slice(&[last[t]]).view([1, 1]),
                    };
                    let (out, next) = model.act(&input, &state);
                    state = next;
                    let replayed = Vec::<f32>::try_from(out.policy_logits.view([-1])).unwrap();
                    let stored = &logits[t * a..(t + 1) * a];
                    for i in 0..a {
                        assert!(
                            (replayed[i] - stored[i]).abs() < 1e-4,
                            "stream {stream} env {e} step {step}: replayed {replayed:?}, stored {stored:?}"
                        );
                    }
                    assert_eq!(stored, &acted_logits[e * a..(e + 1) * a], "stored = answered");
                }
                let started = (k * t_len) as u64;
                assert_eq!(tr.params_version, if started < SWITCH { 1 } else { 2 });
            }
        }
    }
}
