//! Top-down attention (docs/architecture.md, The model, steps 6-10).
//!
//! The ConvLSTM output O [B, C, h, w] splits by channel into keys (the first
//! C_k channels) and values (the other C_v). Each key and value is extended with
//! the fixed spatial basis S [h*w, C_s]: K = [keys, S] [B, h*w, C_k + C_s] and
//! V = [values, S] [B, h*w, C_v + C_s]. The queries Q [B, heads, C_k + C_s] come
//! from the policy core's previous state only, never from the frame.
//!
//! With [`ModelConfig::normalize_keys`], each key channel is normalised over
//! the grid (zero mean, unit variance over the h*w positions, per sample and
//! step) before the product, so a cell that differs from the rest of the frame
//! stands out in its key whatever the ConvLSTM's output scale
//! (docs/learning.md: without it the content part of the logits starts 30-100x
//! weaker than the place part, and the heads fix on places, not objects).
//!
//! `Q K^T` splits into a content part (query's first C_k entries against the
//! keys) and a place part (the other C_s entries against the basis); `A V`
//! splits the same way. [`attend`] computes these parts directly on O's
//! channel-major layout, so the concatenated K and V never need to be built;
//! [`keys_and_values`] builds them explicitly (by permute, never by a
//! reinterpreting view), and the tests check both routes agree.

use tch::{nn, Kind, Tensor};

use wire::config::ModelConfig;

use super::Linear;

/// The query MLP: core_units -> query_hidden -> heads*(C_k+C_s) -> heads*(C_k+C_s),
/// ReLU between layers, none after the last. Parameters `fc{0,1,2}`.
#[derive(Debug)]
pub struct QueryNetwork {
    layers: [Linear; 3],
    heads: i64,
    width: i64,
    /// What the layers compute in ([`crate::precision::Precision`]).
    pub(crate) kind: Kind,
}

impl QueryNetwork {
    pub fn new(p: &nn::Path, cfg: &ModelConfig) -> Self {
        let out = (cfg.heads * cfg.query_width()) as i64;
        let hidden = cfg.query_hidden as i64;
        QueryNetwork {
            layers: [
                Linear::hidden(&(p / "fc0"), cfg.core_units as i64, hidden),
                Linear::hidden(&(p / "fc1"), hidden, out),
                Linear::hidden(&(p / "fc2"), out, out),
            ],
            heads: cfg.heads as i64,
            width: cfg.query_width() as i64,
            kind: Kind::Float,
        }
    }

    /// Queries f32 [B, heads, C_k + C_s] from the policy core's hidden state [B, units].
    pub fn forward(&self, core_h: &Tensor) -> Tensor {
        let k = self.kind;
        let x = self.layers[0].forward(core_h, k).relu();
        let x = self.layers[1].forward(&x, k).relu();
        self.layers[2].forward(&x, k).to_kind(Kind::Float).view([-1, self.heads, self.width])
    }
}

/// What one attention step yields; maps are [B, heads, h*w].
#[derive(Debug)]
pub struct Attended {
    /// [B, heads, C_v + C_s]: per head, the attention-weighted values then basis.
    pub answers: Tensor,
    /// Softmax over positions of `content + place`.
    pub attention: Tensor,
    /// Query . key part of the logits.
    pub content: Tensor,
    /// Query . spatial basis part of the logits.
    pub place: Tensor,
}

/// How the logits are formed: the divisors of the content and the place part
/// ([`ModelConfig::attention_logit_divisors`]) and whether the keys are
/// normalised over the grid ([`ModelConfig::normalize_keys`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogitShape {
    pub content_divisor: f64,
    pub place_divisor: f64,
    pub normalize_keys: bool,
}

impl LogitShape {
    /// The paper's `q . k`.
    pub const PAPER: LogitShape =
        LogitShape { content_divisor: 1.0, place_divisor: 1.0, normalize_keys: false };

    pub fn of(cfg: &ModelConfig) -> Self {
        let (content_divisor, place_divisor) = cfg.attention_logit_divisors();
        LogitShape { content_divisor, place_divisor, normalize_keys: cfg.normalize_keys }
    }
}

/// Each channel of `keys` [B, C_k, h*w] with zero mean and unit variance over
/// the positions (instance normalisation without affine parameters).
pub fn normalize_over_grid(keys: &Tensor) -> Tensor {
    let positions = [2i64];
    let centred = keys - keys.mean_dim(positions.as_slice(), true, Kind::Float);
    let variance = centred.square().mean_dim(positions.as_slice(), true, Kind::Float);
    centred / (variance + KEY_NORM_EPS).sqrt()
}

/// Added to the variance in [`normalize_over_grid`], as InstanceNorm's eps.
pub const KEY_NORM_EPS: f64 = 1e-5;

/// Attention of queries [B, heads, C_k + C_s] over the ConvLSTM output
/// [B, C, h, w], with the basis [h*w, C_s] and its transpose [C_s, h*w].
pub fn attend(
    queries: &Tensor,
    output: &Tensor,
    basis: &Tensor,
    basis_t: &Tensor,
    key_channels: i64,
    shape: LogitShape,
) -> Attended {
    let (b, c, h, w) = output.size4().expect("ConvLSTM output is [B, C, h, w]");
    let basis_channels = basis.size()[1];
    // [B, C, h*w]: position p = i * w + j, as in the basis rows.
    let flat = output.reshape([b, c, h * w]);
    let keys = flat.narrow(1, 0, key_channels); // [B, C_k, hw]
    let keys = if shape.normalize_keys { normalize_over_grid(&keys) } else { keys };
    let values = flat.narrow(1, key_channels, c - key_channels); // [B, C_v, hw]
    let q_content = queries.narrow(2, 0, key_channels);
    let q_place = queries.narrow(2, key_channels, basis_channels);
    let divided = |part: Tensor, divisor: f64| if divisor == 1.0 { part } else { part / divisor };
    let content = divided(q_content.bmm(&keys), shape.content_divisor); // [B, heads, hw]
    let place = divided(q_place.matmul(basis_t), shape.place_divisor); // [B, heads, hw]
    let attention = (&content + &place).softmax(-1, tch::Kind::Float);
    let answer_values = attention.bmm(&values.transpose(1, 2)); // [B, heads, C_v]
    let answer_place = attention.matmul(basis); // [B, heads, C_s]
    let answers = Tensor::cat(&[answer_values, answer_place], 2);
    Attended { answers, attention, content, place }
}

/// The explicit keys K [B, h*w, C_k + C_s] and values V [B, h*w, C_v + C_s]
/// of step 7 in docs/architecture.md, The model, for inspection and tests (the
/// forward pass uses [`attend`]).
pub fn keys_and_values(output: &Tensor, basis: &Tensor, key_channels: i64) -> (Tensor, Tensor) {
    let (b, c, h, w) = output.size4().expect("ConvLSTM output is [B, C, h, w]");
    // [B, C, h, w] -> [B, h, w, C] by permute: channels stay channels.
    let positions = output.permute([0, 2, 3, 1]).reshape([b, h * w, c]);
    let basis = basis.unsqueeze(0).expand([b, -1, -1], false);
    let keys = Tensor::cat(&[positions.narrow(2, 0, key_channels), basis.shallow_clone()], 2);
    let values = Tensor::cat(&[positions.narrow(2, key_channels, c - key_channels), basis], 2);
    (keys, values)
}
