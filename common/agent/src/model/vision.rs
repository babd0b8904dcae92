//! The vision core: three convolutions with ReLU over the frame scaled to
//! [0, 1], then a ConvLSTM (docs/architecture.md, The model, steps 1-5).
//!
//! The three convolutions do not depend on the recurrent state, so
//! [`VisionCore::features`] runs them over all T*B frames of an unroll in one
//! batched call; the ConvLSTM runs per step, its gates one convolution over the
//! concatenation [x_t, h_{t-1}]. (Splitting that convolution into a batched
//! `conv(x)` for all T*B frames plus a per-step `conv(h)` computes the same but
//! measured slower on CPU: the batched gates' backward pass is memory-bound.
//! See docs/performance.md.)

use std::sync::Mutex;

use tch::{nn, Device, Kind, Tensor};

use wire::config::{ConvSpec, ModelConfig};

use super::winograd::{self, WinogradFilter};
use super::{glorot_uniform, he_uniform, lstm_update, zeros};

/// The elements of a contiguous f32 CPU tensor, borrowed with it.
fn f32_data(t: &Tensor) -> &[f32] {
    assert!(
        t.is_contiguous() && t.kind() == Kind::Float && t.device() == Device::Cpu,
        "a contiguous f32 CPU tensor"
    );
    if t.numel() == 0 {
        return &[];
    }
    // SAFETY: checked above: numel() f32s at data_ptr(), kept alive by `t`.
    unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, t.numel()) }
}

/// [`f32_data`], writable.
///
/// # Safety
/// No other tensor may share `t`'s storage while the slice lives (tensors are
/// shared handles, so `&Tensor` cannot promise this).
#[allow(clippy::mut_from_ref)]
unsafe fn f32_data_mut(t: &Tensor) -> &mut [f32] {
    let len = f32_data(t).len(); // the same checks
    if len == 0 {
        return &mut [];
    }
    // A pointer straight from libtorch, not derived from the shared slice.
    std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, len)
}

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
            weight: he_uniform(
                p,
                "weight",
                &[spec.out_channels as i64, input as i64, k, k],
                fan_in,
            ),
            bias: zeros(p, "bias", &[spec.out_channels as i64]),
            stride: spec.stride as i64,
            padding: [spec.padding.0 as i64, spec.padding.1 as i64],
        }
    }

    /// The convolution in `kind` (x is already of that kind).
    fn forward(&self, x: &Tensor, kind: Kind) -> Tensor {
        x.conv2d(
            &self.weight.to_kind(kind),
            Some(&self.bias.to_kind(kind)),
            [self.stride; 2],
            self.padding,
            [1, 1],
            1,
        )
    }
}

