//! The learner's optimizers, RMSProp (IMPALA's, the default) and Adam, over a
//! var store's trainable variables, with a state that can be saved and
//! restored (tch's own optimizers hide theirs, so `--resume` could not
//! continue them).
//!
//! RMSProp is PyTorch's `torch.optim.RMSprop` (which TorchBeast uses), with
//! ε added outside the square root:
//!
//! ```text
//! square_avg ← α · square_avg + (1 - α) · g²
//! buf        ← momentum · buf + g / (√square_avg + ε)        (buf = that quotient when momentum = 0)
//! θ          ← θ - lr · buf
//! ```
//!
//! Adam is PyTorch's `torch.optim.Adam` (bias-corrected moments):
//!
//! ```text
//! exp_avg    ← β₁ · exp_avg + (1 - β₁) · g
//! exp_avg_sq ← β₂ · exp_avg_sq + (1 - β₂) · g²
//! θ          ← θ - lr · (exp_avg / (1 - β₁ᵗ)) / (√(exp_avg_sq / (1 - β₂ᵗ)) + ε)
//! ```
//!
//! Why Adam is offered: RMSProp's ε = 0.01 sits above the gradients of the
//! vision core and the queries at initialisation (1e-5 to 2e-3 against ~100 for
//! the baseline head), so those parameters hardly move; a small ε lets them
//! move, but RMSProp's zero-started average then makes its first steps ~10x
//! the learning rate and the policy collapses. Adam's bias correction removes
//! that start-up transient. On catch (`small` preset) the agent learned with
//! Adam and did not with RMSProp at any setting tried (docs/learning.md).
//!
//! Gradient-norm clipping ([`Optimizer::clip_grad_norm`]) is
//! `torch.nn.utils.clip_grad_norm_`: one L2 norm over all gradients together.

use tch::{nn, Kind, Tensor};

/// Which update rule, with its hyperparameters (IMPALA's defaults for RMSProp:
/// α 0.99, ε 0.01, momentum 0; docs/architecture.md, Defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptimizerConfig {
    RmsProp { alpha: f64, eps: f64, momentum: f64 },
    Adam { beta1: f64, beta2: f64, eps: f64 },
}

impl OptimizerConfig {
    /// The names of the two per-parameter state slots, as PyTorch calls them.
    fn slot_names(&self) -> [&'static str; 2] {
        match self {
            OptimizerConfig::RmsProp { .. } => ["square_avg", "momentum_buffer"],
            OptimizerConfig::Adam { .. } => ["exp_avg_sq", "exp_avg"],
        }
    }
}

/// Name of the update counter in the saved state (Adam's bias correction needs it), f32 [1].
const STEP_KEY: &str = "step";

/// An optimizer with named, checkpointable state.
pub struct Optimizer {
    cfg: OptimizerConfig,
    /// (name, parameter), sorted by name.
    params: Vec<(String, Tensor)>,
    /// RMSProp: square_avg; Adam: exp_avg_sq.
    second_moment: Vec<Tensor>,
    /// RMSProp: momentum_buffer; Adam: exp_avg.
    first_moment: Vec<Tensor>,
    /// Updates taken so far.
    steps: u64,
}

