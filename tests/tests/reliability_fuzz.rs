//! Fuzzing every decoder a process runs on input it did not write itself
//! (docs/reliability.md): wire messages of every body kind, model weights
//! (safetensors from the learner or a checkpoint), and `endpoints.json`.
//! Each property runs a fixed number of proptest cases (a few seconds each in
//! release mode); the input is random bytes, or a valid encoding with bytes
//! flipped, cut off, or inserted. The property: a typed error or a value,
//! never a panic. The checkpoint loader is fuzzed through the real learner in
//! `reliability.rs` (`a_learner_killed_with_kill_9_...`).

use agent::model::Model;
use proptest::prelude::*;
use tch::Device;
use wire::config::ModelConfig;
use wire::fixtures;
use wire::protocol::{
    decode, encode, Body, Params, ParamsRequest, ProtocolError, UpToDate, PROTOCOL_VERSION,
};
use wire::rundir::Endpoints;

const RUN: &str = "fuzz-run";
const T: usize = 2;

fn cfg() -> ModelConfig {
    ModelConfig::small(3)
}

/// One valid message of each body kind, encoded.
fn valid_messages() -> Vec<Vec<u8>> {
    let cfg = cfg();
    let weights = Model::new(cfg.clone(), Device::Cpu).to_safetensors().unwrap();
    let mut chunk = fixtures::episode_chunk(&cfg, 2, (8, 8), 1, true);
    chunk.objects = Some(wire::protocol::Array::from_f32(vec![2, 1, 2], &[1.0; 4]));
    chunk.object_names = vec!["ball".into()];
    [
        Body::Trajectory(Box::new(fixtures::trajectory(&cfg, T, 1))),
        Body::ParamsRequest(ParamsRequest { actor_id: 3, version: 7 }),
        Body::Params(Params { version: 4, fingerprint: cfg.fingerprint(), weights }),
        Body::UpToDate(UpToDate { version: 9 }),
        Body::EpisodeChunk(Box::new(chunk)),
        Body::Observations(Box::new(request())),
        Body::Actions(Box::new(answer())),
        Body::Restart(wire::protocol::Restart { stream: 3, reason: "unknown stream".into() }),
    ]
    .iter()
    .map(|b| encode(RUN, b).unwrap())
    .collect()
}

/// A central-inference request with one of its three envs recorded.
fn request() -> wire::protocol::Observations {
    fixtures::observations(&cfg(), 3, 11, 2, &[false, true, false], 4)
}

/// A valid answer to [`request`].
fn answer() -> wire::protocol::Actions {
    use wire::protocol::{ActionSteps, Array, AttentionMaps};
    let cfg = cfg();
    let (h, w) = cfg.grid();
    let maps = Array::from_f32(vec![1, cfg.heads, h, w], &vec![0.5; cfg.heads * h * w]);
    let steps = ActionSteps {
        action: Array::from_i64(vec![3], &[0, 1, 2]),
        policy_logits: Array::from_f32(vec![3, 3], &[0.0; 9]),
        baseline: Array::from_f32(vec![3], &[0.0; 3]),
    };
    let maps = AttentionMaps {
        attention: maps.clone(),
        attention_content: maps.clone(),
        attention_place: maps,
    };
    wire::protocol::Actions::from_parts(11, 2, 5, steps, Some(maps))
}

/// A change to a byte string: flip bytes, cut it short, or insert bytes.
#[derive(Clone, Debug)]
enum Damage {
    Set(Vec<(prop::sample::Index, u8)>),
    Truncate(prop::sample::Index),
    Insert(prop::sample::Index, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
            .prop_map(Damage::Set),
        any::<prop::sample::Index>().prop_map(Damage::Truncate),
        (any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Damage::Insert(i, b)),
    ]
}

fn apply(bytes: &mut Vec<u8>, damage: &Damage) {
    match damage {
        Damage::Set(flips) => {
            for (index, value) in flips {
                let i = index.index(bytes.len());
                bytes[i] = *value;
            }
        }
        Damage::Truncate(index) => bytes.truncate(index.index(bytes.len())),
        Damage::Insert(index, extra) => {
            let i = index.index(bytes.len() + 1);
            bytes.splice(i..i, extra.iter().copied());
        }
    }
}

