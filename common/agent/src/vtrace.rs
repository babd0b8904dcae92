//! V-trace off-policy targets (Espeholt et al. 2018, arXiv 1802.01561, section 4.1)
//! and the IMPALA loss built on them (docs/architecture.md, V-trace and the loss).
//!
//! Notation of the paper. One unroll of length T per batch column; for
//! t = 0..T-1, the behaviour policy μ chose action a_t at x_t, the learner's
//! (target) policy is π, its baseline V, and
//!
//! ```text
//! ρ_t   = min(ρ̄, π(a_t|x_t) / μ(a_t|x_t))         truncated importance weight (ρ̄ = 1)
//! c_i   = λ min(c̄, π(a_i|x_i) / μ(a_i|x_i))       trace-cutting coefficient (c̄ = 1, λ = 1)
//! γ_t   = discount * (1 - done[t+1])              zero across an episode boundary
//! δ_t V = ρ_t (r_t + γ_t V(x_{t+1}) - V(x_t))     temporal difference, V(x_T) = bootstrap
//!
//! v_s = V(x_s) + Σ_{t=s}^{T-1} (Π_{i=s}^{t-1} γ_i c_i) δ_t V
//! ```
//!
//! computed backwards with the recursion
//! `v_s - V(x_s) = δ_s V + γ_s c_s (v_{s+1} - V(x_{s+1}))`, `v_T = V(x_T)`.
//! The policy-gradient advantage uses its own clipped weight (ρ̄_pg = 1):
//!
//! ```text
//! pg_advantage_s = min(ρ̄_pg, π(a_s|x_s)/μ(a_s|x_s)) (r_s + γ_s v_{s+1} - V(x_s))
//! ```
//!
//! [`from_importance_weights`] and [`from_logits`] compute `vs` and
//! `pg_advantages` without gradient, as targets. [`impala_loss`] takes a whole
//! unroll of T+1 steps in the wire layout, aligns it (docs/architecture.md, Step
//! alignment: transition t uses `action[t]`, `policy_logits[t]`, `reward[t+1]`,
//! `done[t+1]`; the bootstrap is the learner's baseline at step T), clips
//! rewards to [-1, 1], and returns the IMPALA loss summed over time and batch:
//!
//! ```text
//! policy gradient  -Σ log π(a_t|x_t) · pg_advantage_t
//! baseline         baseline_cost · 0.5 · Σ (v_t - V(x_t))^2
//! entropy          entropy_cost · Σ_t Σ_a π(a|x_t) log π(a|x_t)     (negative entropy)
//! ```
//!
//! This module is the only place these equations live; the unit tests below
//! check them against a plain float64 loop written from the equations above.

use tch::{Kind, Tensor};

/// Clipping thresholds of V-trace. IMPALA's (and the learner's defaults) are all 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VTraceConfig {
    /// ρ̄: truncation of the importance weight in δ_t V.
    pub clip_rho_threshold: f64,
    /// c̄: truncation of the trace-cutting coefficients c_i.
    pub clip_c_threshold: f64,
    /// ρ̄_pg: truncation of the importance weight in the policy-gradient advantage.
    pub clip_pg_rho_threshold: f64,
    /// λ: scales the c_i (1 = the paper's V-trace).
    pub lambda: f64,
}

impl Default for VTraceConfig {
    fn default() -> Self {
        VTraceConfig {
            clip_rho_threshold: 1.0,
            clip_c_threshold: 1.0,
            clip_pg_rho_threshold: 1.0,
            lambda: 1.0,
        }
    }
}

/// V-trace targets, [T, B] each, detached from the graph.
#[derive(Debug)]
pub struct VTraceReturns {
    /// v_s, the baseline's regression target.
    pub vs: Tensor,
    /// The policy gradient's advantage (with ρ̄_pg-clipped importance weight).
    pub pg_advantages: Tensor,
}

