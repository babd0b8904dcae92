use tch::Device;

use wire::config::ModelConfig;
use wire::fixtures;

use super::*;
use crate::model::Model;

fn model(cfg: &ModelConfig, seed: i64) -> Model {
    tch::manual_seed(seed);
    Model::new(cfg.clone(), Device::Cpu)
}

/// A copy of `of`'s weights (another test may seed torch between two
/// models: copy, not re-seed).
fn copy(of: &Model) -> Model {
    let mut m = Model::new(of.cfg.clone(), Device::Cpu);
    m.vs.copy(&of.vs).unwrap();
    m
}

/// The actors' mode: each group asks on its own, one pass per group.
#[test]
fn unrolls_replay_to_the_logits_acted_on_one_group_per_pass() {
    let cfg = ModelConfig::small(3);
    let (first, second) = (model(&cfg, 1), model(&cfg, 2));
    let store = UnrollStore::new(replay::UNROLL_LENGTH);
    let mut policy = BatchedPolicy::new(copy(&first), 1, Some(store), 5);
    let rows: Vec<Vec<Row>> =
        replay::GROUPS.iter().map(|&(_, envs, first_env)| policy.add(1, first_env, envs)).collect();
    replay::check(&cfg, &first, &second, |_, requests, weights| {
        if let Some(w) = weights {
            policy.load(2, |m| m.vs.copy(&w.vs)).unwrap();
        }
        let (mut answers, mut unrolls) = (Vec::new(), Vec::new());
        for (o, rows) in requests.iter().zip(&rows) {
            let acted = policy.act(&[Request { observations: o, rows }], Sampling::Sample);
            answers.extend(acted.answers);
            unrolls.extend(acted.unrolls);
        }
        (answers, unrolls)
    });
}

/// Evaluation keeps no unrolls; greedy actions are the logits' argmax; a
/// removed group's rows come back to a new one with a zero state.
#[test]
fn greedy_evaluation_assembles_nothing_and_rows_are_reused() {
    let cfg = ModelConfig::small(3);
    let mut policy = BatchedPolicy::new(model(&cfg, 1), 3, None, 0);
    let rows = policy.add(0, 0, 4);
    for seq in 0..6 {
        let o = fixtures::observations(&cfg, 4, 1, seq, &[true, false, false, true], seq);
        let acted = policy.act(&[Request { observations: &o, rows: &rows }], Sampling::Greedy);
        assert!(acted.unrolls.is_empty());
        let answer = &acted.answers[0];
        answer.validate(&cfg, &o).unwrap();
        assert_eq!(answer.params_version, 3);
        let logits = answer.policy_logits.to_f32("policy_logits").unwrap();
        for (e, &a) in answer.action.to_i64("action").unwrap().iter().enumerate() {
            let row = &logits[e * 3..(e + 1) * 3];
            let best = (0..3).max_by(|&i, &j| row[i].total_cmp(&row[j]).then(j.cmp(&i))).unwrap();
            assert_eq!(a as usize, best, "env {e}: {row:?}");
        }
        assert_eq!(answer.maps.as_ref().unwrap().attention.shape[0], 2, "recorded envs only");
    }
    let capacity = policy.capacity();
    policy.remove(&rows[1..3]);
    assert_eq!(policy.add(0, 9, 2), rows[1..3].to_vec());
    assert_eq!(policy.capacity(), capacity);
}