/// What a receiver does with a message: decode, then validate what the body
/// kind calls for (shapes against the config, the fingerprint, the weights).
fn receive(bytes: &[u8], model: &mut Model) -> Result<(), String> {
    let cfg = model.cfg.clone();
    match decode(bytes, RUN).map_err(|e| format!("{e:?}"))? {
        Body::Trajectory(t) => t.validate(&cfg, T).map_err(|e| format!("{e:?}")),
        Body::EpisodeChunk(c) => c.validate(&cfg).map_err(|e| format!("{e:?}")),
        Body::Params(p) => {
            p.check_fingerprint(&cfg).map_err(|e| format!("{e:?}"))?;
            model.load_params(&p).map_err(|e| format!("{e}"))
        }
        Body::Observations(o) => o.validate(&cfg).map_err(|e| format!("{e:?}")),
        Body::Actions(a) => a.validate(&cfg, &request()).map_err(|e| format!("{e:?}")),
        Body::ParamsRequest(_) | Body::UpToDate(_) | Body::Restart(_) => Ok(()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every body kind, damaged: decoding and validating never panic.
    #[test]
    fn damaged_messages_of_every_kind_are_errors_not_panics(
        kind in 0usize..8,
        damage in damage(),
    ) {
        thread_local! {
            static STATE: (Vec<Vec<u8>>, std::cell::RefCell<Model>) =
                (valid_messages(), std::cell::RefCell::new(Model::new(cfg(), Device::Cpu)));
        }
        STATE.with(|(messages, model)| {
            let mut bytes = messages[kind].clone();
            apply(&mut bytes, &damage);
            let _ = receive(&bytes, &mut model.borrow_mut());
        });
    }

    /// Random bytes, and random bytes behind a valid envelope header.
    #[test]
    fn random_bytes_are_errors_not_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        thread_local! {
            static MODEL: std::cell::RefCell<Model> =
                std::cell::RefCell::new(Model::new(cfg(), Device::Cpu));
        }
        MODEL.with(|model| {
            let mut model = model.borrow_mut();
            prop_assert!(receive(&bytes, &mut model).is_err() || bytes.len() > 8);
            // The same bytes as a body behind a well-formed envelope prefix.
            let mut framed = rmp_prefix();
            framed.extend_from_slice(&bytes);
            let _ = receive(&framed, &mut model);
            Ok(())
        })?;
    }
}

/// The MessagePack bytes of `{protocol: <ours>, run: RUN, body: ` (a map of
/// three entries whose third value is left to the caller).
fn rmp_prefix() -> Vec<u8> {
    let full = encode(RUN, &Body::UpToDate(UpToDate { version: 1 })).unwrap();
    let body = b"body";
    let at = full.windows(body.len()).position(|w| w == body).unwrap() + body.len();
    full[..at].to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Weights as a learner sends them or a checkpoint holds them, damaged
    /// (or plain random bytes): loading is an error or loads, never a panic,
    /// and damage to the header is always caught.
    #[test]
    fn damaged_weights_are_errors_not_panics(damage in damage(), random in proptest::collection::vec(any::<u8>(), 0..512)) {
        thread_local! {
            static STATE: (Vec<u8>, std::cell::RefCell<Model>) = {
                let model = Model::new(cfg(), Device::Cpu);
                (model.to_safetensors().unwrap(), std::cell::RefCell::new(model))
            };
        }
        STATE.with(|(weights, model)| {
            let mut model = model.borrow_mut();
            prop_assert!(model.load_safetensors(&random).is_err());
            let mut bytes = weights.clone();
            apply(&mut bytes, &damage);
            let header = 8 + u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
            let result = model.load_safetensors(&bytes);
            if let Damage::Truncate(_) = damage {
                prop_assert!(result.is_err(), "a cut-off weights file loaded");
            }
            if let Damage::Insert(index, _) = &damage {
                if index.index(weights.len() + 1) < header {
                    prop_assert!(result.is_err(), "weights with bytes inserted in the header loaded");
                }
            }
            Ok(())
        })?;
    }

    /// `endpoints.json` damaged or random: a typed I/O error or addresses, never a panic.
    #[test]
    fn damaged_endpoints_json_is_an_error_not_a_panic(damage in damage(), random in proptest::collection::vec(any::<u8>(), 0..256)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("endpoints.json");
        let valid = serde_json::to_vec_pretty(&Endpoints {
            trajectories: Some("ipc:///tmp/x/sock/trajectories".into()),
            params: Some("ipc:///tmp/x/sock/params".into()),
            episodes: Some("tcp://127.0.0.1:5555".into()),
            inference: Some("ipc:///tmp/x/sock/inference".into()),
        }).unwrap();
        let mut bytes = valid.clone();
        apply(&mut bytes, &damage);
        std::fs::write(&path, &bytes).unwrap();
        let read = Endpoints::read(&path);
        if let Damage::Truncate(i) = &damage {
            prop_assert!(read.is_err() || i.index(valid.len()) == valid.len(), "a cut-off endpoints.json read");
        }
        std::fs::write(&path, &random).unwrap();
        let _ = Endpoints::read(&path);
    }
}

/// Each refusal the decoders must name, one by one, as the typed error a
/// receiver counts under its reason (the fuzzing above checks only "no panic").
#[test]
fn each_bad_input_has_its_typed_error() {
    let cfg = cfg();
    let good = fixtures::trajectory(&cfg, T, 1);
    let bytes = encode(RUN, &Body::Trajectory(Box::new(good.clone()))).unwrap();
    assert!(matches!(decode(&[0xc1, 0x00, 0xff], RUN), Err(ProtocolError::Decode(_))));
    assert!(matches!(decode(&bytes[..bytes.len() / 3], RUN), Err(ProtocolError::Decode(_))));
    assert!(matches!(
        decode(&encode("another-run", &Body::UpToDate(UpToDate { version: 1 })).unwrap(), RUN),
        Err(ProtocolError::WrongRun { .. })
    ));
    let mut other_version = bytes.clone();
    // `protocol` is the first value of the envelope map: a positive fixint.
    let at = other_version.windows(8).position(|w| w == b"protocol").unwrap() + 8;
    assert_eq!(other_version[at], PROTOCOL_VERSION as u8);
    other_version[at] = PROTOCOL_VERSION as u8 + 1;
    assert!(matches!(decode(&other_version, RUN), Err(ProtocolError::WrongProtocol { .. })));

    let mut bad = good.clone();
    bad.frame.shape[1] += 1;
    assert!(matches!(bad.validate(&cfg, T), Err(ProtocolError::Shape { field: "frame", .. })));
    let mut bad = good.clone();
    bad.action = wire::protocol::Array::from_i64(vec![T + 1], &[0, 3, 0]);
    assert!(matches!(bad.validate(&cfg, T), Err(ProtocolError::ActionOutOfRange { .. })));
    for value in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut bad = good.clone();
        bad.reward = wire::protocol::Array::from_f32(vec![T + 1], &[0.0, value, 0.0]);
        assert_eq!(bad.validate(&cfg, T), Err(ProtocolError::NonFinite { field: "reward" }));
        let mut bad = good.clone();
        bad.policy_logits.data[4..8].copy_from_slice(&value.to_le_bytes());
        assert_eq!(bad.validate(&cfg, T), Err(ProtocolError::NonFinite { field: "policy_logits" }));
    }

    // Weights of another architecture: refused before any tensor is touched.
    let other = ModelConfig::small(4);
    let weights = Model::new(other.clone(), Device::Cpu).to_safetensors().unwrap();
    let params = Params { version: 2, fingerprint: other.fingerprint(), weights: weights.clone() };
    assert!(matches!(params.check_fingerprint(&cfg), Err(ProtocolError::Fingerprint { .. })));
    let mut model = Model::new(cfg.clone(), Device::Cpu);
    let before = model.to_safetensors().unwrap();
    let err = model.load_params(&params).unwrap_err();
    assert!(err.to_string().contains("architecture"), "{err}");
    // A lying fingerprint field does not help: the weights carry their own.
    let liar = Params { version: 2, fingerprint: cfg.fingerprint(), weights };
    assert!(model.load_params(&liar).is_err());
    assert_eq!(model.to_safetensors().unwrap(), before, "refused weights changed the model");
}
