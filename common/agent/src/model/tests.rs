//! Tests of the attention agent: shapes, basis, attention, recurrence,
//! bottleneck, weights, and agreement with the plain PyTorch reference.

use std::f64::consts::PI;
use std::path::PathBuf;
use std::process::Command;

use tch::{Device, Kind, Tensor};

use super::attention::{attend, keys_and_values};
use super::weights::{safetensors_to_tensors, tensors_to_safetensors};
use super::*;
use testkit::python;
use wire::protocol::ProtocolError;

pub(super) fn setup(seed: i64) {
    tch::set_num_threads(2);
    tch::manual_seed(seed);
}

/// A random unroll [T, B] for `cfg`; `done_p` is the chance of an episode start.
pub(super) fn random_unroll(cfg: &ModelConfig, t: i64, b: i64, done_p: f64) -> Unroll {
    let (h, w, c) = (cfg.height as i64, cfg.width as i64, cfg.in_channels as i64);
    Unroll {
        frame: Tensor::randint(256, [t, b, h, w, c], (Kind::Uint8, Device::Cpu)),
        reward: Tensor::randn([t, b], (Kind::Float, Device::Cpu)) * 2.0,
        done: Tensor::rand([t, b], (Kind::Float, Device::Cpu)).lt(done_p),
        last_action: Tensor::randint(cfg.num_actions as i64, [t, b], (Kind::Int64, Device::Cpu)),
    }
}

fn random_state(cfg: &ModelConfig, b: i64) -> AgentState {
    let z = AgentState::zeros(cfg, b, Device::Cpu);
    let r = |t: &Tensor| t.rand_like() * 2.0 - 1.0;
    AgentState {
        vision_h: r(&z.vision_h),
        vision_c: r(&z.vision_c),
        core_h: r(&z.core_h),
        core_c: r(&z.core_c),
    }
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    (a - b).abs().max().double_value(&[])
}

fn assert_close(name: &str, a: &Tensor, b: &Tensor, tol: f64) {
    let d = max_diff(a, b);
    assert!(d <= tol, "{name}: max |difference| {d:e} > {tol:e}");
}

