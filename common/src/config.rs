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

/// The architecture of the attention agent (SPEC section 3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
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

    /// A small agent for the built-in game (RGB 42x42, 7x7 grid, 2 heads).
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
    /// Atari games at this preset get a coarse 7x7 grid: use `paper` for them.
    pub fn small(num_actions: usize) -> Self {
        ModelConfig {
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
            heads: 2,
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

    /// Input of the answer MLP: answers, queries, clipped reward, one-hot last action.
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

    #[test]
    fn fingerprint_depends_on_architecture() {
        assert_eq!(ModelConfig::paper(18).fingerprint(), ModelConfig::paper(18).fingerprint());
        assert_ne!(ModelConfig::paper(18).fingerprint(), ModelConfig::paper(9).fingerprint());
        assert_ne!(ModelConfig::paper(18).fingerprint(), ModelConfig::small(18).fingerprint());
    }
}
