//! The attention agent (Mott et al. 2019) in tch. See docs/architecture.md, The model.
//!
//! One forward function, [`AttentionAgent::unroll`], runs an unroll [T, B] from
//! a given recurrent state; the learner calls it with its whole batch of
//! unrolls, the actor calls [`AttentionAgent::act`], the same pass with T = 1
//! without gradients (where the ConvLSTM's convolution runs as Winograd,
//! [`winograd`]). Per step t:
//!
//! 1. where `done[t]`, zero the ConvLSTM and policy-core states (before frame t);
//! 2. vision core: three convolutions with ReLU over frame/255, then the ConvLSTM
//!    ([`vision`]; the convolutions run over all T*B frames in one call);
//! 3. queries from the policy core's (reset) hidden state, attention of each head
//!    over keys and values extended by the fixed spatial basis ([`attention`],
//!    [`spatial_basis`]);
//! 4. answers, queries, clipped reward and one-hot last action into the answer
//!    MLP and the LSTM policy core, then policy logits and baseline ([`core`]).
//!
//! The policy sees the frame only through the answers: the queries depend on
//! the recurrent state alone. [`AttentionAgent::set_precision`] switches the
//! convolutions and linear layers to bf16 ([`crate::precision`]). Every shape comes from the [`ModelConfig`].
//! Weights travel as safetensors bytes carrying the config's fingerprint
//! ([`weights`]).

pub mod attention;
pub mod core;
mod openmp;
pub mod pooling;
pub mod spatial_basis;
mod state;
pub mod vision;
pub mod weights;
pub mod winograd;

#[cfg(test)]
mod mixed_precision_tests;
#[cfg(test)]
mod tests;

use tch::{nn, Device, Kind, Tensor};

use crate::precision::Precision;
use wire::config::{AgentKind, ModelConfig};
use wire::protocol::{Params, ProtocolError};

use self::attention::QueryNetwork;
use self::core::PolicyCore;
use self::pooling::GridPooling;
pub use self::state::AgentState;
use self::vision::VisionCore;

/// Why weights or states could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A wrong fingerprint, a malformed recurrent state, ...
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("cannot read safetensors weights: {0}")]
    Safetensors(String),
    #[error("weights do not fit this model: {0}")]
    Mismatch(String),
    #[error("{0}")]
    Invalid(String),
}

/// A learned parameter tensor initialised like PyTorch's default:
/// uniform in +-1/sqrt(fan_in).
pub(crate) fn uniform(p: &nn::Path, name: &str, dims: &[i64], fan_in: i64) -> Tensor {
    let bound = 1.0 / (fan_in as f64).sqrt();
    p.var(name, dims, nn::Init::Uniform { lo: -bound, up: bound })
}

/// A weight for a layer followed by ReLU, He (Kaiming) uniform initialised:
/// +-sqrt(6 / fan_in), so the signal keeps its variance through the layer.
///
/// Why not PyTorch's default (+-1/sqrt(fan_in), variance 1/3 of He's): the
/// frames are mostly background, and with the default the few pixels of an
/// object lose about 6x of their variance at every ReLU layer. On catch,
/// moving the ball then changed the initial policy logits by ~1e-7 to 5e-7
/// (~100x less than with He/Glorot); the attention had nothing to latch on to
/// and the agent did not learn (docs/learning.md). Sonnet, which the paper's agent was built
/// with, uses a fan-in scaled normal with zero biases, between the two.
pub(crate) fn he_uniform(p: &nn::Path, name: &str, dims: &[i64], fan_in: i64) -> Tensor {
    let bound = (6.0 / fan_in as f64).sqrt();
    p.var(name, dims, nn::Init::Uniform { lo: -bound, up: bound })
}

