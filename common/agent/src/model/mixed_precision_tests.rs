//! Tests of the bf16 precision policy (crate::precision): the same weights
//! and inputs in bf16 and in fp32 give outputs and gradients within stated
//! tolerances, and the parameters and their gradients stay f32.
//!
//! The tolerances are about 3x the largest difference measured (bf16 keeps 8
//! significant bits, a relative error of up to 2^-9 per rounding). The seeds are
//! fixed, but tests in parallel share torch's generator, so the inputs vary a
//! little from run to run.

use tch::{Device, Kind, Tensor};

use super::tests::{random_unroll, setup};
use super::*;
use crate::precision::Precision;

/// max |a - b| / max(max |b|, 1e-3): the error relative to the fp32 output's scale.
fn relative_error(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    assert_eq!(a.kind(), Kind::Float, "outputs are f32 in every precision");
    let scale = b.abs().max().double_value(&[]).max(1e-3);
    (a - b).abs().max().double_value(&[]) / scale
}

/// Runs the same unroll in fp32 and bf16; returns (name, relative error) per
/// output and final state.
fn compare_outputs(cfg: ModelConfig, t: i64, b: i64, seed: i64) -> Vec<(&'static str, f64)> {
    setup(seed);
    let mut model = Model::new(cfg.clone(), Device::Cpu);
    // No episode starts: with zero biases the queries of a zero core state are
    // zero, and steps right after a reset would attend uniformly in both precisions.
    let input = random_unroll(&cfg, t, b, 0.0);
    let init = AgentState::zeros(&cfg, b, Device::Cpu);
    let (o32, s32) = tch::no_grad(|| model.unroll(&input, &init));
    model.set_precision(Precision::Bf16);
    let (o16, s16) = tch::no_grad(|| model.unroll(&input, &init));
    vec![
        ("policy_logits", relative_error(&o16.policy_logits, &o32.policy_logits)),
        ("baseline", relative_error(&o16.baseline, &o32.baseline)),
        ("attention", relative_error(&o16.attention, &o32.attention)),
        ("attention_content", relative_error(&o16.attention_content, &o32.attention_content)),
        ("attention_place", relative_error(&o16.attention_place, &o32.attention_place)),
        ("vision_h", relative_error(&s16.vision_h, &s32.vision_h)),
        ("vision_c", relative_error(&s16.vision_c, &s32.vision_c)),
        ("core_h", relative_error(&s16.core_h, &s32.core_h)),
        ("core_c", relative_error(&s16.core_c, &s32.core_c)),
    ]
}

fn check_outputs(cfg: ModelConfig, t: i64, b: i64, seed: i64, tolerance: f64) {
    let errors = compare_outputs(cfg, t, b, seed);
    eprintln!("bf16 vs fp32, relative error: {errors:?}");
    for (name, e) in &errors {
        assert!(*e <= tolerance, "{name}: bf16 differs from fp32 by {e:e} (> {tolerance:e})");
    }
    // bf16 must actually be in effect: identical outputs would mean the policy
    // did nothing.
    assert!(errors.iter().any(|(_, e)| *e > 1e-5), "bf16 gave fp32's outputs exactly: {errors:?}");
}

/// Stated tolerance for outputs: 8% of the output's scale (measured: up to
/// 2.5%, on the attention's content logits).
const OUTPUT_TOLERANCE: f64 = 0.08;

#[test]
fn bf16_outputs_stay_within_tolerance_of_fp32_small() {
    check_outputs(ModelConfig::small(3), 10, 4, 21, OUTPUT_TOLERANCE);
}

#[test]
fn bf16_outputs_stay_within_tolerance_of_fp32_paper() {
    check_outputs(ModelConfig::paper(18), 3, 2, 22, OUTPUT_TOLERANCE);
}

/// Gradients of a loss that reads every output, for every parameter.
fn gradients(
    model: &Model,
    input: &Unroll,
    init: &AgentState,
    weights: &[Tensor; 3],
) -> Vec<(String, Tensor)> {
    for mut v in model.vs.trainable_variables() {
        v.zero_grad();
    }
    let (out, _) = model.unroll(input, init);
    let loss = (out.policy_logits.log_softmax(-1, Kind::Float) * &weights[0]).sum(Kind::Float)
        + (&out.baseline * &weights[1]).sum(Kind::Float)
        + (&out.attention * &weights[2]).sum(Kind::Float);
    loss.backward();
    let mut grads: Vec<(String, Tensor)> = model
        .vs
        .variables()
        .into_iter()
        .map(|(name, v)| {
            assert_eq!(v.kind(), Kind::Float, "{name}: parameters stay f32");
            let g = v.grad();
            assert!(g.defined(), "{name}: no gradient");
            assert_eq!(g.kind(), Kind::Float, "{name}: gradients reach the f32 weights as f32");
            (name, g.copy())
        })
        .collect();
    grads.sort_by(|a, b| a.0.cmp(&b.0));
    grads
}

