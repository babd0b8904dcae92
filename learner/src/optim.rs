//! RMSProp over a var store's trainable variables, with a state that can be
//! saved and restored (tch's own optimizers hide theirs, so `--resume` could
//! not continue them).
//!
//! The update is PyTorch's `torch.optim.RMSprop` (which TorchBeast uses), with
//! ε added outside the square root:
//!
//! ```text
//! square_avg ← α · square_avg + (1 - α) · g²
//! buf        ← momentum · buf + g / (√square_avg + ε)        (buf = that quotient when momentum = 0)
//! θ          ← θ - lr · buf
//! ```
//!
//! Gradient-norm clipping ([`RmsProp::clip_grad_norm`]) is
//! `torch.nn.utils.clip_grad_norm_`: one L2 norm over all gradients together.

use tch::{nn, Kind, Tensor};

/// Hyperparameters (SPEC section 4 defaults: α 0.99, ε 0.01, momentum 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    pub alpha: f64,
    pub eps: f64,
    pub momentum: f64,
}

/// RMSProp with named, checkpointable state.
pub struct RmsProp {
    cfg: RmsPropConfig,
    /// (name, parameter), sorted by name.
    params: Vec<(String, Tensor)>,
    square_avg: Vec<Tensor>,
    momentum_buf: Vec<Tensor>,
}

impl RmsProp {
    /// Tracks every trainable variable of `vs`, state initialised to zero.
    pub fn new(vs: &nn::VarStore, cfg: RmsPropConfig) -> Self {
        let mut params: Vec<(String, Tensor)> =
            vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let square_avg = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let momentum_buf = params.iter().map(|(_, p)| p.zeros_like()).collect();
        RmsProp { cfg, params, square_avg, momentum_buf }
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
        let RmsPropConfig { alpha, eps, momentum } = self.cfg;
        tch::no_grad(|| {
            for (i, (_, p)) in self.params.iter_mut().enumerate() {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let sq = &mut self.square_avg[i];
                let _ = sq.g_mul_scalar_(alpha);
                let _ = sq.addcmul_(&(&g * (1.0 - alpha)), &g);
                let avg = sq.sqrt() + eps;
                if momentum > 0.0 {
                    let buf = &mut self.momentum_buf[i];
                    let _ = buf.g_mul_scalar_(momentum);
                    let _ = buf.addcdiv_(&g, &avg);
                    let _ = p.g_sub_(&(&*buf * lr));
                } else {
                    let _ = p.g_sub_(&(g / avg * lr));
                }
            }
        })
    }

    /// The optimizer state as named tensors: `square_avg.<param>` and
    /// `momentum_buffer.<param>`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.params.len());
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.push((format!("square_avg.{name}"), self.square_avg[i].shallow_clone()));
            out.push((format!("momentum_buffer.{name}"), self.momentum_buf[i].shallow_clone()));
        }
        out
    }

    /// Restores a state written by [`RmsProp::state`]: every tensor present with
    /// the parameter's shape, or nothing changes.
    pub fn load_state(&mut self, lookup: impl Fn(&str) -> Option<Tensor>) -> Result<(), String> {
        let mut loaded = Vec::with_capacity(2 * self.params.len());
        for (i, (name, p)) in self.params.iter().enumerate() {
            for (prefix, target) in
                [("square_avg", &self.square_avg[i]), ("momentum_buffer", &self.momentum_buf[i])]
            {
                let key = format!("{prefix}.{name}");
                let t = lookup(&key).ok_or_else(|| format!("optimizer state {key} missing"))?;
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
        tch::no_grad(|| {
            for (mut target, t) in loaded {
                target.copy_(&t.to_kind(Kind::Float));
            }
        });
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
        let cfg = RmsPropConfig { alpha: 0.99, eps: 0.01, momentum: 0.0 };
        let mut opt = RmsProp::new(&vs, cfg);
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
             opt = torch.optim.RMSprop([w1, w2], lr=0.05, alpha=0.99, eps=0.01, momentum=0)\n\
             for _ in range(5):\n\
             \x20   opt.zero_grad()\n\
             \x20   loss = ((torch.relu(x @ w1.T) @ w2.T) ** 2).sum() * 10\n\
             \x20   loss.backward()\n\
             \x20   torch.nn.utils.clip_grad_norm_([w1, w2], 1.5)\n\
             \x20   opt.step()\n\
             print(' '.join(repr(v) for v in torch.cat([w1.flatten(), w2.flatten()]).tolist()))\n",
            fmt(&w1),
            fmt(&w2),
            fmt(&x)
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
        let mut opt = RmsProp::new(&vs, RmsPropConfig { alpha: 0.99, eps: 0.01, momentum: 0.0 });
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

    #[test]
    fn clip_grad_norm_scales_to_the_maximum() {
        let vs = nn::VarStore::new(Device::Cpu);
        let a = vs.root().var_copy("a", &Tensor::from_slice(&[3.0f32]));
        let b = vs.root().var_copy("b", &Tensor::from_slice(&[4.0f32]));
        let mut opt = RmsProp::new(&vs, RmsPropConfig { alpha: 0.99, eps: 0.01, momentum: 0.0 });
        // loss = a * 3 + b * 4: grads (3, 4), norm 5.
        (&a * 3.0 + &b * 4.0).sum(Kind::Float).backward();
        let norm = opt.clip_grad_norm(1.0);
        assert!((norm - 5.0).abs() < 1e-5);
        assert!((a.grad().double_value(&[0]) - 0.6).abs() < 1e-5);
        assert!((b.grad().double_value(&[0]) - 0.8).abs() < 1e-5);
    }
}