/// V-trace from log importance weights `log_rhos` = log π(a_t) - log μ(a_t).
///
/// Shapes: `log_rhos`, `discounts` (γ_t), `rewards` (r_t), `values` (V(x_t))
/// are [T, B]; `bootstrap_value` (V(x_T)) is [B]. Computed without gradient in
/// the inputs' dtype and device.
pub fn from_importance_weights(
    log_rhos: &Tensor,
    discounts: &Tensor,
    rewards: &Tensor,
    values: &Tensor,
    bootstrap_value: &Tensor,
    cfg: &VTraceConfig,
) -> VTraceReturns {
    tch::no_grad(|| {
        let log_rhos = log_rhos.detach();
        let values = values.detach();
        let bootstrap_value = bootstrap_value.detach();
        let t_len = values.size()[0];
        let rhos = log_rhos.exp();
        let clipped_rhos = rhos.clamp_max(cfg.clip_rho_threshold);
        let cs = rhos.clamp_max(cfg.clip_c_threshold) * cfg.lambda;

        // V(x_{t+1}) for t = 0..T-1, with V(x_T) = bootstrap.
        let values_t_plus_1 =
            Tensor::cat(&[values.narrow(0, 1, t_len - 1), bootstrap_value.unsqueeze(0)], 0);
        let deltas = &clipped_rhos * (rewards + discounts * &values_t_plus_1 - &values);

        // v_s - V(x_s) = δ_s + γ_s c_s (v_{s+1} - V(x_{s+1})), backwards from v_T - V(x_T) = 0.
        let gamma_c = discounts * &cs;
        let mut acc = bootstrap_value.zeros_like();
        let mut vs_minus_v = Vec::with_capacity(t_len as usize);
        for t in (0..t_len).rev() {
            acc = deltas.get(t) + gamma_c.get(t) * &acc;
            vs_minus_v.push(acc.shallow_clone());
        }
        vs_minus_v.reverse();
        let vs = Tensor::stack(&vs_minus_v, 0) + &values;

        let vs_t_plus_1 =
            Tensor::cat(&[vs.narrow(0, 1, t_len - 1), bootstrap_value.unsqueeze(0)], 0);
        let clipped_pg_rhos = rhos.clamp_max(cfg.clip_pg_rho_threshold);
        let pg_advantages = clipped_pg_rhos * (rewards + discounts * vs_t_plus_1 - &values);
        VTraceReturns { vs, pg_advantages }
    })
}

/// log π(a_t | x_t) for logits [T, B, A] and actions i64 [T, B]: [T, B].
pub fn action_log_probs(logits: &Tensor, actions: &Tensor) -> Tensor {
    logits.log_softmax(-1, None).gather(-1, &actions.unsqueeze(-1), false).squeeze_dim(-1)
}

/// V-trace from the behaviour policy's and the learner's logits [T, B, A].
/// Returns the targets and the log importance weights [T, B]. (The argument
/// list is scalable_agent's `vtrace.from_logits`, kept for line-by-line checks.)
#[allow(clippy::too_many_arguments)]
pub fn from_logits(
    behaviour_logits: &Tensor,
    target_logits: &Tensor,
    actions: &Tensor,
    discounts: &Tensor,
    rewards: &Tensor,
    values: &Tensor,
    bootstrap_value: &Tensor,
    cfg: &VTraceConfig,
) -> (VTraceReturns, Tensor) {
    let log_rhos = tch::no_grad(|| {
        action_log_probs(target_logits, actions) - action_log_probs(behaviour_logits, actions)
    });
    let returns =
        from_importance_weights(&log_rhos, discounts, rewards, values, bootstrap_value, cfg);
    (returns, log_rhos)
}

/// Hyperparameters of the IMPALA loss (IMPALA's Atari defaults in [`Default`]; see
/// docs/architecture.md, Defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossConfig {
    pub discount: f64,
    pub baseline_cost: f64,
    pub entropy_cost: f64,
    /// Rewards are clipped to [-reward_clip, reward_clip] before V-trace.
    pub reward_clip: f64,
    pub vtrace: VTraceConfig,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            discount: 0.99,
            baseline_cost: 0.5,
            entropy_cost: 0.01,
            reward_clip: 1.0,
            vtrace: VTraceConfig::default(),
        }
    }
}

/// The summed IMPALA loss and its parts (scalars; `total` carries the graph).
#[derive(Debug)]
pub struct Losses {
    pub total: Tensor,
    pub pg: Tensor,
    pub baseline: Tensor,
    pub entropy: Tensor,
    /// The V-trace targets, [T, B], for diagnostics.
    pub vtrace: VTraceReturns,
}

