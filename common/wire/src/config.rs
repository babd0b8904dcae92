//! Model and run configuration shared by every process.
//!
//! Every shape in the model and in the wire protocol derives from a
//! [`ModelConfig`]; no other module holds a shape constant. Two presets exist:
//! [`ModelConfig::paper`] (Mott et al. 2019, RGB 210x160 Atari frames) and
//! [`ModelConfig::small`] (the built-in game on a laptop CPU).
//!
//! The config's [`fingerprint`](ModelConfig::fingerprint) travels with weights,
//! so an actor never loads weights of another architecture.

use serde::{Deserialize, Serialize};

/// One convolution of the vision core's feed-forward part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvSpec {
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    /// Zero padding as (rows, columns).
    pub padding: (usize, usize),
}

impl ConvSpec {
    /// Output (height, width) for an input of (height, width).
    pub fn output_size(&self, (h, w): (usize, usize)) -> (usize, usize) {
        let out = |n: usize, p: usize| (n + 2 * p - self.kernel) / self.stride + 1;
        (out(h, self.padding.0), out(w, self.padding.1))
    }
}

/// Named presets, chosen with `--preset` on every binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The paper's agent: RGB 210x160 input, 27x20 grid, 4 heads, 256-unit core.
    Paper,
    /// A small agent for the built-in game: trains on a CPU in minutes.
    Small,
}

impl std::str::FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "paper" => Ok(Preset::Paper),
            "small" => Ok(Preset::Small),
            _ => Err(format!("unknown preset {s:?}: use `paper` or `small`")),
        }
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Preset::Paper => "paper",
            Preset::Small => "small",
        })
    }
}

/// Which agent reads the vision core: the paper's, or the control without
/// attention that Mott et al. compare it with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    /// Top-down attention, the paper's: queries from the policy core's
    /// previous state pick what of the frame the policy sees.
    #[default]
    Attention,
    /// No attention: the same vision core and policy core, with the answers
    /// replaced by the vision output pooled over the whole grid
    /// (`model::pooling`). The control that tells the attention bottleneck
    /// apart from everything else.
    Baseline,
}

impl AgentKind {
    /// For serde: the attention agent's configs serialize as they did before
    /// the field existed, so their fingerprints (and checkpoints) stay valid.
    pub fn is_attention(&self) -> bool {
        *self == AgentKind::Attention
    }
}

impl std::fmt::Display for AgentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AgentKind::Attention => "attention",
            AgentKind::Baseline => "baseline",
        })
    }
}

/// How the attention logits come from queries and keys (docs/architecture.md,
/// The model, step 9).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum AttentionLogits {
    /// `q . k`, as the paper writes it.
    #[default]
    Dot,
    /// `q . k / sqrt(C_k + C_s)`: scaled dot-product attention (Vaswani et
    /// al. 2017), whose logits grow 1/sqrt(d) as fast as the queries do.
    ScaledDot,
    /// `q_content . keys / sqrt(C_k) + q_place . basis / sqrt(C_s)`: each part
    /// scaled by its own width, so the few key channels are not outweighed by
    /// the many basis channels (with 8 key and 64 basis channels, `ScaledDot`
    /// gives what the frame shows 1/3 of the weight it gives where it is).
    ScaledPerPart,
}

impl AttentionLogits {
    /// For serde: the paper's logits serialize as before the field existed.
    pub fn is_dot(&self) -> bool {
        *self == AttentionLogits::Dot
    }
}

/// The architecture as the command line chooses it, before the game's action
/// count is known: a preset and the fields every binary may override
/// (`--agent`, `--attention-logits`, `--normalize-keys`, `--heads`). Every
/// process of a run builds its [`ModelConfig`] from the same choice, so
/// learner, actors and recorder agree on the shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelChoice {
    pub preset: Preset,
    pub agent: AgentKind,
    pub attention_logits: Option<AttentionLogits>,
    pub normalize_keys: Option<bool>,
    pub heads: Option<usize>,
}

