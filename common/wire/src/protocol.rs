//! The wire protocol (docs/architecture.md, Sockets and messages).
//!
//! Every message is one MessagePack document holding an [`Envelope`]:
//! `{ protocol, run, body }`. Bulk arrays travel as MessagePack `bin` with
//! their dtype and shape ([`Array`]); numbers are little-endian. A receiver
//! calls [`decode`], which checks the protocol version and the run id before
//! it decodes the body, and then `validate` on the body against the run's
//! [`ModelConfig`]; every failure is a typed [`ProtocolError`], never a panic.
//!
//! Step alignment of a [`Trajectory`] of unroll length T (steps 0..=T):
//! `frame[t]` is what the agent saw, `reward[t]` and `done[t]` arrived with it
//! (`done[t] = 1`: frame t starts a new episode), `last_action[t]` led to it,
//! `action[t]` and `policy_logits[t]` were chosen at it. Step 0 repeats step T
//! of the previous unroll of the same env, and `initial_state` is the agent's
//! recurrent state before frame 0 was processed.
//!
//! Episode statistics (TorchBeast's convention): at a step t with `done[t] = 1`,
//! `episode_return[t]` and `episode_step[t]` hold the *finished* episode's raw
//! return and length; elsewhere they hold the running episode's. The learner
//! counts finished episodes at steps 1..=T only, so none is counted twice.
//!
//! Params versions start at 1; a [`ParamsRequest`] for version 0 means "I hold
//! none", and is always answered with [`Params`].

use serde::{Deserialize, Serialize};

pub use crate::array::Array;
use crate::config::ModelConfig;
pub use crate::error::{ProtocolError, Refusal};
pub use crate::layout::DType;
use crate::layout::{per_step_layout, Dim};

/// Version of this protocol; a receiver drops messages of any other.
pub const PROTOCOL_VERSION: u16 = 2;

/// Bytes of Atari RAM sent per step when RAM recording is on.
pub const RAM_BYTES: usize = 128;

type Result<T> = std::result::Result<T, ProtocolError>;

/// The agent's recurrent state: ConvLSTM (h, c) [C, h, w] and policy core (h, c) [units].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecurrentState {
    pub vision_h: Array,
    pub vision_c: Array,
    pub core_h: Array,
    pub core_c: Array,
}

impl RecurrentState {
    pub fn validate(&self, cfg: &ModelConfig) -> Result<()> {
        let (h, w) = cfg.grid();
        let vision = [cfg.convlstm_channels, h, w];
        self.vision_h.check("initial_state.vision_h", DType::F32, &vision)?;
        self.vision_c.check("initial_state.vision_c", DType::F32, &vision)?;
        self.core_h.check("initial_state.core_h", DType::F32, &[cfg.core_units])?;
        self.core_c.check("initial_state.core_c", DType::F32, &[cfg.core_units])?;
        for (field, a) in [
            ("initial_state.vision_h", &self.vision_h),
            ("initial_state.vision_c", &self.vision_c),
            ("initial_state.core_h", &self.core_h),
            ("initial_state.core_c", &self.core_c),
        ] {
            a.check_finite(field)?;
        }
        Ok(())
    }
}

per_step_layout! {
    /// One unroll of T+1 steps of one environment, actor -> learner.
    pub struct Trajectory, steps TrajectorySteps, table TRAJECTORY_STEPS {
        pub actor_id: u32,
        pub env_index: u32,
        /// The params version the actor acted with (policy lag = learner's version - this).
        pub params_version: u64,
        steps {
            /// u8 [T+1, H, W, C], the model's input.
            frame: U8 [Dim::Height, Dim::Width, Dim::InChannels] Any, units "intensity 0-255",
            /// f32 [T+1], raw (unclipped) reward that arrived with each frame.
            reward: F32 [] Finite, units "game score (raw, unclipped)",
            /// u8 [T+1], 1 where the frame starts a new episode.
            done: U8 [] Flag, units "0 or 1",
            /// i64 [T+1], the action taken before each frame.
            last_action: I64 [] Action, units "action index",
            /// i64 [T+1], the action the behaviour policy chose at each frame.
            action: I64 [] Action, units "action index",
            /// f32 [T+1, A], the behaviour policy's logits.
            policy_logits: F32 [Dim::Actions] Finite, units "logit (natural log, unnormalised)",
            /// f32 [T+1], raw return of the episode so far.
            episode_return: F32 [] Finite, units "game score (raw, unclipped)",
            /// i64 [T+1], agent steps of the episode so far.
            episode_step: I64 [] Any, units "agent steps",
        }
        /// The agent's recurrent state before frame 0 was processed.
        pub initial_state: RecurrentState,
    }
}