/// A weight for a layer followed by sigmoid/tanh gates (the ConvLSTM), Glorot
/// (Xavier) uniform initialised: +-sqrt(6 / (fan_in + fan_out)).
pub(crate) fn glorot_uniform(
    p: &nn::Path,
    name: &str,
    dims: &[i64],
    fan_in: i64,
    fan_out: i64,
) -> Tensor {
    let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
    p.var(name, dims, nn::Init::Uniform { lo: -bound, up: bound })
}

/// A bias initialised to zero (with [`he_uniform`] and [`glorot_uniform`]).
pub(crate) fn zeros(p: &nn::Path, name: &str, dims: &[i64]) -> Tensor {
    p.var(name, dims, nn::Init::Const(0.0))
}

/// A fully connected layer with parameters `weight` [out, in] and `bias` [out].
#[derive(Debug)]
pub(crate) struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    /// PyTorch's default initialisation: for the output heads, whose small
    /// initial weights keep the first policy near uniform and the first
    /// baseline near zero.
    pub(crate) fn new(p: &nn::Path, input: i64, output: i64) -> Self {
        Linear {
            weight: uniform(p, "weight", &[output, input], input),
            bias: uniform(p, "bias", &[output], input),
        }
    }

    /// He initialisation and a zero bias, for hidden layers (see [`he_uniform`]).
    pub(crate) fn hidden(p: &nn::Path, input: i64, output: i64) -> Self {
        Linear {
            weight: he_uniform(p, "weight", &[output, input], input),
            bias: zeros(p, "bias", &[output]),
        }
    }

    /// The layer in `kind` (bf16 copies of the f32 weights under bf16; the
    /// casts are differentiable, so gradients reach the f32 weights). The
    /// output is of `kind`.
    pub(crate) fn forward(&self, x: &Tensor, kind: Kind) -> Tensor {
        x.to_kind(kind).linear(&self.weight.to_kind(kind), Some(&self.bias.to_kind(kind)))
    }
}

/// The LSTM update from pre-activation gates (f32, the four gates input,
/// forget, cell, output stacked along dim 1) and the previous cell state:
/// returns (h, c). Shared by the ConvLSTM and, in bf16, the policy core.
pub(crate) fn lstm_update(gates: &Tensor, c: &Tensor) -> (Tensor, Tensor) {
    let gates = gates.chunk(4, 1);
    let (i, f, g, o) = (&gates[0], &gates[1], &gates[2], &gates[3]);
    let c = f.sigmoid() * c + i.sigmoid() * g.tanh();
    let h = o.sigmoid() * c.tanh();
    (h, c)
}

/// The model's input for an unroll of T steps of B environments (aligned as in
/// docs/architecture.md, Step alignment: `reward[t]`, `done[t]` and
/// `last_action[t]` arrived with `frame[t]`).
#[derive(Debug)]
pub struct Unroll {
    /// u8 [T, B, H, W, C]
    pub frame: Tensor,
    /// f32 [T, B], raw; the model clips it to [-1, 1] for the core input.
    pub reward: Tensor,
    /// bool [T, B]; true: frame t starts a new episode, so the state is zeroed before it.
    pub done: Tensor,
    /// i64 [T, B]
    pub last_action: Tensor,
}

/// The forward pass's output for an unroll [T, B].
#[derive(Debug)]
pub struct AgentOutput {
    /// [T, B, A]
    pub policy_logits: Tensor,
    /// [T, B]
    pub baseline: Tensor,
    /// [T, B, heads, h, w]; each head's map sums to 1.
    pub attention: Tensor,
    /// [T, B, heads, h, w]: query . key, the content part of the attention logits.
    pub attention_content: Tensor,
    /// [T, B, heads, h, w]: query . spatial basis, the place part of the logits.
    pub attention_place: Tensor,
}

/// How the policy core reads the vision core's output.
#[derive(Debug)]
enum Reader {
    /// Top-down attention (the paper's agent): parameters `query.*`.
    Attention(QueryNetwork),
    /// The no-attention control ([`pooling`]): parameters `pool.*`.
    Pooled(GridPooling),
}