impl ModelChoice {
    /// The preset as it is.
    pub fn preset(preset: Preset) -> Self {
        ModelChoice {
            preset,
            agent: AgentKind::Attention,
            attention_logits: None,
            normalize_keys: None,
            heads: None,
        }
    }

    /// The config for a game with `num_actions` actions.
    pub fn config(&self, num_actions: usize) -> ModelConfig {
        let preset = ModelConfig::preset(self.preset, num_actions);
        ModelConfig {
            agent: self.agent,
            attention_logits: self.attention_logits.unwrap_or(preset.attention_logits),
            normalize_keys: self.normalize_keys.unwrap_or(preset.normalize_keys),
            heads: self.heads.unwrap_or(preset.heads),
            ..preset
        }
    }
}

/// The architecture of the attention agent (docs/architecture.md, The model).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The attention agent or the no-attention control.
    #[serde(default, skip_serializing_if = "AgentKind::is_attention")]
    pub agent: AgentKind,
    /// The attention logits: the paper's `q . k`, or a scaled variant.
    #[serde(default, skip_serializing_if = "AttentionLogits::is_dot")]
    pub attention_logits: AttentionLogits,
    /// Normalise each key channel over the grid before `q . k` (zero mean,
    /// unit variance over the positions; `model::attention`). Off in the paper.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub normalize_keys: bool,
    /// Input frame height in pixels.
    pub height: usize,
    /// Input frame width in pixels.
    pub width: usize,
    /// Input channels (3 for RGB, 1 for grayscale).
    pub in_channels: usize,
    /// The three convolutions before the ConvLSTM, each followed by ReLU.
    pub convs: [ConvSpec; 3],
    /// ConvLSTM hidden channels; split into keys and values.
    pub convlstm_channels: usize,
    /// ConvLSTM kernel size (odd; "same" padding).
    pub convlstm_kernel: usize,
    /// Key channels C_k; values get the remaining `convlstm_channels - key_channels`.
    pub key_channels: usize,
    /// Frequencies per axis of the spatial basis (u, v in 1..=n): C_s = 4 n^2.
    pub basis_frequencies: usize,
    /// Attention heads.
    pub heads: usize,
    /// Hidden width of the query MLP's first layer (256 -> 128 -> ...).
    pub query_hidden: usize,
    /// Hidden widths of the answer MLP before the policy core.
    pub answer_mlp: [usize; 2],
    /// LSTM policy core units.
    pub core_units: usize,
    /// Number of actions A.
    pub num_actions: usize,
}

impl ModelConfig {
    /// The paper's agent for Atari with `num_actions` actions (18 for the full set).
    pub fn paper(num_actions: usize) -> Self {
        ModelConfig {
            agent: AgentKind::Attention,
            attention_logits: AttentionLogits::Dot,
            normalize_keys: false,
            height: 210,
            width: 160,
            in_channels: 3,
            convs: [
                ConvSpec { out_channels: 32, kernel: 8, stride: 4, padding: (3, 2) },
                ConvSpec { out_channels: 64, kernel: 4, stride: 2, padding: (2, 1) },
                ConvSpec { out_channels: 64, kernel: 3, stride: 1, padding: (1, 1) },
            ],
            convlstm_channels: 128,
            convlstm_kernel: 3,
            key_channels: 8,
            basis_frequencies: 4,
            heads: 4,
            query_hidden: 128,
            answer_mlp: [512, 256],
            core_units: 256,
            num_actions,
        }
    }