impl Trajectory {
    /// Unroll length T (the trajectory holds T+1 steps).
    pub fn unroll_length(&self) -> usize {
        self.reward.shape.first().copied().unwrap_or(0).saturating_sub(1)
    }

    /// Checks every field against the run's model config and unroll length.
    pub fn validate(&self, cfg: &ModelConfig, unroll_length: usize) -> Result<()> {
        for (field, array) in self.steps().iter() {
            array.check_field(field, cfg, unroll_length + 1)?;
        }
        self.initial_state.validate(cfg)
    }
}

/// Actor -> learner: "send me weights newer than `version`" (0 = I hold none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamsRequest {
    pub actor_id: u32,
    pub version: u64,
}

/// Learner -> actor: weights of one version as safetensors bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub version: u64,
    /// [`ModelConfig::fingerprint`] of the architecture the weights belong to.
    pub fingerprint: String,
    #[serde(with = "serde_bytes")]
    pub weights: Vec<u8>,
}

impl Params {
    /// Refuses weights of another architecture.
    pub fn check_fingerprint(&self, cfg: &ModelConfig) -> Result<()> {
        let want = cfg.fingerprint();
        if self.fingerprint != want {
            return Err(ProtocolError::Fingerprint { got: self.fingerprint.clone(), want });
        }
        Ok(())
    }
}

/// Learner -> actor: the asker already holds the newest version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpToDate {
    pub version: u64,
}

/// Identifies one episode across chunks: (actor, env, counter within that env).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EpisodeUid {
    pub actor: u32,
    pub env: u32,
    pub counter: u64,
}

impl std::fmt::Display for EpisodeUid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a{}-e{}-n{}", self.actor, self.env, self.counter)
    }
}

/// How an episode ended; carried by its last chunk only.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeEnd {
    /// Raw, unclipped return.
    pub episode_return: f64,
    /// Agent steps.
    pub length: u64,
    /// False when the episode was cut short (actor stopped, frame cap).
    pub complete: bool,
}

per_step_layout! {
    /// A run of consecutive steps of one recorded episode, actor -> recorder.
    /// Chunks keep every message small however long the episode is.
    pub struct EpisodeChunk, steps EpisodeSteps, table EPISODE_STEPS {
        pub uid: EpisodeUid,
        /// 0, 1, 2, ... within the episode.
        pub sequence: u32,
        pub params_version: u64,
        steps {
            /// Full-resolution RGB frame the agent saw at this step (row 0 at the top).
            frame: U8 [Dim::Free("row"), Dim::Free("column"), Dim::Fixed(3, "channel")] Any, units "RGB intensity 0-255",
            /// Action chosen at this step (index into the environment's action set).
            action: I64 [] Action, units "action index",
            /// Reward the step's action earned (summed over the action repeat); an episode's rewards sum to its return.
            reward: F32 [] Finite, units "game score (raw, unclipped)",
            /// The agent's value estimate V(s) at this step.
            baseline: F32 [] Finite, units "discounted return (clipped-reward scale)",
            /// Behaviour policy logits; softmax over the last axis gives the action probabilities.
            policy_logits: F32 [Dim::Actions] Finite, units "logit (natural log, unnormalised)",
            /// Attention weights of each head over the vision core's grid.
            attention: F32 [Dim::Heads, Dim::GridRows, Dim::GridColumns] Finite, units "probability (each [head] map sums to 1)",
            /// Content ('what') part of the attention logits: query . key channels.
            attention_content: F32 [Dim::Heads, Dim::GridRows, Dim::GridColumns] Finite, units "logit",
            /// Place ('where') part of the attention logits: query . spatial basis.
            attention_place: F32 [Dim::Heads, Dim::GridRows, Dim::GridColumns] Finite, units "logit",
        }
        /// u8 [n, 128], Atari RAM, when recorded.
        pub ram: Option<Array>,
        /// f32 [n, objects, 2], ground-truth (row, column) in frame pixels, NaN where absent.
        pub objects: Option<Array>,
        /// Names of the objects in `objects`, in order.
        pub object_names: Vec<String>,
        /// Present on the last chunk of the episode only.
        pub end: Option<EpisodeEnd>,
    }
}