/// Convolutions plus ConvLSTM. Parameter names: `conv{0,1,2}.{weight,bias}`,
/// `convlstm.weight` [4C, C' + C, k, k] (input channels: features, then hidden
/// state) and `convlstm.bias` [4C]; gates in the order input, forget, cell, output.
#[derive(Debug)]
pub struct VisionCore {
    convs: Vec<Conv>,
    weight: Tensor,
    bias: Tensor,
    padding: i64,
    channels: i64,
    /// What the convolutions compute in ([`crate::precision::Precision`]).
    pub(crate) kind: Kind,
    /// The gate filter in the Winograd domain for [`VisionCore::step_for_inference`],
    /// with the weight's version counter and data address it was built from.
    /// libtorch bumps the counter on every in-place write through its
    /// operations (loading weights with `copy_`, an optimizer step); `set_data`
    /// (tch's `set_kind`, `set_device`) keeps it but moves the data. Writes
    /// through a raw `data_ptr` would go unseen: the model makes none.
    winograd: Mutex<Option<((i64, usize), WinogradFilter)>>,
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
            weight: glorot_uniform(
                &lstm,
                "weight",
                &[4 * c, input as i64 + c, k, k],
                fan_in,
                4 * c * k * k,
            ),
            bias: zeros(&lstm, "bias", &[4 * c]),
            padding: k / 2,
            channels: c,
            kind: Kind::Float,
            winograd: Mutex::new(None),
        }
    }

    /// The convolutions' output for u8 frames [N, H, W, C]: [N, C', h, w], in
    /// the compute kind (f32, or bf16 under [`crate::precision::Precision::Bf16`]).
    pub fn features(&self, frames: &Tensor) -> Tensor {
        let x = self.conv_outputs(frames).pop().expect("at least one convolution");
        // The permuted input makes the convolutions' outputs channels-last; the
        // per-step ConvLSTM runs faster on the plain layout.
        x.contiguous()
    }

    /// Each convolution's output (after its ReLU) for u8 frames [N, H, W, C].
    pub fn conv_outputs(&self, frames: &Tensor) -> Vec<Tensor> {
        // [N,H,W,C] -> [N,C,H,W] is a permute (a strided view), never a reshape.
        let mut x = (frames.permute([0, 3, 1, 2]).to_kind(Kind::Float) / 255.0).to_kind(self.kind);
        let mut outputs = Vec::with_capacity(self.convs.len());
        for conv in &self.convs {
            x = conv.forward(&x, self.kind).relu();
            outputs.push(x.shallow_clone());
        }
        outputs
    }

    /// One ConvLSTM step from the features x [B, C', h, w] and state (h, c),
    /// each f32 [B, C, h, w] (already zeroed where an episode starts). Returns
    /// (h, c), f32. The gate convolution runs in the compute kind; the gate
    /// nonlinearities and the states stay f32, as autocast would keep them.
    pub fn step(&self, x: &Tensor, h: &Tensor, c: &Tensor) -> (Tensor, Tensor) {
        let p = self.padding;
        let k = self.kind;
        let gates = Tensor::cat(&[x.to_kind(k), h.to_kind(k)], 1)
            .conv2d(&self.weight.to_kind(k), Some(&self.bias.to_kind(k)), [1, 1], [p, p], [1, 1], 1)
            .to_kind(Kind::Float);
        lstm_update(&gates, c)
    }

    /// [`VisionCore::step`] for inference, without gradients: on the CPU in
    /// f32 with a 3x3 kernel the gate convolution runs as Winograd F(2x2, 3x3)
    /// ([`winograd`]), 2.25x fewer multiply-adds than libtorch's direct
    /// convolution; otherwise this is [`VisionCore::step`]. Call it under
    /// `tch::no_grad`: nothing flows back through this route.
    pub(crate) fn step_for_inference(
        &self,
        x: &Tensor,
        h: &Tensor,
        c: &Tensor,
    ) -> (Tensor, Tensor) {
        let cpu_f32 = |t: &Tensor| t.device() == Device::Cpu && t.kind() == Kind::Float;
        let applies = self.kind == Kind::Float
            && cpu_f32(x)
            && cpu_f32(h)
            && cpu_f32(&self.weight)
            && cpu_f32(&self.bias)
            && self.weight.size()[2..] == [3, 3]
            && x.numel() > 0
            && !x.requires_grad()
            && !h.requires_grad();
        if !applies {
            return self.step(x, h, c);
        }
        // Channels-last [B, h, w, C' + C] in one copy (see `winograd::conv3x3`).
        let xh = Tensor::cat(&[x.permute([0, 2, 3, 1]), h.permute([0, 2, 3, 1])], 3).contiguous();
        let (batch, height, width, ci) = xh.size4().expect("[B, h, w, C]");
        let co = 4 * self.channels;
        let gates = Tensor::empty([batch, height, width, co], (Kind::Float, Device::Cpu));
        let bias = self.bias.contiguous();
        let mut cache = self.winograd.lock().unwrap_or_else(|e| e.into_inner());
        let key = (self.weight.internal_version(), self.weight.data_ptr() as usize);
        if cache.as_ref().map(|(k, _)| *k) != Some(key) {
            let weight = self.weight.contiguous();
            let filter = WinogradFilter::new(f32_data(&weight), co as usize, ci as usize);
            *cache = Some((key, filter));
        }
        let (_, filter) = cache.as_ref().expect("built above");
        let shape = winograd::Shape {
            batch: batch as usize,
            height: height as usize,
            width: width as usize,
        };
        // SAFETY: `gates` was allocated just above, so no other tensor shares
        // its storage.
        let out = unsafe { f32_data_mut(&gates) };
        let threads = tch::get_num_threads() as usize;
        winograd::conv3x3(f32_data(&xh), shape, filter, f32_data(&bias), out, threads);
        drop(cache);
        // A permuted view, [B, 4C, h, w] over the channels-last data; the
        // states leave in the plain layout, as `step`'s do (2 x 0.3 ms here).
        let (h, c) = lstm_update(&gates.permute([0, 3, 1, 2]), c);
        (h.contiguous(), c.contiguous())
    }

    /// ConvLSTM channels C.
    pub fn channels(&self) -> i64 {
        self.channels
    }
}