    /// A small agent for the built-in game (RGB 42x42, 7x7 grid, 4 heads).
    ///
    /// The first convolution (6x6, stride 6) gives one grid cell per cell of
    /// catch's 7x7 board, so a ball is one attention position out of 49; with
    /// an 11x11 grid it covered ~4 of 121 and the agent learned catch in none
    /// of the runs tried. The later convolutions and the ConvLSTM are 1x1, so
    /// a position's key and value describe that cell only: what the policy
    /// knows about the ball must pass through the attention, which is what the
    /// attention measurements (`recorder analyze`) rely on. With 3x3 kernels
    /// every cell saw the whole board and the trained agent fixed its
    /// attention on one place whatever the ball did (docs/learning.md).
    ///
    /// Its keys are normalised over the grid and the two parts of its
    /// attention logits divided by sqrt(C_k) and sqrt(C_s)
    /// ([`AttentionLogits::ScaledPerPart`]). With the paper's `q . k`, Adam drove the
    /// place part of the logits from a spread of ~1.5 to ~50 within 15-60
    /// updates while the content part stayed below 1: every head locked onto
    /// one fixed cell (map entropy 0.01 of a uniform 3.9 nats), and the agent
    /// stayed blind to the ball for 300k to 900k frames. With both changes
    /// a head finds the ball by content within ~80k frames on the seeds that
    /// learn (docs/learning.md, "Why catch learned slowly").
    ///
    /// Four heads, as the paper's agent: which object each head settles on is
    /// decided within the first ~20 updates, before the policy has learned
    /// anything, and some choices leave the agent without what it needs. Over
    /// the demo's 20 seeds (discount 0.9, before its learning-rate warm-up), 5
    /// runs with two heads ended below +2.5 over their last 20% of updates and
    /// 3 with four (docs/learning.md, "Why one run in five did not learn").
    ///
    /// Atari games at this preset get a coarse 7x7 grid: use `paper` for them.
    pub fn small(num_actions: usize) -> Self {
        ModelConfig {
            agent: AgentKind::Attention,
            attention_logits: AttentionLogits::ScaledPerPart,
            normalize_keys: true,
            height: 42,
            width: 42,
            in_channels: 3,
            convs: [
                ConvSpec { out_channels: 16, kernel: 6, stride: 6, padding: (0, 0) },
                ConvSpec { out_channels: 32, kernel: 1, stride: 1, padding: (0, 0) },
                ConvSpec { out_channels: 32, kernel: 1, stride: 1, padding: (0, 0) },
            ],
            convlstm_channels: 32,
            convlstm_kernel: 1,
            key_channels: 8,
            basis_frequencies: 4,
            heads: 4,
            query_hidden: 64,
            answer_mlp: [128, 64],
            core_units: 64,
            num_actions,
        }
    }

    pub fn preset(preset: Preset, num_actions: usize) -> Self {
        match preset {
            Preset::Paper => Self::paper(num_actions),
            Preset::Small => Self::small(num_actions),
        }
    }

    /// (h, w) of the attention grid: the input size after the three convolutions.
    pub fn grid(&self) -> (usize, usize) {
        self.convs.iter().fold((self.height, self.width), |size, conv| conv.output_size(size))
    }

    /// Value channels C_v.
    pub fn value_channels(&self) -> usize {
        self.convlstm_channels - self.key_channels
    }

    /// Spatial basis channels C_s = 4 * frequencies^2 ({cos, sin} x {cos, sin} x u x v).
    pub fn basis_channels(&self) -> usize {
        4 * self.basis_frequencies * self.basis_frequencies
    }

    /// Width of one query (and of one key with its basis): C_k + C_s.
    pub fn query_width(&self) -> usize {
        self.key_channels + self.basis_channels()
    }

    /// Width of one answer (a value with its basis): C_v + C_s.
    pub fn answer_width(&self) -> usize {
        self.value_channels() + self.basis_channels()
    }

    /// What the content part (`q . keys`) and the place part (`q . basis`)
    /// of the attention logits are divided by; (1, 1) for the paper's.
    pub fn attention_logit_divisors(&self) -> (f64, f64) {
        let sqrt = |n: usize| (n as f64).sqrt();
        match self.attention_logits {
            AttentionLogits::Dot => (1.0, 1.0),
            AttentionLogits::ScaledDot => (sqrt(self.query_width()), sqrt(self.query_width())),
            AttentionLogits::ScaledPerPart => {
                (sqrt(self.key_channels), sqrt(self.basis_channels()))
            }
        }
    }

