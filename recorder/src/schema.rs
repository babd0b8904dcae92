//! The layout of the recorder's HDF5 files, declared once (docs/hdf5-schema.md
//! is the user's version of this table). The writer creates, and the readers
//! look up, datasets and attributes by these names only.
//!
//! ```text
//! episodes-00003.h5                      one closed segment of the rotation
//!   @format = "attention-agent-episodes", @format_version, @run_id,
//!   @model_config (JSON), @env (JSON), @created_unix, @recorder_version
//!   episodes/<uid>/                      one group per episode, uid "a<actor>-e<env>-n<counter>"
//!     @actor @env @counter @episode_return @length @complete @steps ...
//!     frame [T,H,W,3] u8, action [T] i64, reward [T] f32, baseline [T] f32,
//!     policy_logits [T,A] f32, attention{,_content,_place} [T,heads,h,w] f32,
//!     params_version [T] u64, ram [T,128] u8 (optional), objects [T,K,2] f32 (optional)
//! ```

/// Root attribute `format`: tells our files apart from other HDF5 files.
pub const FORMAT: &str = "attention-agent-episodes";
/// Root attribute `format_version`: bumped on any incompatible layout change.
pub const FORMAT_VERSION: u32 = 1;
/// The group that holds one subgroup per episode.
pub const EPISODES: &str = "episodes";
/// Segment file names: `episodes-<k>.h5`, written as `<name>.partial` first.
pub const SEGMENT_PREFIX: &str = "episodes-";
pub const SEGMENT_SUFFIX: &str = ".h5";
pub const PARTIAL_SUFFIX: &str = ".partial";
/// Directory (inside the run dir) of the episodes still being recorded.
pub const STAGING_DIR: &str = "episodes.staging";

/// One per-step dataset of an episode group.
pub struct StepField {
    pub name: &'static str,
    pub dtype: &'static str,
    /// Axis names, outermost first (the `axes` attribute).
    pub axes: &'static str,
    /// The `units` attribute.
    pub units: &'static str,
    pub description: &'static str,
    /// False for datasets present only when the actor sent them.
    pub always: bool,
}

/// Every per-step dataset, in the order of the wire's `EpisodeChunk`.
pub const STEP_FIELDS: &[StepField] = &[
    StepField {
        name: "frame",
        dtype: "uint8",
        axes: "step,row,column,channel",
        units: "RGB intensity 0-255",
        description: "Full-resolution RGB frame the agent saw at this step (row 0 at the top).",
        always: true,
    },
    StepField {
        name: "action",
        dtype: "int64",
        axes: "step",
        units: "action index",
        description: "Action chosen at this step (index into the environment's action set).",
        always: true,
    },
    StepField {
        name: "reward",
        dtype: "float32",
        axes: "step",
        units: "game score (raw, unclipped)",
        description: "Reward the step's action earned (summed over the action repeat); an episode's rewards sum to its return.",
        always: true,
    },
    StepField {
        name: "baseline",
        dtype: "float32",
        axes: "step",
        units: "discounted return (clipped-reward scale)",
        description: "The agent's value estimate V(s) at this step.",
        always: true,
    },
    StepField {
        name: "policy_logits",
        dtype: "float32",
        axes: "step,action",
        units: "logit (natural log, unnormalised)",
        description:
            "Behaviour policy logits; softmax over the last axis gives the action probabilities.",
        always: true,
    },
    StepField {
        name: "attention",
        dtype: "float32",
        axes: "step,head,grid_row,grid_column",
        units: "probability (each [head] map sums to 1)",
        description: "Attention weights of each head over the vision core's grid.",
        always: true,
    },
    StepField {
        name: "attention_content",
        dtype: "float32",
        axes: "step,head,grid_row,grid_column",
        units: "logit",
        description: "Content ('what') part of the attention logits: query . key channels.",
        always: true,
    },
    StepField {
        name: "attention_place",
        dtype: "float32",
        axes: "step,head,grid_row,grid_column",
        units: "logit",
        description: "Place ('where') part of the attention logits: query . spatial basis.",
        always: true,
    },
    StepField {
        name: "params_version",
        dtype: "uint64",
        axes: "step",
        units: "learner update count",
        description: "Version of the weights the actor acted with at this step.",
        always: true,
    },
    StepField {
        name: "ram",
        dtype: "uint8",
        axes: "step,byte",
        units: "raw byte",
        description: "The 128 bytes of Atari RAM at this step.",
        always: false,
    },
    StepField {
        name: "objects",
        dtype: "float32",
        axes: "step,object,coordinate",
        units: "frame pixels (row, column); NaN where absent",
        description: "Ground-truth object positions; names in the `object_names` attribute.",
        always: false,
    },
];

/// Per-episode attributes: (name, type, meaning).
pub const EPISODE_ATTRS: &[(&str, &str, &str)] = &[
    ("uid", "string", "`a{actor}-e{env}-n{counter}`, also the group's name"),
    ("actor", "uint32", "actor id"),
    ("env", "uint32", "environment index within the actor"),
    ("counter", "uint64", "episode counter within that environment"),
    ("episode_return", "float64", "raw (unclipped) return the actor reported; NaN if unknown"),
    ("length", "uint64", "agent steps the actor reported (steps stored may be fewer)"),
    ("steps", "uint64", "steps stored in this group (first axis of every dataset)"),
    ("complete", "uint8", "1: the episode ended in the game; 0: cut short"),
    (
        "end_reason",
        "string",
        "'end' (last chunk received), 'recorder_shutdown', 'timeout', 'recovered'",
    ),
    ("missing_chunks", "uint32", "chunks that never arrived (gaps in the sequence numbers)"),
    ("params_version_first", "uint64", "weights version at the first stored step"),
    ("params_version_last", "uint64", "weights version at the last stored step"),
    ("frame_height", "uint32", "H"),
    ("frame_width", "uint32", "W"),
    ("finished_unix", "float64", "wall-clock time the recorder closed the episode (s since 1970)"),
];

/// The schema as Markdown tables (`recorder schema`), for docs/hdf5-schema.md.
pub fn markdown() -> String {
    let mut out = String::from(
        "| dataset | dtype | axes | units | always | meaning |\n|---|---|---|---|---|---|\n",
    );
    for f in STEP_FIELDS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            f.name,
            f.dtype,
            f.axes,
            f.units,
            if f.always { "yes" } else { "when sent" },
            f.description
        ));
    }
    out.push_str("\n| episode attribute | type | meaning |\n|---|---|---|\n");
    for (name, ty, meaning) in EPISODE_ATTRS {
        out.push_str(&format!("| `{name}` | {ty} | {meaning} |\n"));
    }
    out
}

/// The uid string used as group name.
pub fn uid_name(uid: &wire::protocol::EpisodeUid) -> String {
    uid.to_string()
}
