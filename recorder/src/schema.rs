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

use wire::protocol::{DType, EPISODE_STEPS};

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
    pub axes: String,
    /// The `units` attribute.
    pub units: &'static str,
    pub description: &'static str,
    /// False for datasets present only when the actor sent them.
    pub always: bool,
}

/// The per-step datasets the recorder writes beside the chunk layout's: the
/// weights version of each step, and what the actor sends when asked.
pub const PARAMS_VERSION: &str = "params_version";
pub const RAM: &str = "ram";
pub const OBJECTS: &str = "objects";

/// The HDF5 type name of a wire dtype.
fn dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::U8 => "uint8",
        DType::I64 => "int64",
        DType::F32 => "float32",
    }
}

/// Every per-step dataset: the episode chunk's layout (`wire::layout`, in
/// its order), then what the recorder adds or the actor sends when asked.
pub fn step_fields() -> Vec<StepField> {
    let layout = EPISODE_STEPS.iter().map(|f| StepField {
        name: f.name,
        dtype: dtype_name(f.dtype),
        axes: f.axes(),
        units: f.units,
        description: f.doc.trim(),
        always: true,
    });
    let extra = [
        StepField {
            name: PARAMS_VERSION,
            dtype: "uint64",
            axes: "step".into(),
            units: "learner update count",
            description: "Version of the weights the actor acted with at this step.",
            always: true,
        },
        StepField {
            name: RAM,
            dtype: "uint8",
            axes: "step,byte".into(),
            units: "raw byte",
            description: "The 128 bytes of Atari RAM at this step.",
            always: false,
        },
        StepField {
            name: OBJECTS,
            dtype: "float32",
            axes: "step,object,coordinate".into(),
            units: "frame pixels (row, column); NaN where absent",
            description: "Ground-truth object positions; names in the `object_names` attribute.",
            always: false,
        },
    ];
    layout.chain(extra).collect()
}

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
    for f in step_fields() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The user's copy of the schema says what `recorder schema` says: a
    /// field added to the layout without regenerating the docs fails here.
    #[test]
    fn docs_hdf5_schema_holds_every_line_of_recorder_schema() {
        let docs = include_str!("../../docs/hdf5-schema.md");
        for line in markdown().lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                docs.contains(line),
                "docs/hdf5-schema.md lacks {line:?}: paste `recorder schema` into it"
            );
        }
    }

    #[test]
    fn every_field_of_the_chunk_layout_is_a_dataset() {
        let names: Vec<&str> = step_fields().iter().map(|f| f.name).collect();
        for field in EPISODE_STEPS {
            assert!(names.contains(&field.name), "{}", field.name);
        }
    }
}