fn outputs(o: &AgentOutput) -> [(&'static str, &Tensor); 5] {
    [
        ("policy_logits", &o.policy_logits),
        ("baseline", &o.baseline),
        ("attention", &o.attention),
        ("attention_content", &o.attention_content),
        ("attention_place", &o.attention_place),
    ]
}

fn states(s: &AgentState) -> [(&'static str, &Tensor); 4] {
    [
        ("vision_h", &s.vision_h),
        ("vision_c", &s.vision_c),
        ("core_h", &s.core_h),
        ("core_c", &s.core_c),
    ]
}

fn slice_unroll(u: &Unroll, t: i64) -> Unroll {
    Unroll {
        frame: u.frame.narrow(0, t, 1),
        reward: u.reward.narrow(0, t, 1),
        done: u.done.narrow(0, t, 1),
        last_action: u.last_action.narrow(0, t, 1),
    }
}

#[test]
fn paper_shapes_match_the_spec_table() {
    setup(0);
    let cfg = ModelConfig::paper(18);
    let model = Model::new(cfg.clone(), Device::Cpu);
    let agent = &model.agent;
    let (t, b) = (2, 3);
    let n = t * b;
    let input = random_unroll(&cfg, t, b, 0.3);
    tch::no_grad(|| {
        let frames = input.frame.flatten(0, 1);
        let convs = agent.vision().conv_outputs(&frames);
        assert_eq!(convs[0].size(), [n, 32, 53, 40]);
        assert_eq!(convs[1].size(), [n, 64, 27, 20]);
        assert_eq!(convs[2].size(), [n, 64, 27, 20]);
        let features = agent.vision().features(&frames);
        assert_eq!(features.size(), [n, 64, 27, 20]);
        let state = AgentState::zeros(&cfg, b, Device::Cpu);
        let features_0 = features.narrow(0, 0, b);
        let (trace, next) =
            agent.step(&features_0, &input.reward.get(0), &input.last_action.get(0), state);
        assert_eq!(next.vision_h.size(), [b, 128, 27, 20]);
        assert_eq!(next.vision_c.size(), [b, 128, 27, 20]);
        let (keys, values) = keys_and_values(&next.vision_h, agent.basis(), 8);
        assert_eq!(keys.size(), [b, 540, 72]);
        assert_eq!(values.size(), [b, 540, 184]);
        assert_eq!(trace.queries.size(), [b, 4, 72]);
        assert_eq!(trace.attention.size(), [b, 4, 540]);
        assert_eq!(trace.answers.size(), [b, 4, 184]);
        let core_input = agent.policy_core().input(
            &trace.answers,
            &trace.queries,
            &input.reward.get(0),
            &input.last_action.get(0),
        );
        assert_eq!(core_input.size(), [b, 1043]);
        assert_eq!(next.core_h.size(), [b, 256]);
        assert_eq!(trace.policy_logits.size(), [b, 18]);
        assert_eq!(trace.baseline.size(), [b]);

        let (out, last) = model.unroll(&input, &AgentState::zeros(&cfg, b, Device::Cpu));
        assert_eq!(out.policy_logits.size(), [t, b, 18]);
        assert_eq!(out.baseline.size(), [t, b]);
        for map in [&out.attention, &out.attention_content, &out.attention_place] {
            assert_eq!(map.size(), [t, b, 4, 27, 20]);
        }
        assert_eq!(last.core_c.size(), [b, 256]);
    });
}

#[test]
fn spatial_basis_equals_the_formula() {
    let cfg = ModelConfig::paper(18);
    let (h, w) = cfg.grid();
    let basis = spatial_basis::spatial_basis(h, w, 4, Device::Cpu);
    assert_eq!(basis.size(), [540, 64]);
    let mut rng_state = 12345u64;
    let mut next = |n: usize| {
        rng_state = rng_state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((rng_state >> 33) as usize) % n
    };
    let funcs: [fn(f64) -> f64; 2] = [f64::cos, f64::sin];
    for _ in 0..200 {
        let (i, j, u, v, a, b) = (next(h), next(w), next(4) + 1, next(4) + 1, next(2), next(2));
        let want = funcs[a](PI * u as f64 * i as f64 / h as f64)
            * funcs[b](PI * v as f64 * j as f64 / w as f64);
        let channel = ((u - 1) * 4 + (v - 1)) * 4 + 2 * a + b;
        let got = basis.double_value(&[(i * w + j) as i64, channel as i64]);
        assert!((got - want).abs() < 1e-6, "S[{i},{j},u={u},v={v},{a}{b}] = {got}, want {want}");
    }
    // 64 distinct channels: no two columns equal (a cos-only basis would repeat).
    let gram = basis.transpose(0, 1).matmul(&basis);
    let norms = gram.diagonal(0, 0, 1);
    let cos = &gram / norms.sqrt().outer(&norms.sqrt());
    let off = cos - Tensor::eye(64, (Kind::Float, Device::Cpu));
    assert!(off.abs().max().double_value(&[]) < 0.999);
}

#[test]
fn each_heads_attention_sums_to_one() {
    setup(1);
    let cfg = ModelConfig::small(4);
    let model = Model::new(cfg.clone(), Device::Cpu);
    let input = random_unroll(&cfg, 4, 3, 0.2);
    let (out, _) = tch::no_grad(|| model.unroll(&input, &random_state(&cfg, 3)));
    let sums = out.attention.sum_dim_intlist([3, 4].as_slice(), false, Kind::Float);
    assert_eq!(sums.size(), [4, 3, cfg.heads as i64]);
    assert_close("attention sums", &sums, &sums.ones_like(), 1e-5);
    assert!(out.attention.min().double_value(&[]) >= 0.0);
    // The logits are the sum of their two parts: recompute the softmax from them.
    let logits = &out.attention_content + &out.attention_place;
    let (gh, gw) = cfg.grid();
    let (t, b, heads, h, w) = (4, 3, cfg.heads as i64, gh as i64, gw as i64);
    let soft = logits.view([t, b, heads, h * w]).softmax(-1, Kind::Float).view([t, b, heads, h, w]);
    assert_close("softmax(content + place)", &soft, &out.attention, 1e-6);
}

#[test]
fn explicit_keys_and_values_agree_with_the_factored_attention() {
    setup(2);
    let cfg = ModelConfig::small(4);
    let (h, w) = cfg.grid();
    let (b, c, heads) = (3, cfg.convlstm_channels as i64, cfg.heads as i64);
    let output = Tensor::randn([b, c, h as i64, w as i64], (Kind::Float, Device::Cpu));
    let queries = Tensor::randn([b, heads, cfg.query_width() as i64], (Kind::Float, Device::Cpu));
    let basis = spatial_basis::spatial_basis(h, w, cfg.basis_frequencies, Device::Cpu);
    let basis_t = basis.transpose(0, 1).contiguous();
    let ck = cfg.key_channels as i64;
    let att = attend(&queries, &output, &basis, &basis_t, ck, attention::LogitShape::PAPER);
    let (keys, values) = keys_and_values(&output, &basis, ck);
    // Key of position p holds channel k of the output at (p / w, p % w); a
    // cell off the diagonal, so rows and columns cannot be confused.
    let (i, j, k) = (h - 2, w - 1, 3);
    assert_eq!(
        keys.double_value(&[1, (i * w + j) as i64, k]),
        output.double_value(&[1, k, i as i64, j as i64])
    );
    let logits = queries.matmul(&keys.transpose(1, 2));
    let attention = logits.softmax(-1, Kind::Float);
    let answers = attention.matmul(&values);
    assert_close("logits", &logits, &(&att.content + &att.place), 1e-4);
    // Float rounding of the logits (|logit| ~ 10, summed in another order)
    // moves a weight by ~1e-6; a wrong pairing would move it by ~0.1.
    assert_close("attention", &attention, &att.attention, 5e-6);
    assert_close("answers", &answers, &att.answers, 1e-5);
}

#[test]
fn one_unroll_of_t_equals_t_unrolls_of_one_step() {
    setup(3);
    let cfg = ModelConfig::small(5);
    let model = Model::new(cfg.clone(), Device::Cpu);
    let (t, b) = (6, 3);
    let input = random_unroll(&cfg, t, b, 0.25);
    let init = random_state(&cfg, b);
    tch::no_grad(|| {
        let (whole, whole_state) = model.unroll(&input, &init);
        let mut state = init.shallow_clone();
        let mut steps: Vec<AgentOutput> = Vec::new();
        for s in 0..t {
            let (out, next) = model.unroll(&slice_unroll(&input, s), &state);
            steps.push(out);
            state = next;
        }
        for (k, (name, whole)) in outputs(&whole).into_iter().enumerate() {
            let parts: Vec<Tensor> =
                steps.iter().map(|o| outputs(o)[k].1.shallow_clone()).collect();
            assert_close(name, whole, &Tensor::cat(&parts, 0), 1e-5);
        }
        for ((name, a), (_, b)) in states(&whole_state).into_iter().zip(states(&state)) {
            assert_close(name, a, b, 1e-5);
        }
    });
}

#[test]
fn done_makes_the_output_independent_of_the_past() {
    setup(4);
    let cfg = ModelConfig::small(4);
    let model = Model::new(cfg.clone(), Device::Cpu);
    let (t, b, start) = (6, 2, 3);
    let first = random_unroll(&cfg, t, b, 0.0);
    let other = random_unroll(&cfg, t, b, 0.0);
    // Same steps from `start` on (where every env starts an episode), different before.
    let splice = |a: &Tensor, b: &Tensor| {
        Tensor::cat(&[b.narrow(0, 0, start), a.narrow(0, start, t - start)], 0)
    };
    let done = Tensor::zeros([t, b], (Kind::Bool, Device::Cpu));
    let _ = done.get(start).fill_(1);
    let first = Unroll { done: done.copy(), ..first };
    let second = Unroll {
        frame: splice(&first.frame, &other.frame),
        reward: splice(&first.reward, &other.reward),
        done: done.copy(),
        last_action: splice(&first.last_action, &other.last_action),
    };
    tch::no_grad(|| {
        let (a, _) = model.unroll(&first, &random_state(&cfg, b));
        let (c, _) = model.unroll(&second, &random_state(&cfg, b));
        // Before the done the outputs differ...
        assert!(
            max_diff(&a.policy_logits.narrow(0, 0, start), &c.policy_logits.narrow(0, 0, start))
                > 1e-4
        );
        // ...from it on they are the same.
        for ((name, x), (_, y)) in outputs(&a).into_iter().zip(outputs(&c)) {
            assert_close(
                name,
                &x.narrow(0, start, t - start),
                &y.narrow(0, start, t - start),
                1e-6,
            );
        }
    });
}

#[test]
fn the_frame_reaches_the_policy_only_through_the_answers() {
    setup(5);
    let cfg = ModelConfig::small(4);
    let model = Model::new(cfg.clone(), Device::Cpu);
    let agent = &model.agent;
    let b = 3;
    let one = random_unroll(&cfg, 1, b, 0.0);
    let two = random_unroll(&cfg, 1, b, 0.0);
    let state = random_state(&cfg, b);
    let (reward, last_action) = (one.reward.get(0), one.last_action.get(0));
    tch::no_grad(|| {
        let step = |frame: &Tensor| {
            let features = agent.vision().features(&frame.flatten(0, 1));
            agent.step(&features, &reward, &last_action, state.shallow_clone())
        };
        let (a, _) = step(&one.frame);
        let (c, _) = step(&two.frame);
        // The frame matters...
        let moved = max_diff(&a.policy_logits, &c.policy_logits);
        assert!(moved > 1e-7, "the frame does not reach the policy ({moved:e})");
        assert!(max_diff(&a.answers, &c.answers) > 1e-4);
        // ...the queries do not see it...
        assert_eq!(max_diff(&a.queries, &c.queries), 0.0);
        // ...and with the answers held fixed, the policy does not move.
        let (logits, baseline, _, _) = agent.policy_from_answers(
            &a.answers,
            &c.queries,
            &reward,
            &last_action,
            &state.core_h,
            &state.core_c,
        );
        assert_eq!(max_diff(&logits, &a.policy_logits), 0.0);
        assert_eq!(max_diff(&baseline, &a.baseline), 0.0);
    });
    // The same, by gradients: with the answers detached, nothing flows back to the frame.
    let features =
        agent.vision().features(&one.frame.flatten(0, 1)).detach().set_requires_grad(true);
    let (trace, _) = agent.step(&features, &reward, &last_action, state.shallow_clone());
    let (logits, _, _, _) = agent.policy_from_answers(
        &trace.answers.detach(),
        &trace.queries,
        &reward,
        &last_action,
        &state.core_h,
        &state.core_c,
    );
    logits.sum(Kind::Float).backward();
    assert!(!features.grad().defined() || features.grad().abs().max().double_value(&[]) == 0.0);
    // A fresh forward pass, answers attached: now the gradient does reach the frame.
    let (trace, _) = agent.step(&features, &reward, &last_action, state.shallow_clone());
    trace.policy_logits.sum(Kind::Float).backward();
    assert!(features.grad().abs().max().double_value(&[]) > 0.0);
}

#[test]
fn weights_survive_a_safetensors_round_trip_bit_for_bit() {
    setup(6);
    let cfg = ModelConfig::small(4);
    let a = Model::new(cfg.clone(), Device::Cpu);
    tch::manual_seed(7);
    let mut b = Model::new(cfg.clone(), Device::Cpu);
    let bytes = a.to_safetensors().unwrap();
    b.load_safetensors(&bytes).unwrap();
    let (va, vb) = (a.vs.variables(), b.vs.variables());
    assert_eq!(va.len(), vb.len());
    assert!(va.len() >= 20);
    for (name, t) in &va {
        let u = &vb[name];
        let bits = |x: &Tensor| {
            let mut v = vec![0u8; x.numel() * 4];
            x.copy_data_u8(&mut v, x.numel());
            v
        };
        assert_eq!(bits(t), bits(u), "{name} differs after the round trip");
    }
    assert_eq!(b.to_safetensors().unwrap(), bytes, "serialisation is not deterministic");
    // The metadata names the architecture, for any safetensors reader.
    assert_eq!(weights::fingerprint_of(&bytes).unwrap(), Some(cfg.fingerprint()));
}

#[test]
fn weights_of_another_architecture_are_refused() {
    setup(8);
    let small4 = Model::new(ModelConfig::small(4), Device::Cpu);
    let mut small5 = Model::new(ModelConfig::small(5), Device::Cpu);
    let before = small5.to_safetensors().unwrap();
    let params = small4.to_params(3).unwrap();
    match small5.load_params(&params) {
        Err(ModelError::Protocol(ProtocolError::Fingerprint { got, want })) => {
            assert_eq!(got, ModelConfig::small(4).fingerprint());
            assert_eq!(want, ModelConfig::small(5).fingerprint());
        }
        other => panic!("expected a fingerprint error, got {other:?}"),
    }
    // A params message whose label lies is still refused by the bytes' own fingerprint.
    let lying = Params { fingerprint: ModelConfig::small(5).fingerprint(), ..params };
    assert!(matches!(
        small5.load_params(&lying),
        Err(ModelError::Protocol(ProtocolError::Fingerprint { .. }))
    ));
    // Bytes without a fingerprint are refused too.
    let bare =
        tensors_to_safetensors(&[("x", &Tensor::zeros([1], (Kind::Float, Device::Cpu)))], None)
            .unwrap();
    assert!(small5.load_safetensors(&bare).is_err());
    assert_eq!(small5.to_safetensors().unwrap(), before, "a refused load changed the weights");
    // The right ones load.
    let mut again = Model::new(ModelConfig::small(4), Device::Cpu);
    again.load_params(&small4.to_params(4).unwrap()).unwrap();
}

#[test]
fn recurrent_state_round_trips_through_the_protocol() {
    setup(9);
    let cfg = ModelConfig::small(4);
    let state = random_state(&cfg, 3);
    let wire: Vec<wire::protocol::RecurrentState> = (0..3).map(|i| state.to_protocol(i)).collect();
    for w in &wire {
        w.validate(&cfg).unwrap();
    }
    let refs: Vec<&wire::protocol::RecurrentState> = vec![&wire[2], &wire[0]];
    let back = AgentState::from_protocol(&refs, &cfg, Device::Cpu).unwrap();
    for ((name, a), (_, b)) in states(&back).into_iter().zip(states(&state)) {
        assert!(a.get(0).equal(&b.get(2)), "{name}");
        assert!(a.get(1).equal(&b.get(0)), "{name}");
    }
    let other = ModelConfig::paper(4);
    assert!(AgentState::from_protocol(&refs, &other, Device::Cpu).is_err());
}

/// Runs `scripts/python/reference_model.py forward` on the same weights and inputs and
/// compares every output and the final state.
fn compare_with_pytorch(cfg: ModelConfig, t: i64, b: i64, seed: i64) {
    setup(seed);
    let model = Model::new(cfg.clone(), Device::Cpu);
    let input = random_unroll(&cfg, t, b, 0.3);
    let init = random_state(&cfg, b);
    let (out, last) = tch::no_grad(|| model.unroll(&input, &init));
    // The actor's pass is held to the same bar: Winograd ConvLSTM gates at the
    // paper preset; the small preset's 1x1 ConvLSTM keeps libtorch's convolution.
    let (act_out, act_last) = model.act(&input, &init);

    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("weights.safetensors");
    let inputs = dir.path().join("inputs.safetensors");
    let result = dir.path().join("outputs.safetensors");
    std::fs::write(&weights, model.to_safetensors().unwrap()).unwrap();
    let done = input.done.to_kind(Kind::Uint8);
    let named = [
        ("frame", &input.frame),
        ("reward", &input.reward),
        ("done", &done),
        ("last_action", &input.last_action),
        ("vision_h", &init.vision_h),
        ("vision_c", &init.vision_c),
        ("core_h", &init.core_h),
        ("core_c", &init.core_c),
    ];
    std::fs::write(&inputs, tensors_to_safetensors(&named, None).unwrap()).unwrap();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/python/reference_model.py");
    let status = Command::new(python())
        .arg(script)
        .args(["forward", "--threads", "2", "--weights"])
        .arg(&weights)
        .arg("--inputs")
        .arg(&inputs)
        .arg("--outputs")
        .arg(&result)
        .status()
        .expect("cannot start the reference script");
    assert!(status.success(), "reference_model.py failed: {status}");
    let theirs = safetensors_to_tensors(&std::fs::read(&result).unwrap()).unwrap();
    for (out, last) in [(&out, &last), (&act_out, &act_last)] {
        for (name, ours) in outputs(out) {
            assert_close(name, ours, &theirs[name], 1e-5);
        }
        for (name, ours) in states(last) {
            assert_close(name, ours, &theirs[&format!("final_{name}")], 1e-5);
        }
    }
}

/// The actor's pass gives the learner's outputs up to rounding, takes its own
/// route (Winograd: not bit for bit the same), and follows new weights: the
/// Winograd filter it caches is rebuilt when the weights change in place.
#[test]
fn acting_equals_learning_and_follows_new_weights() {
    setup(13);
    let cfg = ModelConfig::paper(18);
    let mut model = Model::new(cfg.clone(), Device::Cpu);
    let other = Model::new(cfg.clone(), Device::Cpu);
    let (t, b) = (3, 4);
    let input = random_unroll(&cfg, t, b, 0.3);
    let init = random_state(&cfg, b);
    let compare = |model: &Model| {
        let (want, want_last) = tch::no_grad(|| model.unroll(&input, &init));
        let (got, got_last) = model.act(&input, &init);
        for ((name, x), (_, y)) in outputs(&got).into_iter().zip(outputs(&want)) {
            assert_close(name, x, y, 1e-5);
        }
        for ((name, x), (_, y)) in states(&got_last).into_iter().zip(states(&want_last)) {
            assert_close(name, x, y, 1e-5);
        }
        assert!(
            max_diff(&got_last.vision_c, &want_last.vision_c) > 0.0,
            "act took the learner's route"
        );
        assert!(!got.policy_logits.requires_grad(), "act must not record gradients");
        got.policy_logits
    };
    let before = compare(&model);
    model.load_safetensors(&other.to_safetensors().unwrap()).unwrap();
    let after = compare(&model);
    assert!(max_diff(&before, &after) > 1e-3, "new weights must change the policy");
}

#[test]
fn small_model_equals_the_plain_pytorch_reference() {
    compare_with_pytorch(ModelConfig::small(5), 5, 3, 10);
}

#[test]
fn paper_model_equals_the_plain_pytorch_reference() {
    compare_with_pytorch(ModelConfig::paper(18), 3, 2, 11);
}

/// The no-attention control (`--agent baseline`) against the reference's
/// own pooling, at both presets.
#[test]
fn baseline_agent_equals_the_plain_pytorch_reference() {
    use wire::config::AgentKind;
    compare_with_pytorch(
        ModelConfig { agent: AgentKind::Baseline, ..ModelConfig::small(5) },
        5,
        3,
        12,
    );
    compare_with_pytorch(
        ModelConfig { agent: AgentKind::Baseline, ..ModelConfig::paper(18) },
        2,
        2,
        13,
    );
}

/// The learning peer (scripts/python/peer_vtrace.py, docs/learning.md) starts from
/// the learner's initial weights for the same seed, drawn independently from
/// the same generator: so a seed that fails in one and not the other is not
/// about where the weights started.
#[test]
fn the_learning_peer_starts_from_the_learner_s_initial_weights() {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/python/peer_vtrace.py");
    let dir = tempfile::tempdir().unwrap();
    for (seed, agent) in
        [(1, AgentKind::Attention), (5, AgentKind::Attention), (2, AgentKind::Baseline)]
    {
        // As the learner does: seed, then build.
        setup(seed);
        let model = Model::new(ModelConfig { agent, ..ModelConfig::small(3) }, Device::Cpu);
        let ours = safetensors_to_tensors(&model.to_safetensors().unwrap()).unwrap();
        let path = dir.path().join(format!("peer-{seed}.safetensors"));
        let status = Command::new(python())
            .arg(&script)
            .args(["--seed", &seed.to_string(), "--agent"])
            .arg(if agent == AgentKind::Baseline { "baseline" } else { "attention" })
            .arg("--write-initial-weights")
            .arg(&path)
            .status()
            .expect("cannot start the peer");
        assert!(status.success(), "peer_vtrace.py failed: {status}");
        let theirs = safetensors_to_tensors(&std::fs::read(&path).unwrap()).unwrap();
        let mut names: Vec<_> = ours.keys().collect();
        names.sort();
        let mut their_names: Vec<_> = theirs.keys().collect();
        their_names.sort();
        assert_eq!(names, their_names, "seed {seed}: the same parameters");
        for name in names {
            assert!(ours[name].equal(&theirs[name]), "seed {seed}: {name} differs");
        }
    }
}

/// The control reads the frame without attention: no query network, zero
/// queries, uniform maps; and the frame still reaches its policy.
#[test]
fn the_baseline_agent_has_no_queries_and_sees_the_whole_frame() {
    use wire::config::AgentKind;
    setup(14);
    let cfg = ModelConfig { agent: AgentKind::Baseline, ..ModelConfig::small(3) };
    let model = Model::new(cfg.clone(), Device::Cpu);
    let names: Vec<String> = model.vs.variables().into_keys().collect();
    assert!(names.iter().any(|n| n.starts_with("pool.")), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("query.")), "{names:?}");
    let input = random_unroll(&cfg, 3, 2, 0.3);
    let (out, _) = tch::no_grad(|| model.unroll(&input, &AgentState::zeros(&cfg, 2, Device::Cpu)));
    let (gh, gw) = cfg.grid();
    let uniform = 1.0 / (gh * gw) as f64;
    assert!((out.attention - uniform).abs().max().double_value(&[]) < 1e-7);
    assert_eq!(out.attention_content.abs().max().double_value(&[]), 0.0);
    // Another frame, same everything else: other logits.
    let other = Unroll { frame: input.frame.flip([2]), ..input };
    let (moved, _) =
        tch::no_grad(|| model.unroll(&other, &AgentState::zeros(&cfg, 2, Device::Cpu)));
    let changed = (moved.policy_logits - out.policy_logits).abs().max().double_value(&[]);
    assert!(changed > 1e-6, "the frame does not reach the baseline's policy: {changed}");
}

/// On a machine with CUDA: the model on the GPU gives the CPU's outputs (within
/// TF32-level tolerance: cuDNN may use TF32 convolutions), and loads the same
/// safetensors bytes. Skipped, loudly, where there is no GPU (`fixtures::skip_test`).
#[test]
fn cuda_model_matches_the_cpu_model() {
    if !tch::Cuda::is_available() {
        wire::fixtures::skip_test("cuda_model_matches_the_cpu_model", "no CUDA device");
        return;
    }
    setup(12);
    let cfg = ModelConfig::paper(18);
    let cpu = Model::new(cfg.clone(), Device::Cpu);
    let mut gpu = Model::new(cfg.clone(), Device::Cuda(0));
    gpu.load_safetensors(&cpu.to_safetensors().unwrap()).unwrap();
    let (t, b) = (4, 3);
    let input = random_unroll(&cfg, t, b, 0.3);
    let init = random_state(&cfg, b);
    let on = |d: Device| {
        (
            Unroll {
                frame: input.frame.to_device(d),
                reward: input.reward.to_device(d),
                done: input.done.to_device(d),
                last_action: input.last_action.to_device(d),
            },
            AgentState {
                vision_h: init.vision_h.to_device(d),
                vision_c: init.vision_c.to_device(d),
                core_h: init.core_h.to_device(d),
                core_c: init.core_c.to_device(d),
            },
        )
    };
    let (gpu_input, gpu_state) = on(Device::Cuda(0));
    let (a, _) = tch::no_grad(|| cpu.unroll(&input, &init));
    let (g, _) = tch::no_grad(|| gpu.unroll(&gpu_input, &gpu_state));
    for ((name, x), (_, y)) in outputs(&a).into_iter().zip(outputs(&g)) {
        let d = max_diff(x, &y.to_device(Device::Cpu));
        eprintln!("cuda vs cpu {name}: max |difference| {d:e}");
        assert!(d < 1e-2, "{name}: {d:e}");
    }
    let bytes = gpu.to_safetensors().unwrap();
    assert_eq!(weights::fingerprint_of(&bytes).unwrap(), Some(cfg.fingerprint()));
}

/// Catch-like frames [1, 7, 42, 42, 3]: one 6x6 ball per frame in columns
/// 0..7 of the middle row, the paddle fixed in the bottom row.
fn ball_sweep_frames() -> Tensor {
    let (size, cell) = (42usize, 6usize);
    let mut data = vec![0u8; 7 * size * size * 3];
    for col in 0..7 {
        let frame = &mut data[col * size * size * 3..(col + 1) * size * size * 3];
        let mut paint = |row0: usize, col0: usize, rows: usize, rgb: [u8; 3]| {
            for r in row0..row0 + rows {
                for c in col0..col0 + cell {
                    frame[(r * size + c) * 3..(r * size + c) * 3 + 3].copy_from_slice(&rgb);
                }
            }
        };
        paint(3 * cell, col * cell, cell, [250, 200, 60]);
        paint(6 * cell + 3, 3 * cell, 3, [60, 160, 250]);
    }
    Tensor::from_slice(&data).view([1, 7, size as i64, size as i64, 3])
}

/// The initialisation lets the image reach the policy. Moving a small object
/// across a mostly black frame must move the policy logits measurably at
/// initialisation, or the attention has nothing to learn from: with PyTorch's
/// default initialisation throughout, the logits' spread across ball columns
/// is ~1.5e-7 at the `small` preset (measured with the PyTorch reference; ~5e-7
/// with the earlier 11x11 preset, where the agent never learned catch); with He
/// (ReLU layers) and Glorot (ConvLSTM) initialisation it is ~1e-5
/// (docs/learning.md).
#[test]
fn the_image_reaches_the_policy_at_initialisation() {
    let cfg = ModelConfig::small(3);
    let mut spreads = Vec::new();
    for seed in 0..5 {
        setup(seed);
        let model = AttentionAgent::new(&tch::nn::VarStore::new(Device::Cpu).root(), &cfg);
        let frames = ball_sweep_frames();
        // Two steps (the first a done) so the queries come from a non-zero core state.
        let input = Unroll {
            frame: Tensor::cat(&[&frames, &frames], 0),
            reward: Tensor::zeros([2, 7], (Kind::Float, Device::Cpu)),
            done: Tensor::cat(
                &[Tensor::from_slice(&[true; 7]), Tensor::from_slice(&[false; 7])],
                0,
            )
            .view([2, 7]),
            last_action: Tensor::zeros([2, 7], (Kind::Int64, Device::Cpu)),
        };
        let (out, _) =
            tch::no_grad(|| model.unroll(&input, &AgentState::zeros(&cfg, 7, Device::Cpu)));
        let logits = out.policy_logits.get(1); // [7 columns, actions]
        let spread =
            logits.std_dim([0i64].as_slice(), true, false).mean(Kind::Float).double_value(&[]);
        spreads.push(spread);
    }
    let mean = spreads.iter().sum::<f64>() / spreads.len() as f64;
    println!("logit spread across ball columns: {mean:e} ({spreads:?})");
    assert!(mean > 2e-6, "the ball moves the initial policy logits by only {mean:e}: {spreads:?}");
}

/// The scaled, key-normalised logits of `attend` against the explicit keys of
/// step 7 of docs/architecture.md, The model, normalised and scaled by hand,
/// for both scalings.
#[test]
fn normalised_keys_and_scaled_logits_match_the_explicit_computation() {
    use super::attention::{normalize_over_grid, LogitShape, KEY_NORM_EPS};
    use wire::config::AttentionLogits;
    setup(6);
    for logits_kind in [AttentionLogits::ScaledDot, AttentionLogits::ScaledPerPart] {
        let cfg = ModelConfig { attention_logits: logits_kind, ..ModelConfig::small(4) };
        let (h, w) = cfg.grid();
        let (b, c, heads) = (3, cfg.convlstm_channels as i64, cfg.heads as i64);
        let output = Tensor::randn([b, c, h as i64, w as i64], (Kind::Float, Device::Cpu)) * 0.1;
        let queries =
            Tensor::randn([b, heads, cfg.query_width() as i64], (Kind::Float, Device::Cpu));
        let basis = spatial_basis::spatial_basis(h, w, cfg.basis_frequencies, Device::Cpu);
        let basis_t = basis.transpose(0, 1).contiguous();
        let (ck, cs) = (cfg.key_channels as i64, basis.size()[1]);
        let att = attend(&queries, &output, &basis, &basis_t, ck, LogitShape::of(&cfg));

        // By hand: per sample and key channel, standardise over the h*w positions.
        let (keys, _) = keys_and_values(&output, &basis, ck); // [B, hw, C_k + C_s]
        let raw = keys.narrow(2, 0, ck);
        let mean = raw.mean_dim([1i64].as_slice(), true, Kind::Float);
        let var = (&raw - &mean).square().mean_dim([1i64].as_slice(), true, Kind::Float);
        let normalised = (&raw - &mean) / (var + KEY_NORM_EPS).sqrt();
        let content = queries.narrow(2, 0, ck).matmul(&normalised.transpose(1, 2));
        let place = queries.narrow(2, ck, cs).matmul(&keys.narrow(2, ck, cs).transpose(1, 2));
        let logits = match logits_kind {
            AttentionLogits::ScaledDot => (content + place) / ((ck + cs) as f64).sqrt(),
            _ => content / (ck as f64).sqrt() + place / (cs as f64).sqrt(),
        };
        assert_close("logits", &logits, &(&att.content + &att.place), 1e-4);
        assert_close("attention", &logits.softmax(-1, Kind::Float), &att.attention, 1e-6);
        let flat = output.reshape([b, c, (h * w) as i64]).narrow(1, 0, ck);
        assert_close("keys", &normalize_over_grid(&flat), &normalised.transpose(1, 2), 1e-5);
    }
}

/// Why the small preset normalises its keys: on a frame where one cell holds
/// an object and the rest is background, the ConvLSTM's response there is
/// small, and raw keys give a query aimed at it almost no grip (content logits
/// of a few hundredths against place logits of about 1, docs/learning.md).
/// Normalised over the grid, the lone cell's key stands out by about
/// sqrt(h*w), whatever its scale, and the same query picks it out.
#[test]
fn normalised_keys_let_a_lone_object_stand_out() {
    use super::attention::LogitShape;
    let cfg = ModelConfig::small(3);
    let (h, w) = cfg.grid();
    let (c, ck) = (cfg.convlstm_channels as i64, cfg.key_channels as i64);
    let output = Tensor::zeros([1, c, h as i64, w as i64], (Kind::Float, Device::Cpu));
    let object = (3i64, 5i64);
    let _ = output.narrow(1, 0, ck).get(0).select(1, object.0).select(1, object.1).fill_(0.02);
    // A query aimed at the object's key, with no preference for a place.
    let mut query = vec![0f32; cfg.query_width()];
    query[..ck as usize].fill(1.0);
    let queries = Tensor::from_slice(&query).view([1, 1, -1]).repeat([1, cfg.heads as i64, 1]);
    let basis = spatial_basis::spatial_basis(h, w, cfg.basis_frequencies, Device::Cpu);
    let basis_t = basis.transpose(0, 1).contiguous();
    let at_object = |shape: LogitShape| {
        let att = attend(&queries, &output, &basis, &basis_t, ck, shape);
        att.attention.double_value(&[0, 0, object.0 * w as i64 + object.1])
    };
    let raw = at_object(LogitShape::PAPER);
    let normalised = at_object(LogitShape::of(&cfg));
    assert!(cfg.normalize_keys);
    let uniform = 1.0 / (h * w) as f64;
    assert!(raw < 1.2 * uniform, "raw keys: {raw} on the object, uniform {uniform}");
    assert!(normalised > 0.5, "normalised keys: only {normalised} on the object");
}

/// The presets' attention: the paper's as the paper writes it; the small
/// preset's scaled per part and with normalised keys (docs/learning.md says why).
#[test]
fn presets_choose_their_attention_logits() {
    use wire::config::AttentionLogits;
    let paper = ModelConfig::paper(18);
    assert_eq!((paper.attention_logits, paper.normalize_keys), (AttentionLogits::Dot, false));
    assert_eq!(paper.attention_logit_divisors(), (1.0, 1.0));
    let small = ModelConfig::small(3);
    assert_eq!(
        (small.attention_logits, small.normalize_keys),
        (AttentionLogits::ScaledPerPart, true)
    );
    assert_eq!(small.attention_logit_divisors(), (8f64.sqrt(), 64f64.sqrt()));
}
