//! The agent's recurrent state ([`AgentState`]): what carries over from one
//! step to the next, per environment, and its form on the wire
//! (`RecurrentState`), which each unroll starts from.

use tch::{Device, Kind, Tensor};

use wire::config::ModelConfig;
use wire::protocol::{Array, RecurrentState};

use super::ModelError;

/// The agent's recurrent state for a batch of B environments.
#[derive(Debug)]
pub struct AgentState {
    /// ConvLSTM hidden state, f32 [B, C, h, w].
    pub vision_h: Tensor,
    /// ConvLSTM cell state, f32 [B, C, h, w].
    pub vision_c: Tensor,
    /// Policy core hidden state, f32 [B, units].
    pub core_h: Tensor,
    /// Policy core cell state, f32 [B, units].
    pub core_c: Tensor,
}

fn to_array(t: &Tensor) -> Array {
    let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
    let shape = t.size().iter().map(|&d| d as usize).collect();
    let values = Vec::<f32>::try_from(&t.reshape([-1])).expect("f32 tensor converts");
    Array::from_f32(shape, &values)
}

fn from_array(a: &Array, field: &'static str) -> Result<Tensor, ModelError> {
    let shape: Vec<i64> = a.shape.iter().map(|&d| d as i64).collect();
    Ok(Tensor::from_slice(&a.to_f32(field)?).view(shape.as_slice()))
}

impl AgentState {
    /// The zero state (start of an episode) for `batch` environments.
    pub fn zeros(cfg: &ModelConfig, batch: i64, device: Device) -> Self {
        let (h, w) = cfg.grid();
        let vision = [batch, cfg.convlstm_channels as i64, h as i64, w as i64];
        let core = [batch, cfg.core_units as i64];
        let opts = (Kind::Float, device);
        AgentState {
            vision_h: Tensor::zeros(vision, opts),
            vision_c: Tensor::zeros(vision, opts),
            core_h: Tensor::zeros(core, opts),
            core_c: Tensor::zeros(core, opts),
        }
    }

    /// Batch entry `index` as the wire type: f32 little-endian arrays of shapes
    /// [C, h, w] and [units].
    pub fn to_protocol(&self, index: i64) -> RecurrentState {
        RecurrentState {
            vision_h: to_array(&self.vision_h.get(index)),
            vision_c: to_array(&self.vision_c.get(index)),
            core_h: to_array(&self.core_h.get(index)),
            core_c: to_array(&self.core_c.get(index)),
        }
    }

    /// Stacks wire states along the batch, after checking each against `cfg`.
    pub fn from_protocol(
        states: &[&RecurrentState],
        cfg: &ModelConfig,
        device: Device,
    ) -> Result<Self, ModelError> {
        if states.is_empty() {
            return Err(ModelError::Invalid("no recurrent states to stack".into()));
        }
        let mut parts: [Vec<Tensor>; 4] = Default::default();
        for s in states {
            s.validate(cfg)?;
            parts[0].push(from_array(&s.vision_h, "initial_state.vision_h")?);
            parts[1].push(from_array(&s.vision_c, "initial_state.vision_c")?);
            parts[2].push(from_array(&s.core_h, "initial_state.core_h")?);
            parts[3].push(from_array(&s.core_c, "initial_state.core_c")?);
        }
        let [vh, vc, ch, cc] = parts.map(|p| Tensor::stack(&p, 0).to_device(device));
        Ok(AgentState { vision_h: vh, vision_c: vc, core_h: ch, core_c: cc })
    }

    /// Each of the four tensors through `f`.
    pub fn map(&self, f: impl Fn(&Tensor) -> Tensor) -> Self {
        AgentState {
            vision_h: f(&self.vision_h),
            vision_c: f(&self.vision_c),
            core_h: f(&self.core_h),
            core_c: f(&self.core_c),
        }
    }

    /// The four tensors, to change in place.
    pub fn tensors_mut(&mut self) -> [&mut Tensor; 4] {
        [&mut self.vision_h, &mut self.vision_c, &mut self.core_h, &mut self.core_c]
    }

    /// The four tensors, in the order of [`AgentState::tensors_mut`].
    pub fn tensors(&self) -> [&Tensor; 4] {
        [&self.vision_h, &self.vision_c, &self.core_h, &self.core_c]
    }

    /// The same tensors (shared storage, shared graph).
    pub fn shallow_clone(&self) -> Self {
        self.map(Tensor::shallow_clone)
    }

    /// The same values, cut from the autograd graph.
    pub fn detach(&self) -> Self {
        self.map(Tensor::detach)
    }

    /// Batch size B.
    pub fn batch(&self) -> i64 {
        self.core_h.size()[0]
    }
}
