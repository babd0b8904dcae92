//! One learning step: forward over the batch's T+1 steps from its stored
//! initial recurrent states, the IMPALA loss with V-trace
//! (`agent::vtrace`, rewards clipped to [-1, 1] there), backward,
//! gradient-norm clipping, one optimizer step (docs/architecture.md, V-trace
//! and the loss).

use agent::model::Model;
use agent::vtrace::{impala_loss, LossConfig, LossInputs};

use crate::batcher;
use crate::optim::Optimizer;

/// One update from a batch already on the device; returns the row's losses.
pub struct UpdateStats {
    pub total: f64,
    pub pg: f64,
    pub baseline: f64,
    pub entropy: f64,
    pub grad_norm: f64,
}

/// Forward over [T+1, B] from the stored initial states, IMPALA loss,
/// backward, gradient-norm clipping, one optimizer step with `lr`.
pub fn update(
    model: &Model,
    opt: &mut Optimizer,
    batch: &batcher::Batch,
    loss_cfg: &LossConfig,
    grad_norm_clip: f64,
    lr: f64,
) -> UpdateStats {
    let (output, _) = model.unroll(&batch.unroll(), &batch.initial_state);
    let losses = impala_loss(
        &LossInputs {
            learner_logits: &output.policy_logits,
            learner_baseline: &output.baseline,
            behaviour_logits: &batch.steps.policy_logits,
            action: &batch.steps.action,
            reward: &batch.steps.reward,
            done: &batch.steps.done,
        },
        loss_cfg,
    );
    opt.zero_grad();
    losses.total.backward();
    let grad_norm = opt.clip_grad_norm(grad_norm_clip);
    opt.step(lr);
    UpdateStats {
        total: losses.total.double_value(&[]),
        pg: losses.pg.double_value(&[]),
        baseline: losses.baseline.double_value(&[]),
        entropy: losses.entropy.double_value(&[]),
        grad_norm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::OptimizerConfig;
    use crate::{batcher, bench};
    use tch::Device;

    /// Runs the whole update (alignment, loss sign, clipping, RMSProp) in
    /// `precision` on a bandit hidden in the unrolls: reward[t+1] = +1 when
    /// action[t] = 0, else -1. Returns pi(action 0) before each update, and the
    /// model. [`assert_learned`]: it must rise from 1/3 to most of the mass.
    fn learn_bandit(precision: agent::precision::Precision) -> (Vec<f64>, Model) {
        use rand::{Rng, SeedableRng};
        let cfg = wire::config::ModelConfig::small(3);
        tch::manual_seed(0);
        let mut model = Model::new(cfg.clone(), Device::Cpu);
        model.set_precision(precision);
        let mut opt = Optimizer::new(
            &model.vs,
            OptimizerConfig::RmsProp { alpha: 0.99, eps: 0.01, momentum: 0.0 },
        );
        let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
        let (t_len, batch) = (4, 4);
        let mut prob_of_0 = Vec::new();
        for _ in 0..30 {
            let mut trajectories: Vec<_> = (0..batch)
                .map(|i| bench::random_trajectory(&cfg, t_len, 0, i as u32, &mut rng))
                .collect();
            // Behaviour = the current policy, acted on: sample actions from it.
            let probe = batcher::build_batch(&trajectories, &cfg, 1).unwrap();
            let (out, _) = tch::no_grad(|| model.unroll(&probe.unroll(), &probe.initial_state));
            let probs = out.policy_logits.softmax(-1, tch::Kind::Float);
            prob_of_0.push(probs.select(-1, 0).mean(tch::Kind::Float).double_value(&[]));
            let probs = Vec::<f32>::try_from(probs.flatten(0, -1)).unwrap();
            let all_logits = Vec::<f32>::try_from(out.policy_logits.flatten(0, -1)).unwrap();
            for (b, tr) in trajectories.iter_mut().enumerate() {
                let mut actions = Vec::new();
                let mut logits = Vec::new();
                let mut rewards = vec![0f32; t_len + 1];
                for t in 0..=t_len {
                    let at = (t * batch + b) * 3;
                    let p = &probs[at..at + 3];
                    let u: f32 = rng.gen();
                    let a = if u < p[0] {
                        0
                    } else if u < p[0] + p[1] {
                        1
                    } else {
                        2
                    };
                    actions.push(a as i64);
                    logits.extend_from_slice(&all_logits[at..at + 3]);
                    if t < t_len {
                        rewards[t + 1] = if a == 0 { 1.0 } else { -1.0 };
                    }
                }
                tr.action = wire::protocol::Array::from_i64(vec![t_len + 1], &actions);
                tr.policy_logits = wire::protocol::Array::from_f32(vec![t_len + 1, 3], &logits);
                tr.reward = wire::protocol::Array::from_f32(vec![t_len + 1], &rewards);
            }
            let batch = batcher::build_batch(&trajectories, &cfg, 1).unwrap();
            update(&model, &mut opt, &batch, &LossConfig::default(), 40.0, 3e-3);
        }
        (prob_of_0, model)
    }

    fn assert_learned(prob_of_0: &[f64]) {
        let (first, last) = (prob_of_0[0], *prob_of_0.last().unwrap());
        assert!((first - 1.0 / 3.0).abs() < 0.1, "initial policy not near uniform: {first}");
        assert!(last > 0.7, "pi(action 0) went {first:.3} -> {last:.3}: {prob_of_0:?}");
    }

    #[test]
    fn updates_learn_a_bandit_in_the_unrolls() {
        assert_learned(&learn_bandit(agent::precision::Precision::Fp32).0);
    }

    #[test]
    fn updates_learn_a_bandit_in_bf16_on_f32_master_weights() {
        let (prob_of_0, model) = learn_bandit(agent::precision::Precision::Bf16);
        assert_learned(&prob_of_0);
        for (name, v) in model.vs.variables() {
            assert_eq!(v.kind(), tch::Kind::Float, "{name}: the master weights stay f32");
        }
        // What the actors receive is f32 too.
        let params = model.to_params(1).unwrap();
        for (name, t) in agent::model::weights::safetensors_to_tensors(&params.weights).unwrap() {
            assert_eq!(t.kind(), tch::Kind::Float, "{name}: sent to the actors as f32");
        }
    }
}
