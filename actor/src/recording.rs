//! Episodes streamed to the recorder as `EpisodeChunk`s.
//!
//! Each recorded episode buffers at most `chunk_steps` steps before it is sent,
//! so no message grows with the episode. Sending never waits: when no recorder
//! listens (or it cannot keep up) the chunk is dropped and counted, and acting
//! goes on.

use wire::config::ModelConfig;
use wire::protocol::{Array, Body, EpisodeChunk, EpisodeEnd, EpisodeUid, RAM_BYTES};
use wire::transport::Push;

/// The recorder's socket, or none; counts what could not be delivered.
pub struct EpisodeSink {
    push: Push,
    pub sent: u64,
    pub dropped: u64,
}

impl EpisodeSink {
    pub fn new(push: Push) -> Self {
        EpisodeSink { push, sent: 0, dropped: 0 }
    }

    pub fn send(&mut self, chunk: EpisodeChunk) {
        match self.push.try_send(&Body::EpisodeChunk(Box::new(chunk))) {
            Ok(true) => self.sent += 1,
            Ok(false) => {
                if self.dropped == 0 {
                    tracing::warn!(
                        "no recorder is taking episode chunks; dropping them (acting goes on)"
                    );
                }
                self.dropped += 1;
            }
            Err(e) => {
                self.dropped += 1;
                tracing::warn!("cannot send an episode chunk: {e}");
            }
        }
    }
}

/// What the agent computed at one step, for one environment.
pub struct StepView<'a> {
    pub frame: (usize, usize, &'a [u8]),
    pub action: i64,
    pub reward: f32,
    pub baseline: f32,
    pub policy_logits: &'a [f32],
    pub attention: &'a [f32],
    pub attention_content: &'a [f32],
    pub attention_place: &'a [f32],
    pub ram: Option<[u8; RAM_BYTES]>,
    pub objects: &'a [(&'static str, f32, f32)],
}

/// One episode being recorded: the steps not yet sent.
pub struct EpisodeRecording {
    uid: EpisodeUid,
    sequence: u32,
    params_version: u64,
    frame_hw: Option<(usize, usize)>,
    frame: Vec<u8>,
    action: Vec<i64>,
    reward: Vec<f32>,
    baseline: Vec<f32>,
    policy_logits: Vec<f32>,
    attention: Vec<f32>,
    attention_content: Vec<f32>,
    attention_place: Vec<f32>,
    ram: Vec<u8>,
    record_ram: bool,
    objects: Vec<f32>,
    object_names: Vec<String>,
}

impl EpisodeRecording {
    pub fn new(uid: EpisodeUid, params_version: u64, record_ram: bool) -> Self {
        EpisodeRecording {
            uid,
            sequence: 0,
            params_version,
            frame_hw: None,
            frame: Vec::new(),
            action: Vec::new(),
            reward: Vec::new(),
            baseline: Vec::new(),
            policy_logits: Vec::new(),
            attention: Vec::new(),
            attention_content: Vec::new(),
            attention_place: Vec::new(),
            ram: Vec::new(),
            record_ram,
            objects: Vec::new(),
            object_names: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.action.len()
    }

    pub fn push(&mut self, step: StepView<'_>) {
        let (h, w, pixels) = step.frame;
        self.frame_hw.get_or_insert((h, w));
        self.frame.extend_from_slice(pixels);
        self.action.push(step.action);
        self.reward.push(step.reward);
        self.baseline.push(step.baseline);
        self.policy_logits.extend_from_slice(step.policy_logits);
        self.attention.extend_from_slice(step.attention);
        self.attention_content.extend_from_slice(step.attention_content);
        self.attention_place.extend_from_slice(step.attention_place);
        if self.record_ram {
            self.ram.extend_from_slice(&step.ram.unwrap_or([0; RAM_BYTES]));
        }
        if self.object_names.is_empty() && !step.objects.is_empty() {
            self.object_names = step.objects.iter().map(|(name, _, _)| name.to_string()).collect();
        }
        if !self.object_names.is_empty() {
            for name in &self.object_names {
                let found = step.objects.iter().find(|(n, _, _)| n == name);
                let (row, col) = found.map_or((f32::NAN, f32::NAN), |&(_, r, c)| (r, c));
                self.objects.extend_from_slice(&[row, col]);
            }
        }
    }

    /// The buffered steps as the next chunk; `end` marks the last one.
    pub fn take_chunk(
        &mut self,
        cfg: &ModelConfig,
        end: Option<EpisodeEnd>,
        next_params_version: u64,
    ) -> EpisodeChunk {
        let n = self.len();
        let (h, w) = cfg.grid();
        let (fh, fw) = self.frame_hw.unwrap_or((0, 0));
        let maps = vec![n, cfg.heads, h, w];
        let chunk = EpisodeChunk {
            uid: self.uid,
            sequence: self.sequence,
            params_version: self.params_version,
            frame: Array::from_u8(vec![n, fh, fw, 3], std::mem::take(&mut self.frame)),
            action: Array::from_i64(vec![n], &std::mem::take(&mut self.action)),
            reward: Array::from_f32(vec![n], &std::mem::take(&mut self.reward)),
            baseline: Array::from_f32(vec![n], &std::mem::take(&mut self.baseline)),
            policy_logits: Array::from_f32(
                vec![n, cfg.num_actions],
                &std::mem::take(&mut self.policy_logits),
            ),
            attention: Array::from_f32(maps.clone(), &std::mem::take(&mut self.attention)),
            attention_content: Array::from_f32(
                maps.clone(),
                &std::mem::take(&mut self.attention_content),
            ),
            attention_place: Array::from_f32(maps, &std::mem::take(&mut self.attention_place)),
            ram: self
                .record_ram
                .then(|| Array::from_u8(vec![n, RAM_BYTES], std::mem::take(&mut self.ram))),
            objects: (!self.object_names.is_empty()).then(|| {
                Array::from_f32(
                    vec![n, self.object_names.len(), 2],
                    &std::mem::take(&mut self.objects),
                )
            }),
            object_names: self.object_names.clone(),
            end,
        };
        self.sequence += 1;
        self.params_version = next_params_version;
        chunk
    }
}