impl EpisodeChunk {
    /// Steps in this chunk.
    pub fn len(&self) -> usize {
        self.action.shape.first().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks every field against the run's model config.
    pub fn validate(&self, cfg: &ModelConfig) -> Result<()> {
        let n = self.len();
        for (field, array) in self.steps().iter() {
            array.check_field(field, cfg, n)?;
        }
        if let Some(ram) = &self.ram {
            ram.check("ram", DType::U8, &[n, RAM_BYTES])?;
        }
        if let Some(objects) = &self.objects {
            objects.check("objects", DType::F32, &[n, self.object_names.len(), 2])?;
        }
        Ok(())
    }

    /// Bytes of the arrays the chunk carries.
    pub fn bulk_bytes(&self) -> usize {
        self.steps().iter().map(|(_, a)| a.data.len()).sum::<usize>()
            + self.ram.as_ref().map_or(0, |a| a.data.len())
            + self.objects.as_ref().map_or(0, |a| a.data.len())
    }
}

/// Most environments one [`Observations`] message may carry: a bound on what
/// a learner allocates for one request.
pub const MAX_ENVS_PER_REQUEST: usize = 4096;

per_step_layout! {
    /// Actor -> learner, central inference (docs/architecture.md, Central
    /// inference): the current step of one group of E environments, which the
    /// learner answers with [`Actions`] (or [`Restart`]). The leading axis of
    /// every array is the environment, not time. Alignment as in a
    /// [`Trajectory`]: `reward`, `done` and the episode statistics arrived
    /// with `frame`; the learner knows `last_action`, as it chose it.
    pub struct Observations, steps ObservationSteps, table OBSERVATION_STEPS {
        pub actor_id: u32,
        /// This group's stream of steps: random, and new whenever the group
        /// starts its environments over (actor start, learner restart, a
        /// timeout). The learner keys each environment's recurrent state and
        /// unroll by (stream, index in the group).
        pub stream: u64,
        /// Requests sent on this stream before this one: 0, 1, 2, ...
        pub seq: u64,
        /// Index of the group's first environment among the actor's (the
        /// trajectories' `env_index` is this plus the index in the group).
        pub first_env: u32,
        steps {
            /// u8 [E, H, W, C], the model's input.
            frame: U8 [Dim::Height, Dim::Width, Dim::InChannels] Any, units "intensity 0-255",
            /// f32 [E], raw (unclipped) reward that arrived with each frame.
            reward: F32 [] Finite, units "game score (raw, unclipped)",
            /// u8 [E], 1 where the frame starts a new episode.
            done: U8 [] Flag, units "0 or 1",
            /// f32 [E], raw return of the episode so far (the finished one's where done).
            episode_return: F32 [] Finite, units "game score (raw, unclipped)",
            /// i64 [E], agent steps of the episode so far (the finished one's where done).
            episode_step: I64 [] Any, units "agent steps",
            /// u8 [E], 1 where the actor records this environment's episode: the answer carries its attention maps.
            record: U8 [] Flag, units "0 or 1",
        }
    }
}

impl Observations {
    /// Environments in the request.
    pub fn envs(&self) -> usize {
        self.reward.shape.first().copied().unwrap_or(0)
    }

    /// Checks every field against the run's model config; E must be 1 to
    /// [`MAX_ENVS_PER_REQUEST`].
    pub fn validate(&self, cfg: &ModelConfig) -> Result<()> {
        let envs = self.envs();
        if envs == 0 || envs > MAX_ENVS_PER_REQUEST {
            return Err(ProtocolError::Invalid(format!(
                "observations of {envs} environments: 1 to {MAX_ENVS_PER_REQUEST} per request"
            )));
        }
        for (field, array) in self.steps().iter() {
            array.check_field(field, cfg, envs)?;
        }
        Ok(())
    }

    /// Indices (in the group) of the environments marked `record`.
    pub fn recorded(&self) -> Vec<usize> {
        self.record.data.iter().enumerate().filter(|(_, &r)| r == 1).map(|(i, _)| i).collect()
    }
}

/// The attention maps of the recorded environments of one step, in the order
/// of their indices: f32 [R, heads, h, w] each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttentionMaps {
    pub attention: Array,
    pub attention_content: Array,
    pub attention_place: Array,
}