/// One unroll of T+1 steps in the wire layout (docs/architecture.md, Step
/// alignment), batch-major in the second dimension: every tensor is [T+1, B, ...].
pub struct LossInputs<'a> {
    /// The learner's policy logits over steps 0..=T, [T+1, B, A] (with gradient).
    pub learner_logits: &'a Tensor,
    /// The learner's baseline over steps 0..=T, [T+1, B] (with gradient).
    pub learner_baseline: &'a Tensor,
    /// The behaviour policy's logits, [T+1, B, A].
    pub behaviour_logits: &'a Tensor,
    /// Actions chosen, i64 [T+1, B].
    pub action: &'a Tensor,
    /// Raw rewards that arrived with each frame, [T+1, B].
    pub reward: &'a Tensor,
    /// 1 where the frame starts a new episode, any numeric or bool kind, [T+1, B].
    pub done: &'a Tensor,
}

/// The IMPALA loss (docs/architecture.md, V-trace and the loss) over one batch
/// of unrolls.
///
/// Alignment: transition t (0 <= t < T) uses `action[t]` and the logits at t,
/// `reward[t+1]` (clipped to [-1, 1]) and `done[t+1]`; its discount is
/// `discount * (1 - done[t+1])`; the bootstrap is the learner's baseline at
/// step T, which carries no gradient.
pub fn impala_loss(inputs: &LossInputs, cfg: &LossConfig) -> Losses {
    let t_len = inputs.learner_baseline.size()[0] - 1;
    assert!(t_len >= 1, "an unroll needs at least two steps");
    let kind = inputs.learner_logits.kind();
    let learner_logits = inputs.learner_logits.narrow(0, 0, t_len);
    let values = inputs.learner_baseline.narrow(0, 0, t_len);
    let bootstrap_value = inputs.learner_baseline.get(t_len).detach();
    let behaviour_logits = inputs.behaviour_logits.narrow(0, 0, t_len).to_kind(kind);
    let actions = inputs.action.narrow(0, 0, t_len).to_kind(Kind::Int64);
    let rewards =
        inputs.reward.narrow(0, 1, t_len).to_kind(kind).clamp(-cfg.reward_clip, cfg.reward_clip);
    let not_done = 1.0 - inputs.done.narrow(0, 1, t_len).to_kind(kind);
    let discounts = not_done * cfg.discount;

    let (vtrace, _) = from_logits(
        &behaviour_logits,
        &learner_logits,
        &actions,
        &discounts,
        &rewards,
        &values,
        &bootstrap_value,
        &cfg.vtrace,
    );

    // Policy gradient: -Σ log π(a_t) · pg_advantage_t (advantages are constants).
    let log_pi_a = action_log_probs(&learner_logits, &actions);
    let pg = -(log_pi_a * &vtrace.pg_advantages).sum(kind);
    // Baseline: baseline_cost · 0.5 · Σ (v_s - V(x_s))^2.
    let baseline = (&vtrace.vs - &values).square().sum(kind) * (0.5 * cfg.baseline_cost);
    // Entropy: entropy_cost · Σ π log π (minimising it maximises entropy).
    let log_pi = learner_logits.log_softmax(-1, None);
    let entropy = (log_pi.exp() * &log_pi).sum(kind) * cfg.entropy_cost;

    let total = &pg + &baseline + &entropy;
    Losses { total, pg, baseline, entropy, vtrace }
}

