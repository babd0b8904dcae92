//! The numeric precision a process computes the model in (`--precision`).
//!
//! tch 0.24 has no CPU autocast, so the model applies the policy itself
//! ([`crate::model`]): in [`Precision::Bf16`] the convolutions, the ConvLSTM's
//! gate convolution and every linear layer run in bfloat16, on bfloat16 copies
//! of float32 weights; everything where precision matters stays float32: the
//! gate nonlinearities and the recurrent states, the attention logits and
//! softmax, the answers, the losses and V-trace. The learner's weights (its
//! "master weights") and optimizer state stay float32, and the gradients reach
//! them through the casts in float32.
//!
//! bfloat16 pays only where it is the bottleneck's native arithmetic. On a
//! CPU with AVX-512 BF16 or AMX the paper-sized agent ran 2-2.6x faster in
//! bf16; on a CPU without them oneDNN converts each operand to float32 and
//! back and the model ran 2-3x slower; on an H200 GPU, at the learner's
//! sizes, bf16 was slower too (kernel launches, not arithmetic, bound it).
//! So `auto` picks bf16 only on a CPU with native bfloat16, and says why
//! (measurements in docs/performance.md).

use std::fmt;

use tch::{Device, Kind};

use crate::machine::{self, FeatureSource, MachineError};

/// What the user asked for.
#[derive(
    clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PrecisionChoice {
    /// float32 everywhere.
    Fp32,
    /// bfloat16 convolutions and linear layers, float32 for the rest.
    Bf16,
    /// bf16 where the device computes it natively, fp32 otherwise.
    Auto,
}

/// The precision a process runs in, after `auto` is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Bf16,
}

impl Precision {
    /// The kind the convolutions and linear layers compute in.
    pub fn compute_kind(self) -> Kind {
        match self {
            Precision::Fp32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        })
    }
}

/// A resolved precision and the reason for it, for the log and meta.json.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub precision: Precision,
    pub reason: String,
}

impl PrecisionChoice {
    /// Resolves `auto` for `device`; `fp32` and `bf16` are taken as asked.
    ///
    /// On the CPU, `auto` reads the CPU's native bfloat16 features, or the
    /// ones `AAA_CPU_BF16` states; under `AAA_NO_AUTODETECT` it must be told
    /// ([`crate::machine`]), so that no test's numbers depend on the CPU.
    pub fn resolve(self, device: Device) -> Result<Resolved, MachineError> {
        Ok(match self {
            PrecisionChoice::Fp32 => {
                Resolved { precision: Precision::Fp32, reason: "--precision fp32".into() }
            }
            PrecisionChoice::Bf16 => {
                Resolved { precision: Precision::Bf16, reason: "--precision bf16".into() }
            }
            PrecisionChoice::Auto => match device {
                Device::Cuda(i) => resolve_cuda(i),
                _ => {
                    let (features, source) = machine::cpu_bf16_features()?;
                    resolve_cpu(&features, source)
                }
            },
        })
    }
}

/// `auto` on the CPU: bf16 with AVX-512 BF16 or AMX (`features`), else fp32.
pub fn resolve_cpu(features: &[&str], source: FeatureSource) -> Resolved {
    let stated = match source {
        FeatureSource::Detected => String::new(),
        FeatureSource::Stated => format!(" ({source})"),
    };
    if features.is_empty() {
        Resolved {
            precision: Precision::Fp32,
            reason: format!(
                "auto: this CPU has neither AVX-512 BF16 nor AMX{stated}, so bfloat16 would be \
                 emulated and slower than float32"
            ),
        }
    } else {
        Resolved {
            precision: Precision::Bf16,
            reason: format!(
                "auto: this CPU computes bfloat16 natively ({}){stated}",
                features.join(", ")
            ),
        }
    }
}

/// `auto` on a GPU: fp32. On an H200 the paper-sized agent ran slower in bf16
/// than in fp32 at the learner's sizes (T = 20, B = 8): training 0.53x and
/// inference 0.79x, and plain PyTorch's autocast 0.84x and 0.66x
/// (docs/performance.md). At these sizes the GPU waits on kernel launches, not
/// arithmetic, and bf16 adds the casts' launches. `--precision bf16` still
/// runs it, on any GPU that has bfloat16 (compute capability 8.0 and later).
fn resolve_cuda(index: usize) -> Resolved {
    Resolved {
        precision: Precision::Fp32,
        reason: format!(
            "auto: fp32 on cuda:{index}, where bf16 measured slower for this model at the \
             learner's sizes (docs/performance.md); pass --precision bf16 to try it"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_choices_are_taken_as_asked() {
        for device in [Device::Cpu, Device::Cuda(0)] {
            assert_eq!(PrecisionChoice::Fp32.resolve(device).unwrap().precision, Precision::Fp32);
            assert_eq!(PrecisionChoice::Bf16.resolve(device).unwrap().precision, Precision::Bf16);
        }
    }

    /// Both resolutions of `auto` on the CPU, whatever this CPU has; the
    /// binaries' route through `AAA_CPU_BF16` is tested in
    /// tests/tests/precision_auto.rs.
    #[test]
    fn cpu_rule_needs_a_native_bf16_feature() {
        let detected = FeatureSource::Detected;
        assert_eq!(resolve_cpu(&[], detected).precision, Precision::Fp32);
        assert_eq!(resolve_cpu(&["avx512_bf16"], detected).precision, Precision::Bf16);
        assert_eq!(resolve_cpu(&["amx_bf16"], detected).precision, Precision::Bf16);
        let stated = resolve_cpu(&["amx_bf16"], FeatureSource::Stated);
        assert!(stated.reason.contains("stated by AAA_CPU_BF16"), "{}", stated.reason);
        assert!(resolve_cpu(&[], FeatureSource::Stated).reason.starts_with("auto: "));
    }

    #[test]
    fn auto_on_a_gpu_is_fp32() {
        let resolved = PrecisionChoice::Auto.resolve(Device::Cuda(0)).unwrap();
        assert_eq!(resolved.precision, Precision::Fp32);
        assert!(resolved.reason.contains("--precision bf16"), "{}", resolved.reason);
    }

    #[test]
    fn compute_kinds() {
        assert_eq!(Precision::Fp32.compute_kind(), Kind::Float);
        assert_eq!(Precision::Bf16.compute_kind(), Kind::BFloat16);
        assert_eq!(Precision::Bf16.to_string(), "bf16");
    }
}