per_step_layout! {
    /// Learner -> actor, central inference: what to do at the step an
    /// [`Observations`] carried, one entry per environment.
    pub struct Actions, steps ActionSteps, table ACTION_STEPS {
        pub stream: u64,
        /// The request's `seq`.
        pub seq: u64,
        /// The params version that chose the actions.
        pub params_version: u64,
        steps {
            /// i64 [E], the action to take, sampled from the policy.
            action: I64 [] Action, units "action index",
            /// f32 [E, A], the policy's logits.
            policy_logits: F32 [Dim::Actions] Finite, units "logit (natural log, unnormalised)",
            /// f32 [E], the value estimate V(s).
            baseline: F32 [] Finite, units "discounted return (clipped-reward scale)",
        }
        /// Maps of the environments the request marked `record`; None when it marked none.
        pub maps: Option<AttentionMaps>,
    }
}

impl Actions {
    /// Checks the answer against the request it answers.
    pub fn validate(&self, cfg: &ModelConfig, request: &Observations) -> Result<()> {
        if (self.stream, self.seq) != (request.stream, request.seq) {
            return Err(ProtocolError::Invalid(format!(
                "answer to step {} of stream {:x}, asked step {} of stream {:x}",
                self.seq, self.stream, request.seq, request.stream
            )));
        }
        let envs = request.envs();
        for (field, array) in self.steps().iter() {
            array.check_field(field, cfg, envs)?;
        }
        let recorded = request.recorded().len();
        match (&self.maps, recorded) {
            (None, 0) => Ok(()),
            (Some(maps), r) if r > 0 => {
                let (h, w) = cfg.grid();
                let shape = [r, cfg.heads, h, w];
                maps.attention.check("maps.attention", DType::F32, &shape)?;
                maps.attention_content.check("maps.attention_content", DType::F32, &shape)?;
                maps.attention_place.check("maps.attention_place", DType::F32, &shape)
            }
            _ => Err(ProtocolError::Invalid(format!(
                "{recorded} environments recorded, maps {}",
                if self.maps.is_some() { "sent" } else { "missing" }
            ))),
        }
    }
}

/// Learner -> actor, central inference: "start this group over": the learner
/// does not know the stream (it restarted, or freed the stream after the
/// actor went quiet) or refused the request. The actor resets the group's
/// environments and starts a new stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Restart {
    pub stream: u64,
    pub reason: String,
}

/// The body of an [`Envelope`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Body {
    Trajectory(Box<Trajectory>),
    ParamsRequest(ParamsRequest),
    Params(Params),
    UpToDate(UpToDate),
    EpisodeChunk(Box<EpisodeChunk>),
    Observations(Box<Observations>),
    Actions(Box<Actions>),
    Restart(Restart),
}

impl Body {
    /// Bytes of bulk data the body carries (its encoded size, give or take
    /// field names and headers).
    pub fn bulk_bytes(&self) -> usize {
        match self {
            Body::Trajectory(t) => {
                let s = &t.initial_state;
                t.steps().iter().map(|(_, a)| a.data.len()).sum::<usize>()
                    + [&s.vision_h, &s.vision_c, &s.core_h, &s.core_c]
                        .iter()
                        .map(|a| a.data.len())
                        .sum::<usize>()
            }
            Body::EpisodeChunk(c) => c.bulk_bytes(),
            Body::Params(p) => p.weights.len(),
            Body::Observations(o) => o.steps().iter().map(|(_, a)| a.data.len()).sum(),
            Body::Actions(a) => {
                a.steps().iter().map(|(_, a)| a.data.len()).sum::<usize>()
                    + a.maps.as_ref().map_or(0, |m| {
                        m.attention.data.len()
                            + m.attention_content.data.len()
                            + m.attention_place.data.len()
                    })
            }
            Body::ParamsRequest(_) | Body::UpToDate(_) | Body::Restart(_) => 0,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Body::Trajectory(_) => "Trajectory",
            Body::ParamsRequest(_) => "ParamsRequest",
            Body::Params(_) => "Params",
            Body::UpToDate(_) => "UpToDate",
            Body::EpisodeChunk(_) => "EpisodeChunk",
            Body::Observations(_) => "Observations",
            Body::Actions(_) => "Actions",
            Body::Restart(_) => "Restart",
        }
    }
}