/// The attention agent's modules; parameters live under the given path as
/// `vision.*`, `query.*` (or `pool.*` for the no-attention control, see
/// [`AgentKind`]) and `core.*`.
#[derive(Debug)]
pub struct AttentionAgent {
    vision: VisionCore,
    reader: Reader,
    core: PolicyCore,
    /// Spatial basis [h*w, C_s] and its transpose [C_s, h*w]; fixed, not a parameter.
    basis: Tensor,
    basis_t: Tensor,
    key_channels: i64,
    /// How the attention logits are formed (scale, key normalisation).
    logit_shape: attention::LogitShape,
    grid: (i64, i64),
    heads: i64,
    precision: Precision,
}

/// What a forward pass is for: learning (autograd through every operation) or
/// acting (no gradients, so the ConvLSTM may take a faster route).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    Learn,
    Act,
}

/// What one step of the agent yields, before stacking over time (maps [B, heads, h*w]).
#[derive(Debug)]
pub struct StepTrace {
    /// [B, heads, C_k + C_s], from the previous (reset) core state only.
    pub queries: Tensor,
    /// [B, heads, C_v + C_s]: the only route from the frame to the policy.
    pub answers: Tensor,
    pub policy_logits: Tensor,
    pub baseline: Tensor,
    pub attention: Tensor,
    pub content: Tensor,
    pub place: Tensor,
}

impl AttentionAgent {
    pub fn new(p: &nn::Path, cfg: &ModelConfig) -> Self {
        let (h, w) = cfg.grid();
        let basis = spatial_basis::spatial_basis(h, w, cfg.basis_frequencies, p.device());
        let reader = match cfg.agent {
            AgentKind::Attention => Reader::Attention(QueryNetwork::new(&(p / "query"), cfg)),
            AgentKind::Baseline => Reader::Pooled(GridPooling::new(&(p / "pool"), cfg, &basis)),
        };
        AttentionAgent {
            vision: VisionCore::new(&(p / "vision"), cfg),
            reader,
            core: PolicyCore::new(&(p / "core"), cfg),
            basis_t: basis.transpose(0, 1).contiguous(),
            basis,
            key_channels: cfg.key_channels as i64,
            logit_shape: attention::LogitShape::of(cfg),
            grid: (h as i64, w as i64),
            heads: cfg.heads as i64,
            precision: Precision::Fp32,
        }
    }

    /// Sets what the convolutions and linear layers compute in
    /// ([`crate::precision`]); the parameters stay f32 either way.
    pub fn set_precision(&mut self, precision: Precision) {
        let kind = precision.compute_kind();
        self.vision.kind = kind;
        match &mut self.reader {
            Reader::Attention(query) => query.kind = kind,
            Reader::Pooled(pool) => pool.kind = kind,
        }
        self.core.kind = kind;
        self.precision = precision;
    }

    /// What the convolutions and linear layers compute in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Runs an unroll [T, B] from `state` (the state before frame 0). Returns the
    /// outputs for every step and the state after the last one.
    pub fn unroll(&self, input: &Unroll, state: &AgentState) -> (AgentOutput, AgentState) {
        self.unroll_for(input, state, Pass::Learn)
    }

    /// [`AttentionAgent::unroll`] for acting: no gradients, and the ConvLSTM
    /// takes its inference route (`VisionCore::step_for_inference`). The
    /// same outputs as `unroll` up to rounding.
    pub fn act(&self, input: &Unroll, state: &AgentState) -> (AgentOutput, AgentState) {
        tch::no_grad(|| self.unroll_for(input, state, Pass::Act))
    }