impl Optimizer {
    /// Tracks every trainable variable of `vs`, state initialised to zero.
    pub fn new(vs: &nn::VarStore, cfg: OptimizerConfig) -> Self {
        let mut params: Vec<(String, Tensor)> =
            vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let second_moment = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let first_moment = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Optimizer { cfg, params, second_moment, first_moment, steps: 0 }
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// Scales all gradients so that their joint L2 norm is at most `max_norm`.
    /// Returns the norm before clipping.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        tch::no_grad(|| {
            let norms: Vec<Tensor> = self
                .params
                .iter()
                .map(|(_, p)| p.grad())
                .filter(|g| g.defined())
                .map(|g| g.norm())
                .collect();
            if norms.is_empty() {
                return 0.0;
            }
            let total = Tensor::stack(&norms, 0).norm().double_value(&[]);
            let coef = max_norm / (total + 1e-6);
            if coef < 1.0 {
                for (_, p) in &self.params {
                    let mut g = p.grad();
                    if g.defined() {
                        let _ = g.g_mul_scalar_(coef);
                    }
                }
            }
            total
        })
    }

    /// One update with learning rate `lr`.
    pub fn step(&mut self, lr: f64) {
        self.steps += 1;
        let t = self.steps as i32;
        let cfg = self.cfg;
        tch::no_grad(|| {
            for (i, (_, p)) in self.params.iter_mut().enumerate() {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let second = &mut self.second_moment[i];
                let first = &mut self.first_moment[i];
                match cfg {
                    OptimizerConfig::RmsProp { alpha, eps, momentum } => {
                        let _ = second.g_mul_scalar_(alpha);
                        let _ = second.addcmul_(&(&g * (1.0 - alpha)), &g);
                        let avg = second.sqrt() + eps;
                        if momentum > 0.0 {
                            let _ = first.g_mul_scalar_(momentum);
                            let _ = first.addcdiv_(&g, &avg);
                            let _ = p.g_sub_(&(&*first * lr));
                        } else {
                            let _ = p.g_sub_(&(g / avg * lr));
                        }
                    }
                    OptimizerConfig::Adam { beta1, beta2, eps } => {
                        let _ = first.g_mul_scalar_(beta1);
                        let _ = first.g_add_(&(&g * (1.0 - beta1)));
                        let _ = second.g_mul_scalar_(beta2);
                        let _ = second.addcmul_(&(&g * (1.0 - beta2)), &g);
                        let correction1 = 1.0 - beta1.powi(t);
                        let correction2 = 1.0 - beta2.powi(t);
                        let denom = (&*second / correction2).sqrt() + eps;
                        let _ = p.g_sub_(&(&*first / denom * (lr / correction1)));
                    }
                }
            }
        })
    }

    /// The optimizer state as named tensors: per parameter its two slots
    /// (`square_avg.<param>` and `momentum_buffer.<param>` for RMSProp,
    /// `exp_avg.<param>` and `exp_avg_sq.<param>` for Adam), and `step`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let [second, first] = self.cfg.slot_names();
        let mut out = Vec::with_capacity(2 * self.params.len() + 1);
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.push((format!("{second}.{name}"), self.second_moment[i].shallow_clone()));
            out.push((format!("{first}.{name}"), self.first_moment[i].shallow_clone()));
        }
        // Stored as f32 like the rest of the checkpoint: exact to 2^24 updates,
        // and past a few thousand updates Adam's bias correction is 1 anyway.
        out.push((STEP_KEY.to_string(), Tensor::from_slice(&[self.steps as f32])));
        out
    }

    /// Restores a state written by [`Optimizer::state`]: every tensor present
    /// with the parameter's shape, or nothing changes. A state without `step`
    /// (written before Adam existed) restores as RMSProp's, which does not use it.
    pub fn load_state(&mut self, lookup: impl Fn(&str) -> Option<Tensor>) -> Result<(), String> {
        let [second, first] = self.cfg.slot_names();
        let mut loaded = Vec::with_capacity(2 * self.params.len());
        for (i, (name, p)) in self.params.iter().enumerate() {
            for (prefix, target) in
                [(second, &self.second_moment[i]), (first, &self.first_moment[i])]
            {
                let key = format!("{prefix}.{name}");
                let t = lookup(&key).ok_or_else(|| {
                    format!(
                        "optimizer state {key} missing (was the checkpoint written with another \
                         --optimizer? resume with the run's own)"
                    )
                })?;
                if t.size() != p.size() {
                    return Err(format!(
                        "optimizer state {key}: shape {:?}, parameter has {:?}",
                        t.size(),
                        p.size()
                    ));
                }
                loaded.push((target.shallow_clone(), t));
            }
        }
        let steps = match (lookup(STEP_KEY), self.cfg) {
            (Some(t), _) => t.double_value(&[0]).max(0.0) as u64,
            (None, OptimizerConfig::RmsProp { .. }) => 0,
            (None, OptimizerConfig::Adam { .. }) => {
                return Err(format!("optimizer state {STEP_KEY} missing"));
            }
        };
        tch::no_grad(|| {
            for (mut target, t) in loaded {
                target.copy_(&t.to_kind(Kind::Float));
            }
        });
        self.steps = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// Two steps of our RMSProp against the update written out by hand.
    #[test]
    fn matches_torch_rmsprop_update() {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().var_copy("w", &Tensor::from_slice(&[1.0f32, -2.0, 0.5]));
        let cfg = OptimizerConfig::RmsProp { alpha: 0.99, eps: 0.01, momentum: 0.0 };
        let mut opt = Optimizer::new(&vs, cfg);
        let (mut theta, mut sq) = ([1.0f64, -2.0, 0.5], [0.0f64; 3]);
        for _ in 0..2 {
            opt.zero_grad();
            // loss = sum(w^3): g = 3 w^2
            (&w * &w * &w).sum(Kind::Float).backward();
            opt.step(0.1);
            for i in 0..3 {
                let g = 3.0 * theta[i] * theta[i];
                sq[i] = 0.99 * sq[i] + 0.01 * g * g;
                theta[i] -= 0.1 * g / (sq[i].sqrt() + 0.01);
            }
        }
        for (i, want) in theta.iter().enumerate() {
            let got = w.double_value(&[i as i64]);
            assert!((got - want).abs() < 1e-5, "{i}: {got} vs {want}");
        }
    }

    /// Five steps of gradient-norm clipping and RMSProp on a small two-layer
    /// problem, here and in PyTorch (`clip_grad_norm_` + `torch.optim.RMSprop`)
    /// from the same initial weights and data.
    #[test]
    fn matches_pytorch_clip_and_rmsprop() {
        matches_pytorch(
            "torch.optim.RMSprop([w1, w2], lr=0.05, alpha=0.99, eps=0.01, momentum=0)",
            OptimizerConfig::RmsProp { alpha: 0.99, eps: 0.01, momentum: 0.0 },
        );
    }

    /// The same against `torch.optim.Adam`, whose bias correction makes the
    /// first steps differ most from an uncorrected update.
    #[test]
    fn matches_pytorch_clip_and_adam() {
        matches_pytorch(
            "torch.optim.Adam([w1, w2], lr=0.05, betas=(0.8, 0.99), eps=1e-5)",
            OptimizerConfig::Adam { beta1: 0.8, beta2: 0.99, eps: 1e-5 },
        );
    }

    fn matches_pytorch(torch_optimizer: &str, cfg: OptimizerConfig) {
        let python = std::env::var_os("AAA_VENV")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv"))
            .join("bin/python");
        assert!(python.exists(), "{} missing: run scripts/bootstrap.sh", python.display());
        let w1: Vec<f32> = (0..12).map(|i| ((i * 7 % 11) as f32 - 5.0) / 7.0).collect();
        let w2: Vec<f32> = (0..4).map(|i| (i as f32 - 1.5) / 3.0).collect();
        let x: Vec<f32> = (0..6).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let fmt = |v: &[f32]| v.iter().map(|x| format!("{x:e}")).collect::<Vec<_>>().join(",");
        let script = format!(
            "import torch\n\
             torch.set_default_dtype(torch.float32)\n\
             w1 = torch.tensor([{}]).reshape(4, 3).requires_grad_()\n\
             w2 = torch.tensor([{}]).reshape(1, 4).requires_grad_()\n\
             x = torch.tensor([{}]).reshape(2, 3)\n\
             opt = {}\n\
             for _ in range(5):\n\
             \x20   opt.zero_grad()\n\
             \x20   loss = ((torch.relu(x @ w1.T) @ w2.T) ** 2).sum() * 10\n\
             \x20   loss.backward()\n\
             \x20   torch.nn.utils.clip_grad_norm_([w1, w2], 1.5)\n\
             \x20   opt.step()\n\
             print(' '.join(repr(v) for v in torch.cat([w1.flatten(), w2.flatten()]).tolist()))\n",
            fmt(&w1),
            fmt(&w2),
            fmt(&x),
            torch_optimizer
        );
        let out = std::process::Command::new(&python).arg("-c").arg(&script).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let want: Vec<f64> = String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();

        let vs = nn::VarStore::new(Device::Cpu);
        let a = vs.root().var_copy("w1", &Tensor::from_slice(&w1).view([4, 3]));
        let b = vs.root().var_copy("w2", &Tensor::from_slice(&w2).view([1, 4]));
        let x = Tensor::from_slice(&x).view([2, 3]);
        let mut opt = Optimizer::new(&vs, cfg);
        for _ in 0..5 {
            opt.zero_grad();
            let loss = (x.matmul(&a.tr()).relu().matmul(&b.tr())).square().sum(Kind::Float) * 10.0;
            loss.backward();
            opt.clip_grad_norm(1.5);
            opt.step(0.05);
        }
        let got: Vec<f64> =
            Vec::<f32>::try_from(Tensor::cat(&[a.flatten(0, -1), b.flatten(0, -1)], 0))
                .unwrap()
                .into_iter()
                .map(f64::from)
                .collect();
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-5, "parameter {i}: ours {g}, PyTorch {w}");
        }
        // The updates did something (the comparison is not of unchanged weights).
        let initial = w1.iter().chain(&w2).map(|&v| f64::from(v));
        let moved = got.iter().zip(initial).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max);
        assert!(moved > 1e-2, "weights barely moved ({moved})");
    }

    /// Adam's state (moments and step count) survives save and load, and a
    /// state of the other optimizer is refused with a message naming the flag.
    #[test]
    fn adam_state_round_trips_and_other_states_are_refused() {
        let adam = OptimizerConfig::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-5 };
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().var_copy("w", &Tensor::from_slice(&[1.0f32, -2.0]));
        let mut opt = Optimizer::new(&vs, adam);
        for _ in 0..3 {
            opt.zero_grad();
            (&w * &w).sum(Kind::Float).backward();
            opt.step(0.1);
        }
        let saved: std::collections::HashMap<String, Tensor> =
            opt.state().into_iter().map(|(k, t)| (k, t.copy())).collect();
        let mut restored = Optimizer::new(&vs, adam);
        restored.load_state(|k| saved.get(k).map(Tensor::shallow_clone)).unwrap();
        assert_eq!(restored.steps, 3);
        for (name, t) in restored.state() {
            let diff = (&t - &saved[&name]).abs().max().double_value(&[]);
            assert_eq!(diff, 0.0, "{name} not restored");
        }
        let rmsprop = OptimizerConfig::RmsProp { alpha: 0.99, eps: 0.01, momentum: 0.0 };
        let err = Optimizer::new(&vs, rmsprop)
            .load_state(|k| saved.get(k).map(Tensor::shallow_clone))
            .unwrap_err();
        assert!(err.contains("--optimizer"), "{err}");
    }

    #[test]
    fn clip_grad_norm_scales_to_the_maximum() {
        let vs = nn::VarStore::new(Device::Cpu);
        let a = vs.root().var_copy("a", &Tensor::from_slice(&[3.0f32]));
        let b = vs.root().var_copy("b", &Tensor::from_slice(&[4.0f32]));
        let mut opt =
            Optimizer::new(&vs, OptimizerConfig::RmsProp { alpha: 0.99, eps: 0.01, momentum: 0.0 });
        // loss = a * 3 + b * 4: grads (3, 4), norm 5.
        (&a * 3.0 + &b * 4.0).sum(Kind::Float).backward();
        let norm = opt.clip_grad_norm(1.0);
        assert!((norm - 5.0).abs() < 1e-5);
        assert!((a.grad().double_value(&[0]) - 0.6).abs() < 1e-5);
        assert!((b.grad().double_value(&[0]) - 0.8).abs() < 1e-5);
    }
}