/// `{ protocol, run, body }`: what travels on every socket.
#[derive(Serialize, Deserialize)]
pub struct Envelope<B> {
    pub protocol: u16,
    pub run: String,
    pub body: B,
}

/// Encodes `body` for run `run` into `out` (any writer; an `nng::Message`
/// avoids a copy).
pub fn encode_into<W: std::io::Write>(out: &mut W, run: &str, body: &Body) -> Result<()> {
    let envelope = Envelope { protocol: PROTOCOL_VERSION, run: run.to_owned(), body };
    rmp_serde::encode::write_named(out, &envelope).map_err(|e| ProtocolError::Encode(e.to_string()))
}

/// Encodes `body` for run `run`.
pub fn encode(run: &str, body: &Body) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_into(&mut out, run, body)?;
    Ok(out)
}

/// Decodes a message of run `run`. Checks the protocol version and the run id
/// first, so a message of another build or run is named as such rather than
/// reported as undecodable.
pub fn decode(bytes: &[u8], run: &str) -> Result<Body> {
    let header: Envelope<serde::de::IgnoredAny> =
        rmp_serde::from_slice(bytes).map_err(|e| ProtocolError::Decode(e.to_string()))?;
    if header.protocol != PROTOCOL_VERSION {
        return Err(ProtocolError::WrongProtocol { got: header.protocol, want: PROTOCOL_VERSION });
    }
    if header.run != run {
        return Err(ProtocolError::WrongRun { got: header.run, want: run.to_owned() });
    }
    let envelope: Envelope<Body> =
        rmp_serde::from_slice(bytes).map_err(|e| ProtocolError::Decode(e.to_string()))?;
    Ok(envelope.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use proptest::prelude::*;

    const RUN: &str = "run-a";

    fn cfg() -> ModelConfig {
        ModelConfig::small(3)
    }

    fn round_trip(body: Body) {
        let bytes = encode(RUN, &body).unwrap();
        assert_eq!(decode(&bytes, RUN).unwrap(), body);
    }

    /// A well-formed answer to `request`.
    fn answer(cfg: &ModelConfig, request: &Observations) -> Actions {
        let (envs, a) = (request.envs(), cfg.num_actions);
        let r = request.recorded().len();
        let (h, w) = cfg.grid();
        let maps = vec![1.0 / (h * w) as f32; r * cfg.heads * h * w];
        let shape = vec![r, cfg.heads, h, w];
        Actions {
            stream: request.stream,
            seq: request.seq,
            params_version: 3,
            action: Array::from_i64(vec![envs], &vec![a as i64 - 1; envs]),
            policy_logits: Array::from_f32(vec![envs, a], &vec![0.25; envs * a]),
            baseline: Array::from_f32(vec![envs], &vec![1.5; envs]),
            maps: (r > 0).then(|| AttentionMaps {
                attention: Array::from_f32(shape.clone(), &maps),
                attention_content: Array::from_f32(shape.clone(), &maps),
                attention_place: Array::from_f32(shape, &maps),
            }),
        }
    }

    #[test]
    fn observations_and_actions_are_checked_against_the_config_and_request() {
        let cfg = cfg();
        let request = fixtures::observations(&cfg, 4, 7, 0, &[true, false, true, false], 2);
        request.validate(&cfg).unwrap();
        assert_eq!(request.recorded(), vec![0, 2]);
        let mut bad = request.clone();
        bad.frame.shape[1] += 1;
        assert!(matches!(bad.validate(&cfg), Err(ProtocolError::Shape { field: "frame", .. })));
        let mut bad = request.clone();
        bad.done.data[1] = 2;
        assert!(bad.validate(&cfg).is_err(), "done is a flag");
        let mut empty = fixtures::observations(&cfg, 1, 7, 0, &[], 2);
        for (_, array) in empty.steps().iter() {
            assert_eq!(array.shape[0], 1);
        }
        empty.reward.shape = vec![0];
        assert!(empty.validate(&cfg).is_err(), "no environments");

        let good = answer(&cfg, &request);
        good.validate(&cfg, &request).unwrap();
        let mut wrong_seq = good.clone();
        wrong_seq.seq += 1;
        assert!(wrong_seq.validate(&cfg, &request).is_err());
        let mut no_maps = good.clone();
        no_maps.maps = None;
        assert!(no_maps.validate(&cfg, &request).is_err(), "two envs recorded, no maps");
        let mut action = good.clone();
        action.action = Array::from_i64(vec![4], &[0, 0, cfg.num_actions as i64, 0]);
        assert!(matches!(
            action.validate(&cfg, &request),
            Err(ProtocolError::ActionOutOfRange { .. })
        ));
    }

    #[test]
    fn every_message_round_trips() {
        let cfg = cfg();
        round_trip(Body::Trajectory(Box::new(fixtures::trajectory(&cfg, 5, 1))));
        round_trip(Body::ParamsRequest(ParamsRequest { actor_id: 3, version: 9 }));
        round_trip(Body::Params(Params {
            version: 4,
            fingerprint: cfg.fingerprint(),
            weights: vec![1, 2, 3, 255],
        }));
        round_trip(Body::UpToDate(UpToDate { version: 4 }));
        round_trip(Body::EpisodeChunk(Box::new(fixtures::episode_chunk(
            &cfg,
            4,
            (20, 16),
            2,
            true,
        ))));
        let observations = fixtures::observations(&cfg, 3, 0xabc, 4, &[false, true, false], 1);
        round_trip(Body::Observations(Box::new(observations.clone())));
        let actions = answer(&cfg, &observations);
        actions.validate(&cfg, &observations).unwrap();
        round_trip(Body::Actions(Box::new(actions)));
        round_trip(Body::Restart(Restart { stream: 9, reason: "unknown stream".into() }));
        let mut chunk = fixtures::episode_chunk(&cfg, 3, (20, 16), 3, false);
        chunk.ram = None;
        chunk.objects = Some(Array::from_f32(vec![3, 2, 2], &[f32::NAN; 12]));
        chunk.object_names = vec!["ball".into(), "paddle".into()];
        let bytes = encode(RUN, &Body::EpisodeChunk(Box::new(chunk.clone()))).unwrap();
        match decode(&bytes, RUN).unwrap() {
            Body::EpisodeChunk(got) => {
                assert_eq!(got.objects.unwrap().data, chunk.objects.unwrap().data);
                assert_eq!(got.object_names, chunk.object_names);
            }
            other => panic!("decoded {}", other.kind()),
        }
    }

    #[test]
    fn valid_fixtures_validate() {
        let cfg = ModelConfig::paper(18);
        fixtures::trajectory(&cfg, 3, 1).validate(&cfg, 3).unwrap();
        fixtures::episode_chunk(&cfg, 2, (210, 160), 1, true).validate(&cfg).unwrap();
    }

    #[test]
    fn bulk_arrays_travel_as_bin_not_as_integer_arrays() {
        let cfg = ModelConfig::paper(18);
        let body = Body::Trajectory(Box::new(fixtures::trajectory(&cfg, 2, 1)));
        let bulk = body.bulk_bytes();
        let bytes = encode(RUN, &body).unwrap();
        // bin: the raw bytes plus a small header per array; integer arrays
        // would take up to 1.5x for the frames and 5x for the f32 state.
        assert!(bytes.len() < bulk + 2048, "{} bytes encode {} bytes of arrays", bytes.len(), bulk);
    }

    #[test]
    fn wrong_protocol_and_run_are_named() {
        let body = Body::UpToDate(UpToDate { version: 1 });
        let bytes = encode("other-run", &body).unwrap();
        assert_eq!(
            decode(&bytes, RUN),
            Err(ProtocolError::WrongRun { got: "other-run".into(), want: RUN.into() })
        );
        let envelope =
            Envelope { protocol: PROTOCOL_VERSION + 1, run: RUN.to_owned(), body: &body };
        let bytes = rmp_serde::to_vec_named(&envelope).unwrap();
        assert_eq!(
            decode(&bytes, RUN),
            Err(ProtocolError::WrongProtocol { got: PROTOCOL_VERSION + 1, want: PROTOCOL_VERSION })
        );
    }

    #[test]
    fn truncated_messages_are_decode_errors() {
        let bytes =
            encode(RUN, &Body::Trajectory(Box::new(fixtures::trajectory(&cfg(), 3, 1)))).unwrap();
        for cut in [0, 1, 5, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                matches!(decode(&bytes[..cut], RUN), Err(ProtocolError::Decode(_))),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn shapes_that_disagree_with_the_config_are_refused() {
        let cfg = cfg();
        let good = fixtures::trajectory(&cfg, 4, 1);
        assert!(matches!(good.validate(&cfg, 5), Err(ProtocolError::Shape { field: "frame", .. })));
        assert!(matches!(
            good.validate(&ModelConfig::small(4), 4),
            Err(ProtocolError::Shape { field: "policy_logits", .. })
        ));
        assert!(matches!(
            good.validate(&ModelConfig::paper(3), 4),
            Err(ProtocolError::Shape { field: "frame", .. })
        ));

        let mut bad = good.clone();
        bad.frame.data.pop();
        assert!(matches!(bad.validate(&cfg, 4), Err(ProtocolError::Length { field: "frame", .. })));

        let mut bad = good.clone();
        bad.action = Array::from_i64(vec![5], &[0, 1, 2, 3, 0]);
        assert_eq!(
            bad.validate(&cfg, 4),
            Err(ProtocolError::ActionOutOfRange { field: "action", action: 3, num_actions: 3 })
        );
        let mut bad = good.clone();
        bad.last_action = Array::from_i64(vec![5], &[0, -1, 2, 0, 0]);
        assert!(matches!(bad.validate(&cfg, 4), Err(ProtocolError::ActionOutOfRange { .. })));

        let mut bad = good.clone();
        bad.reward = Array::from_f32(vec![5], &[0.0, f32::NAN, 0.0, 0.0, 0.0]);
        assert_eq!(bad.validate(&cfg, 4), Err(ProtocolError::NonFinite { field: "reward" }));
        let mut bad = good.clone();
        bad.policy_logits.data[0..4].copy_from_slice(&f32::INFINITY.to_le_bytes());
        assert_eq!(bad.validate(&cfg, 4), Err(ProtocolError::NonFinite { field: "policy_logits" }));

        let mut bad = good.clone();
        bad.reward.dtype = DType::U8;
        assert!(matches!(bad.validate(&cfg, 4), Err(ProtocolError::DType { field: "reward", .. })));

        let mut bad = good;
        bad.initial_state.core_h = Array::from_f32(vec![7], &[0.0; 7]);
        assert!(matches!(
            bad.validate(&cfg, 4),
            Err(ProtocolError::Shape { field: "initial_state.core_h", .. })
        ));

        let mut chunk = fixtures::episode_chunk(&cfg, 3, (20, 16), 1, true);
        chunk.attention = Array::from_f32(vec![3, 1, 1, 1], &[1.0; 3]);
        assert!(matches!(
            chunk.validate(&cfg),
            Err(ProtocolError::Shape { field: "attention", .. })
        ));
    }

    #[test]
    fn a_huge_declared_shape_is_an_error_not_an_overflow() {
        let cfg = cfg();
        let mut bad = fixtures::trajectory(&cfg, 1, 1);
        bad.frame.shape = vec![usize::MAX, usize::MAX, 3, 3];
        assert!(bad.validate(&cfg, 1).is_err());
        assert!(bad.frame.to_f32("frame").is_err());
    }

    #[test]
    fn wrong_fingerprint_is_refused() {
        let params = Params {
            version: 1,
            fingerprint: ModelConfig::paper(18).fingerprint(),
            weights: vec![],
        };
        assert!(params.check_fingerprint(&ModelConfig::paper(18)).is_ok());
        assert!(matches!(
            params.check_fingerprint(&ModelConfig::paper(9)),
            Err(ProtocolError::Fingerprint { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(Body::Trajectory(t)) = decode(&bytes, RUN) {
                let _ = t.validate(&cfg(), 3);
            }
        }

        #[test]
        fn corrupting_a_valid_message_never_panics(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
            let cfg = cfg();
            let mut bytes = encode(RUN, &Body::EpisodeChunk(Box::new(fixtures::episode_chunk(&cfg, 2, (8, 8), 1, true)))).unwrap();
            for (index, value) in flips {
                let i = index.index(bytes.len());
                bytes[i] = value;
            }
            match decode(&bytes, RUN) {
                Ok(Body::EpisodeChunk(c)) => { let _ = c.validate(&cfg); }
                Ok(Body::Trajectory(t)) => { let _ = t.validate(&cfg, 1); }
                _ => {}
            }
        }
    }
}