    fn unroll_for(
        &self,
        input: &Unroll,
        state: &AgentState,
        pass: Pass,
    ) -> (AgentOutput, AgentState) {
        let (t_len, batch) = input.reward.size2().expect("reward is [T, B]");
        let (gh, gw) = self.grid;
        // The convolutions for all T*B frames at once.
        let features = self.vision.features(&input.frame.flatten(0, 1));
        let features = features.view([t_len, batch, -1, gh, gw]);
        let keep = input.done.logical_not().to_kind(Kind::Float); // [T, B]
        let mut state = state.shallow_clone();
        let mut steps = Vec::with_capacity(t_len as usize);
        for t in 0..t_len {
            let keep_t = keep.get(t);
            let keep_vision = keep_t.view([batch, 1, 1, 1]);
            let keep_core = keep_t.view([batch, 1]);
            // Zero the state where frame t starts an episode, before anything reads it.
            let vision_h = &state.vision_h * &keep_vision;
            let vision_c = &state.vision_c * &keep_vision;
            let core_h = &state.core_h * &keep_core;
            let core_c = &state.core_c * &keep_core;
            let (out, step) = self.step_for(
                &features.get(t),
                &input.reward.get(t),
                &input.last_action.get(t),
                AgentState { vision_h, vision_c, core_h, core_c },
                pass,
            );
            steps.push(out);
            state = step;
        }
        let stack = |f: fn(&StepTrace) -> &Tensor| {
            Tensor::stack(&steps.iter().map(f).collect::<Vec<_>>(), 0)
        };
        let maps = [t_len, batch, self.heads, gh, gw];
        let output = AgentOutput {
            policy_logits: stack(|s| &s.policy_logits),
            baseline: stack(|s| &s.baseline),
            attention: stack(|s| &s.attention).view(maps),
            attention_content: stack(|s| &s.content).view(maps),
            attention_place: stack(|s| &s.place).view(maps),
        };
        (output, state)
    }

    /// One step from the convolutions' features [B, C', h, w] (see
    /// [`VisionCore::features`]) and a state already reset where episodes start.
    pub fn step(
        &self,
        features: &Tensor,
        reward: &Tensor,
        last_action: &Tensor,
        state: AgentState,
    ) -> (StepTrace, AgentState) {
        self.step_for(features, reward, last_action, state, Pass::Learn)
    }

    fn step_for(
        &self,
        features: &Tensor,
        reward: &Tensor,
        last_action: &Tensor,
        state: AgentState,
        pass: Pass,
    ) -> (StepTrace, AgentState) {
        let (vision_h, vision_c) = match pass {
            Pass::Learn => self.vision.step(features, &state.vision_h, &state.vision_c),
            Pass::Act => self.vision.step_for_inference(features, &state.vision_h, &state.vision_c),
        };
        let (queries, att) = match &self.reader {
            Reader::Attention(query) => {
                // Top-down: the queries read the policy core's previous (reset) state only.
                let queries = query.forward(&state.core_h);
                let basis = self.basis.to_device(vision_h.device());
                let basis_t = self.basis_t.to_device(vision_h.device());
                let att = attention::attend(
                    &queries,
                    &vision_h,
                    &basis,
                    &basis_t,
                    self.key_channels,
                    self.logit_shape,
                );
                (queries, att)
            }
            Reader::Pooled(pool) => self.pooled(pool, &vision_h),
        };
        let (policy_logits, baseline, core_h, core_c) = self.policy_from_answers(
            &att.answers,
            &queries,
            reward,
            last_action,
            &state.core_h,
            &state.core_c,
        );
        (
            StepTrace {
                queries,
                answers: att.answers,
                policy_logits,
                baseline,
                attention: att.attention,
                content: att.content,
                place: att.place,
            },
            AgentState { vision_h, vision_c, core_h, core_c },
        )
    }