    /// Width of the grid pooled by the no-attention control: every ConvLSTM
    /// channel against the constant and each spatial-basis channel.
    pub fn pooled_width(&self) -> usize {
        self.convlstm_channels * (1 + self.basis_channels())
    }

    /// Input of the answer MLP: answers, queries, clipped reward, one-hot last
    /// action. The no-attention control has no queries and feeds zeros in
    /// their place, so both agents share one policy core.
    pub fn core_input_width(&self) -> usize {
        self.heads * (self.answer_width() + self.query_width()) + 1 + self.num_actions
    }

    /// Bytes of one observation frame, u8 [H, W, C].
    pub fn frame_len(&self) -> usize {
        self.height * self.width * self.in_channels
    }

    /// A stable 64-bit FNV-1a hash of the canonical JSON of this config, as hex.
    /// Weights carry it; a receiver refuses weights whose fingerprint differs.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_vec(self).expect("config serializes");
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in json {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{hash:016x}")
    }

    /// Checks the config describes a buildable model, with a message saying what to fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.key_channels == 0 || self.key_channels >= self.convlstm_channels {
            return Err(format!(
                "key_channels ({}) must be in 1..convlstm_channels ({})",
                self.key_channels, self.convlstm_channels
            ));
        }
        if self.convlstm_kernel.is_multiple_of(2) {
            return Err("convlstm_kernel must be odd".into());
        }
        if self.heads == 0 || self.num_actions == 0 || self.in_channels == 0 {
            return Err("heads, num_actions and in_channels must be positive".into());
        }
        let (h, w) = self.grid();
        if h == 0 || w == 0 {
            return Err(format!(
                "input {}x{} is too small for the convolutions",
                self.height, self.width
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_shapes_match_the_spec_table() {
        let c = ModelConfig::paper(18);
        assert_eq!(c.convs[0].output_size((210, 160)), (53, 40));
        assert_eq!(c.grid(), (27, 20));
        assert_eq!(c.value_channels(), 120);
        assert_eq!(c.basis_channels(), 64);
        assert_eq!(c.query_width(), 72);
        assert_eq!(c.answer_width(), 184);
        assert_eq!(c.heads * c.query_width(), 288);
        assert_eq!(c.core_input_width(), 1043);
        c.validate().unwrap();
    }

    #[test]
    fn small_preset_is_valid() {
        let c = ModelConfig::small(3);
        c.validate().unwrap();
        assert_eq!(c.grid(), (7, 7));
    }

    /// The fields added since the paper preset's first runs are absent from
    /// its JSON at their paper values, so its configs and checkpoints keep
    /// their fingerprint; JSON without them reads as the paper's.
    #[test]
    fn the_paper_preset_s_fingerprint_is_unchanged_by_the_new_fields() {
        let json = serde_json::to_string(&ModelConfig::paper(18)).unwrap();
        for field in ["agent", "attention_logits", "normalize_keys"] {
            assert!(!json.contains(field), "{field} in {json}");
        }
        let old: ModelConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(old, ModelConfig::paper(18));
        assert_eq!(old.agent, AgentKind::Attention);
        let baseline = ModelConfig { agent: AgentKind::Baseline, ..ModelConfig::small(3) };
        let json = serde_json::to_string(&baseline).unwrap();
        assert!(json.contains(r#""agent":"baseline""#), "{json}");
        assert_ne!(baseline.fingerprint(), ModelConfig::small(3).fingerprint());
    }

    #[test]
    fn fingerprint_depends_on_architecture() {
        assert_eq!(ModelConfig::paper(18).fingerprint(), ModelConfig::paper(18).fingerprint());
        assert_ne!(ModelConfig::paper(18).fingerprint(), ModelConfig::paper(9).fingerprint());
        assert_ne!(ModelConfig::paper(18).fingerprint(), ModelConfig::small(18).fingerprint());
    }
}
