//! Command-line flags every process of a run shares, so actor, learner and
//! recorder agree on the run id, the architecture and the unroll layout.

use std::path::PathBuf;

use crate::config::{AgentKind, AttentionLogits, ModelChoice, ModelConfig, Preset};
use crate::rundir::RunDir;

#[derive(clap::Args, Clone, Debug, serde::Serialize)]
pub struct RunArgs {
    /// Experiment id: names the run directory `<runs-root>/<xpid>` and is the
    /// run id on every message, so two runs never mix.
    #[arg(long, env = "AAA_XPID", default_value = "default")]
    pub xpid: String,
    /// Directory that holds the run directories.
    #[arg(long, env = "AAA_RUNS_ROOT", default_value = "runs")]
    pub runs_root: PathBuf,
    /// Model preset: `paper` (RGB 210x160, the paper's agent) or `small`
    /// (RGB 42x42, for the built-in game on a CPU).
    #[arg(long, default_value = "paper")]
    pub preset: Preset,
    /// Agent: `attention` (the paper's) or `baseline`, the same vision core
    /// and policy core without attention, reading the whole grid pooled
    /// (the control that shows what the attention costs or brings).
    #[arg(long, value_enum, default_value_t = AgentKind::Attention)]
    pub agent: AgentKind,
    /// Attention logits: `dot` (the paper's q . k), `scaled-dot` (divided by
    /// sqrt(C_k + C_s)) or `scaled-per-part` (content by sqrt(C_k), place by
    /// sqrt(C_s)); default: the preset's (`paper`: dot, `small`:
    /// scaled-per-part, docs/learning.md).
    #[arg(long, value_enum)]
    pub attention_logits: Option<AttentionLogits>,
    /// Normalise each key channel over the grid before the attention logits
    /// (`true` or `false`); default: the preset's (`paper`: false, `small`: true).
    #[arg(long)]
    pub normalize_keys: Option<bool>,
    /// Attention heads; default: the preset's (`paper`: 4, as the paper's
    /// agent; `small`: see `ModelConfig::small`).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub heads: Option<u16>,
    /// Game: an Atari game name (`seaquest`, `pong`, ...), `catch`, the
    /// built-in game that needs no ROM, or `probe`, a scripted environment
    /// whose known rewards check the step alignment (`env::probe`).
    #[arg(long, default_value = "seaquest")]
    pub game: String,
    /// Use Atari's full 18-action set instead of the game's minimal one.
    #[arg(long)]
    pub full_action_set: bool,
    /// Unroll length T: each trajectory holds T+1 steps.
    #[arg(long, default_value_t = 50)]
    pub unroll_length: usize,
    /// Run seed; every environment's seed derives from it, the actor id and the env index.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl RunArgs {
    pub fn run_dir(&self) -> Result<RunDir, String> {
        RunDir::new(&self.runs_root, &self.xpid)
    }

    /// The architecture these flags choose.
    pub fn model_choice(&self) -> ModelChoice {
        ModelChoice {
            preset: self.preset,
            agent: self.agent,
            attention_logits: self.attention_logits,
            normalize_keys: self.normalize_keys,
            heads: self.heads.map(usize::from),
        }
    }

    /// The model config for this run, given the environment's action count.
    pub fn model_config(&self, num_actions: usize) -> ModelConfig {
        self.model_choice().config(num_actions)
    }
}
