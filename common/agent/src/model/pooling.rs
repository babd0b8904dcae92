//! The no-attention control ([`wire::config::AgentKind::Baseline`]): the
//! policy core reads the whole grid, pooled, instead of what the queries pick.
//!
//! Mott et al. measure their agent against agents without its attention; this
//! is that control, built to differ from the attention agent in one thing
//! only. The vision core, the policy core and their sizes are the same; the
//! answers `[B, heads, C_v + C_s]` come from the ConvLSTM output O
//! `[B, C, h, w]` pooled over the grid, and the queries the policy core would
//! read are zeros (nothing is asked).
//!
//! The pooling is a mean over positions, weighted once by a constant and once
//! by each channel of the spatial basis S that the attention uses for "where":
//! `pooled[c, s] = mean_p O[c, p] * [1, S[p, :]][s]`, `C * (1 + C_s)`
//! numbers, then one linear layer to the answers' width. A plain mean would
//! say what is on the grid but not where; at the `small` preset, whose 1x1
//! kernels give every cell only its own pixels, that could never place the
//! ball. Weighted by the basis, the pooled features carry the same
//! information about place as the attention's answers do, without a
//! softmax choosing positions: the whole frame reaches the policy at once.

use tch::{nn, Kind, Tensor};

use wire::config::ModelConfig;

use super::Linear;

/// Pools the grid and projects it to answers. Parameters: `pool.{weight,bias}`.
#[derive(Debug)]
pub struct GridPooling {
    project: Linear,
    /// [h*w, 1 + C_s]: the constant, then the spatial basis, divided by h*w.
    weights: Tensor,
    heads: i64,
    answer_width: i64,
    /// What the projection computes in ([`crate::precision::Precision`]).
    pub(crate) kind: Kind,
}

impl GridPooling {
    /// `basis` is the spatial basis [h*w, C_s] on the model's device.
    pub fn new(p: &nn::Path, cfg: &ModelConfig, basis: &Tensor) -> Self {
        let positions = basis.size()[0];
        let ones = Tensor::ones([positions, 1], (Kind::Float, basis.device()));
        let weights = Tensor::cat(&[ones, basis.shallow_clone()], 1) / positions as f64;
        let answers = (cfg.heads * cfg.answer_width()) as i64;
        GridPooling {
            project: Linear::hidden(p, cfg.pooled_width() as i64, answers),
            weights,
            heads: cfg.heads as i64,
            answer_width: cfg.answer_width() as i64,
            kind: Kind::Float,
        }
    }

    /// Answers f32 [B, heads, C_v + C_s] from the ConvLSTM output [B, C, h, w].
    pub fn answers(&self, output: &Tensor) -> Tensor {
        let (b, c, h, w) = output.size4().expect("ConvLSTM output is [B, C, h, w]");
        let weights = self.weights.to_device(output.device());
        let pooled = output.reshape([b, c, h * w]).matmul(&weights); // [B, C, 1 + C_s]
        self.project.forward(&pooled.reshape([b, -1]), self.kind).to_kind(Kind::Float).view([
            b,
            self.heads,
            self.answer_width,
        ])
    }
}