#[cfg(test)]
// The references are plain index loops on purpose: they read like the equations.
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use tch::Device;

    /// Row-major [T][B] arrays of f64.
    type Grid = Vec<Vec<f64>>;

    /// The ground truth, written from the equations in the module doc as a
    /// plain double loop: v_s = V(x_s) + Σ_t (Π_{i<t} γ_i c_i) δ_t V.
    fn reference_vtrace(
        log_rhos: &Grid,
        discounts: &Grid,
        rewards: &Grid,
        values: &Grid,
        bootstrap: &[f64],
        cfg: &VTraceConfig,
    ) -> (Grid, Grid) {
        let t_len = values.len();
        let b_len = bootstrap.len();
        let mut vs = vec![vec![0.0; b_len]; t_len];
        let mut adv = vec![vec![0.0; b_len]; t_len];
        for b in 0..b_len {
            let v = |t: usize| if t == t_len { bootstrap[b] } else { values[t][b] };
            let rho = |t: usize| log_rhos[t][b].exp();
            for s in 0..t_len {
                let mut sum = 0.0;
                for t in s..t_len {
                    let mut product = 1.0;
                    for i in s..t {
                        product *= discounts[i][b] * cfg.lambda * rho(i).min(cfg.clip_c_threshold);
                    }
                    let delta = rho(t).min(cfg.clip_rho_threshold)
                        * (rewards[t][b] + discounts[t][b] * v(t + 1) - v(t));
                    sum += product * delta;
                }
                vs[s][b] = v(s) + sum;
            }
            for s in 0..t_len {
                let vs_next = if s + 1 == t_len { bootstrap[b] } else { vs[s + 1][b] };
                adv[s][b] = rho(s).min(cfg.clip_pg_rho_threshold)
                    * (rewards[s][b] + discounts[s][b] * vs_next - v(s));
            }
        }
        (vs, adv)
    }

    fn tensor(grid: &Grid) -> Tensor {
        let flat: Vec<f64> = grid.iter().flatten().copied().collect();
        Tensor::from_slice(&flat).view([grid.len() as i64, grid[0].len() as i64])
    }

    fn grid(t: &Tensor) -> Grid {
        let size = t.size();
        (0..size[0]).map(|i| (0..size[1]).map(|j| t.double_value(&[i, j])).collect()).collect()
    }

    fn random_grid(rng: &mut impl Rng, t: usize, b: usize, lo: f64, hi: f64) -> Grid {
        (0..t).map(|_| (0..b).map(|_| rng.gen_range(lo..hi)).collect()).collect()
    }

    /// Discounts with episode ends inside the unroll: γ = 0.9 or 0 (done).
    fn random_discounts(rng: &mut impl Rng, t: usize, b: usize) -> Grid {
        (0..t)
            .map(|_| (0..b).map(|_| if rng.gen_bool(0.2) { 0.0 } else { 0.9 }).collect())
            .collect()
    }

    fn assert_close(what: &str, got: &Grid, want: &Grid, tol: f64) {
        for (t, (g, w)) in got.iter().zip(want).enumerate() {
            for (b, (g, w)) in g.iter().zip(w).enumerate() {
                assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{t}][{b}]: {g} vs {w}");
            }
        }
    }

    struct Case {
        log_rhos: Grid,
        discounts: Grid,
        rewards: Grid,
        values: Grid,
        bootstrap: Vec<f64>,
    }

    impl Case {
        fn random(rng: &mut impl Rng, t: usize, b: usize) -> Case {
            Case {
                // exp(±1.5): both sides of every clipping threshold.
                log_rhos: random_grid(rng, t, b, -1.5, 1.5),
                discounts: random_discounts(rng, t, b),
                rewards: random_grid(rng, t, b, -1.0, 1.0),
                values: random_grid(rng, t, b, -2.0, 2.0),
                bootstrap: (0..b).map(|_| rng.gen_range(-2.0..2.0)).collect(),
            }
        }

        fn run(&self, cfg: &VTraceConfig) -> (Grid, Grid) {
            let out = from_importance_weights(
                &tensor(&self.log_rhos),
                &tensor(&self.discounts),
                &tensor(&self.rewards),
                &tensor(&self.values),
                &Tensor::from_slice(&self.bootstrap),
                cfg,
            );
            (grid(&out.vs), grid(&out.pg_advantages))
        }

        fn reference(&self, cfg: &VTraceConfig) -> (Grid, Grid) {
            reference_vtrace(
                &self.log_rhos,
                &self.discounts,
                &self.rewards,
                &self.values,
                &self.bootstrap,
                cfg,
            )
        }
    }

    #[test]
    fn vtrace_matches_a_plain_float64_loop() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
        let thresholds = [
            VTraceConfig::default(),
            VTraceConfig {
                clip_rho_threshold: 3.7,
                clip_c_threshold: 0.5,
                clip_pg_rho_threshold: 2.2,
                lambda: 0.9,
            },
        ];
        for (t, b) in [(1, 1), (2, 3), (5, 2), (20, 8), (50, 4)] {
            for cfg in &thresholds {
                let case = Case::random(&mut rng, t, b);
                let (vs, adv) = case.run(cfg);
                let (want_vs, want_adv) = case.reference(cfg);
                assert_close("vs", &vs, &want_vs, 1e-10);
                assert_close("pg_advantages", &adv, &want_adv, 1e-10);
            }
        }
    }

    #[test]
    fn on_policy_vs_is_the_n_step_bootstrapped_return() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(11);
        let (t_len, b_len) = (13, 5);
        let mut case = Case::random(&mut rng, t_len, b_len);
        case.log_rhos = vec![vec![0.0; b_len]; t_len];
        let (vs, _) = case.run(&VTraceConfig::default());
        for b in 0..b_len {
            for s in 0..t_len {
                // G_s = r_s + γ_s r_{s+1} + ... + (Π γ) V(x_T)
                let mut ret = case.bootstrap[b];
                for t in (s..t_len).rev() {
                    ret = case.rewards[t][b] + case.discounts[t][b] * ret;
                }
                assert!((vs[s][b] - ret).abs() < 1e-10, "vs[{s}][{b}] {} vs {ret}", vs[s][b]);
            }
        }
    }

    #[test]
    fn rho_clipping_changes_the_result_only_where_rho_exceeds_one() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(13);
        let (t_len, b_len) = (10, 3);
        let mut case = Case::random(&mut rng, t_len, b_len);
        // No discount is 0 here, so a change at step k reaches every s <= k.
        case.discounts = vec![vec![0.95; b_len]; t_len];
        let no_clip = VTraceConfig {
            clip_rho_threshold: f64::INFINITY,
            clip_c_threshold: f64::INFINITY,
            clip_pg_rho_threshold: f64::INFINITY,
            lambda: 1.0,
        };
        // Every rho <= 1: clipping is a no-op.
        case.log_rhos = random_grid(&mut rng, t_len, b_len, -2.0, 0.0);
        let (vs_clip, adv_clip) = case.run(&VTraceConfig::default());
        let (vs_free, adv_free) = case.run(&no_clip);
        assert_close("vs", &vs_clip, &vs_free, 0.0);
        assert_close("pg_advantages", &adv_clip, &adv_free, 0.0);

        // One rho > 1 at step k of column 1: vs changes at s <= k only,
        // pg_advantages at s <= k only, and other columns not at all.
        let k = 6;
        case.log_rhos[k][1] = 0.8;
        let (vs_clip, adv_clip) = case.run(&VTraceConfig::default());
        let (vs_free, adv_free) = case.run(&no_clip);
        for s in 0..t_len {
            for b in 0..b_len {
                let changed = b == 1 && s <= k;
                assert_eq!(
                    vs_clip[s][b] != vs_free[s][b],
                    changed,
                    "vs[{s}][{b}] {} vs {}",
                    vs_clip[s][b],
                    vs_free[s][b]
                );
                assert_eq!(adv_clip[s][b] != adv_free[s][b], changed, "pg_advantages[{s}][{b}]");
            }
        }
    }

    /// The loss against a plain loop over the wire layout, with its own
    /// log-softmax, alignment, reward clipping and V-trace.
    #[test]
    fn impala_loss_matches_a_plain_float64_loop() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(17);
        let cfg = LossConfig::default();
        for (t_len, b_len, a_len) in [(1, 2, 3), (6, 3, 4), (20, 4, 6)] {
            let n = t_len + 1;
            let rand_vec = |rng: &mut rand_pcg::Pcg64, len: usize, s: f64| -> Vec<f64> {
                (0..len).map(|_| rng.gen_range(-s..s)).collect()
            };
            let learner_logits = rand_vec(&mut rng, n * b_len * a_len, 2.0);
            let behaviour_logits = rand_vec(&mut rng, n * b_len * a_len, 2.0);
            let baseline = rand_vec(&mut rng, n * b_len, 2.0);
            let reward = rand_vec(&mut rng, n * b_len, 3.0); // beyond the clip
            let done: Vec<f64> =
                (0..n * b_len).map(|_| if rng.gen_bool(0.2) { 1.0 } else { 0.0 }).collect();
            let action: Vec<i64> = (0..n * b_len).map(|_| rng.gen_range(0..a_len as i64)).collect();

            let shape3 = [n as i64, b_len as i64, a_len as i64];
            let shape2 = [n as i64, b_len as i64];
            let ll = Tensor::from_slice(&learner_logits).view(shape3).set_requires_grad(true);
            let lb = Tensor::from_slice(&baseline).view(shape2).set_requires_grad(true);
            let losses = impala_loss(
                &LossInputs {
                    learner_logits: &ll,
                    learner_baseline: &lb,
                    behaviour_logits: &Tensor::from_slice(&behaviour_logits).view(shape3),
                    action: &Tensor::from_slice(&action).view(shape2),
                    reward: &Tensor::from_slice(&reward).view(shape2),
                    done: &Tensor::from_slice(&done).view(shape2).to_kind(Kind::Bool),
                },
                &cfg,
            );

            // Reference.
            let log_softmax = |logits: &[f64], t: usize, b: usize| -> Vec<f64> {
                let row = &logits[(t * b_len + b) * a_len..][..a_len];
                let max = row.iter().cloned().fold(f64::MIN, f64::max);
                let lse = max + row.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
                row.iter().map(|x| x - lse).collect()
            };
            let at = |v: &[f64], t: usize, b: usize| v[t * b_len + b];
            let mut log_rhos = vec![vec![0.0; b_len]; t_len];
            let mut discounts = log_rhos.clone();
            let mut rewards = log_rhos.clone();
            let mut values = log_rhos.clone();
            for t in 0..t_len {
                for b in 0..b_len {
                    let a = action[t * b_len + b] as usize;
                    log_rhos[t][b] = log_softmax(&learner_logits, t, b)[a]
                        - log_softmax(&behaviour_logits, t, b)[a];
                    discounts[t][b] = 0.99 * (1.0 - at(&done, t + 1, b));
                    rewards[t][b] = at(&reward, t + 1, b).clamp(-1.0, 1.0);
                    values[t][b] = at(&baseline, t, b);
                }
            }
            let bootstrap: Vec<f64> = (0..b_len).map(|b| at(&baseline, t_len, b)).collect();
            let (vs, adv) =
                reference_vtrace(&log_rhos, &discounts, &rewards, &values, &bootstrap, &cfg.vtrace);
            let (mut pg, mut base, mut ent) = (0.0, 0.0, 0.0);
            for t in 0..t_len {
                for b in 0..b_len {
                    let lp = log_softmax(&learner_logits, t, b);
                    pg -= lp[action[t * b_len + b] as usize] * adv[t][b];
                    base += 0.5 * (vs[t][b] - values[t][b]).powi(2);
                    ent += lp.iter().map(|l| l.exp() * l).sum::<f64>();
                }
            }
            let (base, ent) = (base * cfg.baseline_cost, ent * cfg.entropy_cost);
            let close = |got: &Tensor, want: f64, what: &str| {
                let got = got.double_value(&[]);
                assert!((got - want).abs() < 1e-9 * (1.0 + want.abs()), "{what}: {got} vs {want}");
            };
            close(&losses.pg, pg, "pg");
            close(&losses.baseline, base, "baseline");
            close(&losses.entropy, ent, "entropy");
            close(&losses.total, pg + base + ent, "total");

            // Gradients flow into the logits and baselines of steps 0..T-1
            // only: the bootstrap at step T is a constant target.
            losses.total.backward();
            let grad_b = lb.grad();
            assert_eq!(grad_b.get(t_len as i64).abs().sum(Kind::Double).double_value(&[]), 0.0);
            assert!(grad_b.get(0).abs().sum(Kind::Double).double_value(&[]) > 0.0);
            let grad_l = ll.grad();
            assert_eq!(grad_l.get(t_len as i64).abs().sum(Kind::Double).double_value(&[]), 0.0);
        }
    }

    #[test]
    fn loss_runs_in_float32() {
        let ll = Tensor::zeros([4, 2, 3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let lb = Tensor::zeros([4, 2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let losses = impala_loss(
            &LossInputs {
                learner_logits: &ll,
                learner_baseline: &lb,
                behaviour_logits: &Tensor::zeros([4, 2, 3], (Kind::Float, Device::Cpu)),
                action: &Tensor::zeros([4, 2], (Kind::Int64, Device::Cpu)),
                reward: &Tensor::ones([4, 2], (Kind::Float, Device::Cpu)),
                done: &Tensor::zeros([4, 2], (Kind::Uint8, Device::Cpu)),
            },
            &LossConfig::default(),
        );
        assert_eq!(losses.total.kind(), Kind::Float);
        // Uniform policy: entropy term = entropy_cost * T * B * (-ln 3).
        let want = 0.01 * 3.0 * 2.0 * -(3f64.ln());
        assert!((losses.entropy.double_value(&[]) - want).abs() < 1e-5);
    }
}