    /// The no-attention control's step: answers from the pooled grid, zero
    /// queries, and every position weighted alike in the maps the recorder
    /// stores (content and place logits zero).
    fn pooled(&self, pool: &GridPooling, vision_h: &Tensor) -> (Tensor, attention::Attended) {
        let batch = vision_h.size()[0];
        let positions = self.grid.0 * self.grid.1;
        let opts = (Kind::Float, vision_h.device());
        let width = self.key_channels + self.basis.size()[1];
        let queries = Tensor::zeros([batch, self.heads, width], opts);
        let zeros = Tensor::zeros([batch, self.heads, positions], opts);
        let att = attention::Attended {
            answers: pool.answers(vision_h),
            attention: zeros.ones_like() / positions as f64,
            content: zeros.shallow_clone(),
            place: zeros,
        };
        (queries, att)
    }

    /// The policy core's step: everything after the attention. Returns (policy
    /// logits, baseline, core h, core c). The frame enters only through `answers`.
    pub fn policy_from_answers(
        &self,
        answers: &Tensor,
        queries: &Tensor,
        reward: &Tensor,
        last_action: &Tensor,
        core_h: &Tensor,
        core_c: &Tensor,
    ) -> (Tensor, Tensor, Tensor, Tensor) {
        let core_input = self.core.input(answers, queries, reward, last_action);
        self.core.step(&core_input, core_h, core_c)
    }

    /// The vision core, for tests and inspection.
    pub fn vision(&self) -> &VisionCore {
        &self.vision
    }

    /// The policy core, for tests and inspection.
    pub fn policy_core(&self) -> &PolicyCore {
        &self.core
    }

    /// The spatial basis [h*w, C_s].
    pub fn basis(&self) -> &Tensor {
        &self.basis
    }
}

/// The agent with its parameters and config.
#[derive(Debug)]
pub struct Model {
    pub vs: nn::VarStore,
    pub agent: AttentionAgent,
    pub cfg: ModelConfig,
}

impl Model {
    /// A freshly initialised model; seed with `tch::manual_seed` first for
    /// repeatable weights. Panics on a config that fails `validate` (a
    /// programming error: configs come from presets).
    pub fn new(cfg: ModelConfig, device: Device) -> Self {
        if let Err(e) = cfg.validate() {
            panic!("invalid model config: {e}");
        }
        let vs = nn::VarStore::new(device);
        let agent = AttentionAgent::new(&vs.root(), &cfg);
        Model { vs, agent, cfg }
    }

    /// The weights as safetensors bytes, with the config and its fingerprint in
    /// the header's metadata.
    pub fn to_safetensors(&self) -> Result<Vec<u8>, ModelError> {
        weights::to_safetensors(&self.vs, &self.cfg)
    }

    /// Loads weights written by [`Model::to_safetensors`]; refuses those of
    /// another architecture (fingerprint) or with missing, extra or misshapen tensors.
    pub fn load_safetensors(&mut self, bytes: &[u8]) -> Result<(), ModelError> {
        weights::load_safetensors(&mut self.vs, &self.cfg, bytes)
    }

    /// The params message body for `version`.
    pub fn to_params(&self, version: u64) -> Result<Params, ModelError> {
        Ok(Params { version, fingerprint: self.cfg.fingerprint(), weights: self.to_safetensors()? })
    }

    /// Loads the weights of a params message, refusing another architecture's.
    pub fn load_params(&mut self, params: &Params) -> Result<(), ModelError> {
        params.check_fingerprint(&self.cfg)?;
        self.load_safetensors(&params.weights)
    }

    /// Sets the precision of the forward pass ([`AttentionAgent::set_precision`]).
    pub fn set_precision(&mut self, precision: Precision) {
        self.agent.set_precision(precision);
    }

    /// Runs an unroll (see [`AttentionAgent::unroll`]).
    pub fn unroll(&self, input: &Unroll, state: &AgentState) -> (AgentOutput, AgentState) {
        self.agent.unroll(input, state)
    }

    /// Runs an unroll for acting, without gradients (see [`AttentionAgent::act`]).
    pub fn act(&self, input: &Unroll, state: &AgentState) -> (AgentOutput, AgentState) {
        self.agent.act(input, state)
    }
}