#[test]
fn bf16_gradients_match_fp32_and_weights_stay_f32() {
    setup(23);
    let cfg = ModelConfig::small(3);
    let mut model = Model::new(cfg.clone(), Device::Cpu);
    let (t, b) = (10, 4);
    let input = random_unroll(&cfg, t, b, 0.2);
    let init = AgentState::zeros(&cfg, b, Device::Cpu);
    let (gh, gw) = cfg.grid();
    let weights = [
        Tensor::randn([t, b, cfg.num_actions as i64], (Kind::Float, Device::Cpu)),
        Tensor::randn([t, b], (Kind::Float, Device::Cpu)),
        Tensor::randn([t, b, cfg.heads as i64, gh as i64, gw as i64], (Kind::Float, Device::Cpu)),
    ];
    let g32 = gradients(&model, &input, &init, &weights);
    model.set_precision(Precision::Bf16);
    let g16 = gradients(&model, &input, &init, &weights);
    // The whole gradient: |g16 - g32| / |g32| in the Euclidean norm, and per
    // parameter tensor the cosine between the two directions.
    let flat = |g: &[(String, Tensor)]| {
        Tensor::cat(&g.iter().map(|(_, t)| t.flatten(0, -1)).collect::<Vec<_>>(), 0)
    };
    let (all16, all32) = (flat(&g16), flat(&g32));
    let whole = (&all16 - &all32).norm().double_value(&[]) / all32.norm().double_value(&[]);
    let mut worst_cosine = (String::new(), 1.0f64);
    for ((name, a), (_, b)) in g16.iter().zip(&g32) {
        let denominator = a.norm().double_value(&[]) * b.norm().double_value(&[]);
        let cosine = (a * b).sum(Kind::Double).double_value(&[]) / denominator.max(1e-30);
        if cosine < worst_cosine.1 {
            worst_cosine = (name.clone(), cosine);
        }
    }
    eprintln!("bf16 vs fp32 gradients: relative error {whole:.4}, lowest cosine {worst_cosine:?}");
    assert!(
        whole <= GRADIENT_TOLERANCE,
        "the gradient differs by {whole:e} (> {GRADIENT_TOLERANCE:e})"
    );
    assert!(
        worst_cosine.1 >= GRADIENT_MIN_COSINE,
        "{}: gradient direction has cosine {} to fp32's (< {GRADIENT_MIN_COSINE})",
        worst_cosine.0,
        worst_cosine.1
    );
    assert!(whole > 1e-5, "bf16 gave fp32's gradients exactly");
}

/// Stated tolerances for gradients: 12% in norm over all parameters (measured
/// over 12 runs: 2.3-7.1%), and a cosine of at least 0.90 between bf16's and
/// fp32's gradient of each parameter tensor (measured: 0.955 and above; the
/// lowest are the first convolution's bias, a sum over every position whose
/// terms largely cancel).
const GRADIENT_TOLERANCE: f64 = 0.12;
const GRADIENT_MIN_COSINE: f64 = 0.90;

#[test]
fn precision_is_a_switch_not_a_conversion() {
    // Switching to bf16 and back leaves the weights untouched and fp32's
    // outputs exactly as before.
    setup(24);
    let cfg = ModelConfig::small(3);
    let mut model = Model::new(cfg.clone(), Device::Cpu);
    let input = random_unroll(&cfg, 3, 2, 0.2);
    let init = AgentState::zeros(&cfg, 2, Device::Cpu);
    let before = model.to_safetensors().unwrap();
    let (a, _) = tch::no_grad(|| model.unroll(&input, &init));
    model.set_precision(Precision::Bf16);
    let _ = tch::no_grad(|| model.unroll(&input, &init));
    model.set_precision(Precision::Fp32);
    let (b, _) = tch::no_grad(|| model.unroll(&input, &init));
    assert_eq!(model.to_safetensors().unwrap(), before);
    assert!(a.policy_logits.equal(&b.policy_logits));
    assert_eq!(model.agent.precision(), Precision::Fp32);
}

/// bf16 on a GPU against fp32 on the CPU, same weights and inputs (cuBLAS and
/// cuDNN round differently from oneDNN). Also what `auto` resolves to there.
/// Skipped, loudly, where there is no GPU (`fixtures::skip_test`).
#[test]
fn bf16_on_cuda_stays_within_tolerance_of_fp32() {
    if !tch::Cuda::is_available() {
        wire::fixtures::skip_test("bf16_on_cuda_stays_within_tolerance_of_fp32", "no CUDA device");
        return;
    }
    let auto = crate::precision::PrecisionChoice::Auto.resolve(Device::Cuda(0)).unwrap();
    eprintln!("auto on cuda:0: {} ({})", auto.precision, auto.reason);
    setup(25);
    let cfg = ModelConfig::paper(18);
    let cpu = Model::new(cfg.clone(), Device::Cpu);
    let mut gpu = Model::new(cfg.clone(), Device::Cuda(0));
    gpu.load_safetensors(&cpu.to_safetensors().unwrap()).unwrap();
    gpu.set_precision(Precision::Bf16);
    let (t, b) = (3, 4);
    let input = random_unroll(&cfg, t, b, 0.0);
    let init = AgentState::zeros(&cfg, b, Device::Cpu);
    let d = Device::Cuda(0);
    let gpu_input = Unroll {
        frame: input.frame.to_device(d),
        reward: input.reward.to_device(d),
        done: input.done.to_device(d),
        last_action: input.last_action.to_device(d),
    };
    let (a, _) = tch::no_grad(|| cpu.unroll(&input, &init));
    let (g, _) = tch::no_grad(|| gpu.unroll(&gpu_input, &AgentState::zeros(&cfg, b, d)));
    for (name, x, y) in [
        ("policy_logits", &a.policy_logits, &g.policy_logits),
        ("baseline", &a.baseline, &g.baseline),
        ("attention", &a.attention, &g.attention),
    ] {
        let e = relative_error(&y.to_device(Device::Cpu), x);
        eprintln!("cuda bf16 vs cpu fp32 {name}: relative error {e:e}");
        assert!(e <= OUTPUT_TOLERANCE, "{name}: {e:e}");
    }
}
