//! The vision core: three convolutions with ReLU over the frame scaled to
//! [0, 1], then a ConvLSTM (SPEC section 3, steps 1-5).
//!
//! The ConvLSTM's gates are `conv([x, h])`, split here into `conv_x(x) +
//! conv_h(h)` (the same function: the kernel's input channels split in two).
//! `conv_x` does not depend on the recurrent state, so [`VisionCore::input_gates`]
//! runs it, with the three convolutions before it, over all T*B frames of an
//! unroll in one batched call; only `conv_h` and the gate arithmetic run per step.

use tch::{nn, Kind, Tensor};

use crate::config::{ConvSpec, ModelConfig};

use super::uniform;

/// One convolution of the feed-forward part.
#[derive(Debug)]
struct Conv {
    weight: Tensor,
    bias: Tensor,
    stride: i64,
    padding: [i64; 2],
}

impl Conv {
    fn new(p: &nn::Path, input: usize, spec: &ConvSpec) -> Self {
        let k = spec.kernel as i64;
        let fan_in = (input * spec.kernel * spec.kernel) as i64;
        Conv {
            weight: uniform(p, "weight", &[spec.out_channels as i64, input as i64, k, k], fan_in),
            bias: uniform(p, "bias", &[spec.out_channels as i64], fan_in),
            stride: spec.stride as i64,
            padding: [spec.padding.0 as i64, spec.padding.1 as i64],
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(&self.weight, Some(&self.bias), [self.stride; 2], self.padding, [1, 1], 1)
    }
}

/// Convolutions plus ConvLSTM. Parameter names: `conv{0,1,2}.{weight,bias}`,
/// `convlstm.{weight_x,weight_h,bias}`; gates in the order input, forget, cell, output.
#[derive(Debug)]
pub struct VisionCore {
    convs: Vec<Conv>,
    weight_x: Tensor,
    weight_h: Tensor,
    bias: Tensor,
    padding: i64,
    channels: i64,
}

impl VisionCore {
    pub fn new(p: &nn::Path, cfg: &ModelConfig) -> Self {
        let mut input = cfg.in_channels;
        let mut convs = Vec::with_capacity(cfg.convs.len());
        for (i, spec) in cfg.convs.iter().enumerate() {
            convs.push(Conv::new(&(p / format!("conv{i}")), input, spec));
            input = spec.out_channels;
        }
        let c = cfg.convlstm_channels as i64;
        let k = cfg.convlstm_kernel as i64;
        let fan_in = (input as i64 + c) * k * k;
        let lstm = p / "convlstm";
        VisionCore {
            convs,
            weight_x: uniform(&lstm, "weight_x", &[4 * c, input as i64, k, k], fan_in),
            weight_h: uniform(&lstm, "weight_h", &[4 * c, c, k, k], fan_in),
            bias: uniform(&lstm, "bias", &[4 * c], fan_in),
            padding: k / 2,
            channels: c,
        }
    }

    /// The convolutions' output for u8 frames [N, H, W, C]: f32 [N, C', h, w].
    pub fn features(&self, frames: &Tensor) -> Tensor {
        self.conv_outputs(frames).pop().expect("at least one convolution")
    }

    /// Each convolution's output (after its ReLU) for u8 frames [N, H, W, C].
    pub fn conv_outputs(&self, frames: &Tensor) -> Vec<Tensor> {
        // [N,H,W,C] -> [N,C,H,W] is a permute (a strided view), never a reshape.
        let mut x = frames.permute([0, 3, 1, 2]).to_kind(Kind::Float) / 255.0;
        let mut outputs = Vec::with_capacity(self.convs.len());
        for conv in &self.convs {
            x = conv.forward(&x).relu();
            outputs.push(x.shallow_clone());
        }
        outputs
    }

    /// The input part of the ConvLSTM gates for u8 frames [N, H, W, C]:
    /// f32 [N, 4 C, h, w], bias included.
    pub fn input_gates(&self, frames: &Tensor) -> Tensor {
        let x = self.features(frames);
        let p = self.padding;
        x.conv2d(&self.weight_x, Some(&self.bias), [1, 1], [p, p], [1, 1], 1)
    }

    /// One ConvLSTM step from the input gates [B, 4C, h, w] and state (h, c),
    /// each [B, C, h, w] (already zeroed where an episode starts). Returns (h, c).
    pub fn step(&self, input_gates: &Tensor, h: &Tensor, c: &Tensor) -> (Tensor, Tensor) {
        let p = self.padding;
        let gates =
            input_gates + h.conv2d::<&Tensor>(&self.weight_h, None, [1, 1], [p, p], [1, 1], 1);
        let gates = gates.chunk(4, 1);
        let (i, f, g, o) = (&gates[0], &gates[1], &gates[2], &gates[3]);
        let c = f.sigmoid() * c + i.sigmoid() * g.tanh();
        let h = o.sigmoid() * c.tanh();
        (h, c)
    }

    /// ConvLSTM channels C.
    pub fn channels(&self) -> i64 {
        self.channels
    }
}
