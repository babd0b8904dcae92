//! The policy core and its heads (docs/architecture.md, The model, steps 11-13).
//!
//! Input per step: the answers and queries of every head, the reward clipped
//! to [-1, 1], and the one-hot previous action. An MLP (ReLU after each layer)
//! feeds an LSTM cell; linear heads read the policy logits and the baseline
//! from its new hidden state.

use tch::{nn, Kind, Tensor};

use wire::config::ModelConfig;

use super::{lstm_update, uniform, Linear};

/// Answer MLP + LSTM + heads. Parameters: `fc{0,1}`, `lstm.{weight_ih,
/// weight_hh,bias_ih,bias_hh}` (gates input, forget, cell, output, as
/// `torch.nn.LSTMCell`), `policy`, `baseline`.
#[derive(Debug)]
pub struct PolicyCore {
    mlp: [Linear; 2],
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor,
    bias_hh: Tensor,
    policy: Linear,
    baseline: Linear,
    num_actions: i64,
    /// What the layers compute in ([`crate::precision::Precision`]).
    pub(crate) kind: Kind,
}

impl PolicyCore {
    pub fn new(p: &nn::Path, cfg: &ModelConfig) -> Self {
        let [m0, m1] = cfg.answer_mlp.map(|x| x as i64);
        let units = cfg.core_units as i64;
        let lstm = p / "lstm";
        PolicyCore {
            mlp: [
                Linear::hidden(&(p / "fc0"), cfg.core_input_width() as i64, m0),
                Linear::hidden(&(p / "fc1"), m0, m1),
            ],
            weight_ih: uniform(&lstm, "weight_ih", &[4 * units, m1], units),
            weight_hh: uniform(&lstm, "weight_hh", &[4 * units, units], units),
            bias_ih: uniform(&lstm, "bias_ih", &[4 * units], units),
            bias_hh: uniform(&lstm, "bias_hh", &[4 * units], units),
            policy: Linear::new(&(p / "policy"), units, cfg.num_actions as i64),
            baseline: Linear::new(&(p / "baseline"), units, 1),
            num_actions: cfg.num_actions as i64,
            kind: Kind::Float,
        }
    }

    /// The core input [B, heads*(C_v+C_s) + heads*(C_k+C_s) + 1 + A] from answers
    /// [B, heads, C_v+C_s], queries [B, heads, C_k+C_s], raw reward [B] and
    /// last action [B].
    pub fn input(
        &self,
        answers: &Tensor,
        queries: &Tensor,
        reward: &Tensor,
        last_action: &Tensor,
    ) -> Tensor {
        let b = answers.size()[0];
        Tensor::cat(
            &[
                answers.reshape([b, -1]),
                queries.reshape([b, -1]),
                reward.clamp(-1.0, 1.0).unsqueeze(1),
                last_action.one_hot(self.num_actions).to_kind(Kind::Float),
            ],
            1,
        )
    }

    /// One step from the core input and state (h, c) (already zeroed where an
    /// episode starts). Returns (policy logits [B, A], baseline [B], h, c), all f32.
    pub fn step(&self, input: &Tensor, h: &Tensor, c: &Tensor) -> (Tensor, Tensor, Tensor, Tensor) {
        let k = self.kind;
        let x = self.mlp[0].forward(input, k).relu();
        let x = self.mlp[1].forward(&x, k).relu();
        let (h, c) = if k == Kind::Float {
            x.lstm_cell(
                &[h, c],
                &self.weight_ih,
                &self.weight_hh,
                Some(&self.bias_ih),
                Some(&self.bias_hh),
            )
        } else {
            self.lstm_cell_mixed(&x, h, c, k)
        };
        let logits = self.policy.forward(&h, k).to_kind(Kind::Float);
        let baseline = self.baseline.forward(&h, k).to_kind(Kind::Float).squeeze_dim(1);
        (logits, baseline, h, c)
    }

    /// `torch.nn.LSTMCell` with its two gate products in `kind` and the gate
    /// nonlinearities and states in f32 (ATen's fused cell would keep the cell
    /// state in the input's kind).
    fn lstm_cell_mixed(&self, x: &Tensor, h: &Tensor, c: &Tensor, kind: Kind) -> (Tensor, Tensor) {
        let gates = x.linear(&self.weight_ih.to_kind(kind), Some(&self.bias_ih.to_kind(kind)))
            + h.to_kind(kind)
                .linear(&self.weight_hh.to_kind(kind), Some(&self.bias_hh.to_kind(kind)));
        lstm_update(&gates.to_kind(Kind::Float), c)
    }
}
