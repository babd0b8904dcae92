//! The per-step layouts, each declared once: the trajectory's fields (actor ->
//! learner) and the episode chunk's (actor -> recorder), with name, element
//! type and the shape of one step as the model config gives it.
//!
//! TorchBeast declares its rollout buffers as one table of names, shapes and
//! dtypes and builds every producer and consumer from it; this module does the
//! same. [`per_step_layout!`] declares a message's struct and, from the same
//! lines, its table ([`TRAJECTORY_STEPS`], [`EPISODE_STEPS`]) and a generic
//! struct of one value per step field ([`TrajectorySteps`], [`EpisodeSteps`]).
//! From these come, with no field named again:
//! - validation and byte counts ([`crate::protocol`]);
//! - the actor's unroll buffers and the learner's batch (one
//!   [`TrajectorySteps::map`] over all tensors);
//! - the recorder's datasets and `recorder schema`.
//!
//! Adding a per-step field is one line in the declaration in
//! [`crate::protocol`], plus the code that fills it and the code that uses it.
//! docs/architecture.md ("Per-step layouts") has the tables as prose.

use crate::config::ModelConfig;
use serde::{Deserialize, Serialize};

/// Element type of a field (and of the [`crate::array::Array`] that carries it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    U8,
    I64,
    F32,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::U8 => 1,
            DType::I64 => 8,
            DType::F32 => 4,
        }
    }
}

/// One dimension of a step's shape (the leading step axis not included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    /// The model input's height, width and channels (`ModelConfig`).
    Height,
    Width,
    InChannels,
    /// The number of actions A.
    Actions,
    /// Attention heads.
    Heads,
    /// The vision core's output grid, rows and columns.
    GridRows,
    GridColumns,
    /// A size the config does not fix (the recorded frame's height and width,
    /// whatever the environment renders): any size, the same for every step.
    /// The name is the axis's.
    Free(&'static str),
    /// A fixed size, and the axis's name.
    Fixed(usize, &'static str),
}

impl Dim {
    /// The size, or `None` for [`Dim::Free`].
    pub fn size(self, cfg: &ModelConfig) -> Option<usize> {
        let (rows, columns) = cfg.grid();
        Some(match self {
            Dim::Height => cfg.height,
            Dim::Width => cfg.width,
            Dim::InChannels => cfg.in_channels,
            Dim::Actions => cfg.num_actions,
            Dim::Heads => cfg.heads,
            Dim::GridRows => rows,
            Dim::GridColumns => columns,
            Dim::Fixed(n, _) => n,
            Dim::Free(_) => return None,
        })
    }

    /// The axis's name in the recorder's files (the datasets' `axes` attribute).
    pub fn axis(self) -> &'static str {
        match self {
            Dim::Height => "row",
            Dim::Width => "column",
            Dim::InChannels => "channel",
            Dim::Actions => "action",
            Dim::Heads => "head",
            Dim::GridRows => "grid_row",
            Dim::GridColumns => "grid_column",
            Dim::Free(axis) | Dim::Fixed(_, axis) => axis,
        }
    }
}

/// What a field's values must satisfy beyond dtype and shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Nothing more.
    Any,
    /// Finite floats: a NaN would poison the learner's weights.
    Finite,
    /// Actions in `[0, A)`.
    Action,
    /// 0 or 1.
    Flag,
}

/// One per-step field of a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub dtype: DType,
    /// The shape of one step.
    pub dims: &'static [Dim],
    pub check: Check,
    /// What the field holds, as its declaration's doc comment says it (the
    /// recorder's `description` attribute).
    pub doc: &'static str,
    /// What a value measures (the recorder's `units` attribute).
    pub units: &'static str,
}

impl Field {
    /// The shape of `steps` steps, `None` where a dimension is [`Dim::Free`].
    pub fn shape(&self, cfg: &ModelConfig, steps: usize) -> Vec<Option<usize>> {
        std::iter::once(Some(steps)).chain(self.dims.iter().map(|d| d.size(cfg))).collect()
    }

    /// The axes, outermost first, the step axis named `step`: "step,row,column,channel".
    pub fn axes(&self) -> String {
        std::iter::once("step")
            .chain(self.dims.iter().map(|d| d.axis()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Declares a message struct whose per-step fields form a layout. Fields
/// before `steps` and after it are the message's own; each line in `steps` is
/// `name: DTYPE [dims] check, units "..."` under its doc comment, and becomes an [`crate::protocol::Array`] field
/// of the message, an entry of the table, and a field of the generic struct.
/// The message keeps its field order (it is the order on the wire).
macro_rules! per_step_layout {
    (
        $(#[$meta:meta])*
        pub struct $message:ident, steps $steps:ident, table $table:ident {
            $( $(#[$hmeta:meta])* pub $head:ident : $htype:ty, )*
            steps {
                $( #[doc = $doc:literal] $field:ident : $dtype:ident [$($dim:expr),*] $check:ident, units $units:literal, )*
            }
            $( $(#[$tmeta:meta])* pub $tail:ident : $ttype:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub struct $message {
            $( $(#[$hmeta])* pub $head: $htype, )*
            $( #[doc = $doc] pub $field: Array, )*
            $( $(#[$tmeta])* pub $tail: $ttype, )*
        }

        /// The per-step layout of the message of the same name.
        pub const $table: &[$crate::layout::Field] = &[
            $( $crate::layout::Field {
                name: stringify!($field),
                dtype: DType::$dtype,
                dims: &[$($dim),*],
                check: $crate::layout::Check::$check,
                doc: $doc,
                units: $units,
            }, )*
        ];

        /// One value per per-step field of the message of the same name: the
        /// arrays of a message, a batch's tensors, a buffer's bytes, a file's
        /// datasets.
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct $steps<A> {
            $( #[doc = $doc] pub $field: A, )*
        }

        impl<A> $steps<A> {
            /// Each field's value built from its table entry, in table order.
            pub fn from_fn(mut f: impl FnMut(&'static $crate::layout::Field) -> A) -> Self {
                let mut fields = $table.iter();
                $steps { $( $field: f(fields.next().expect(stringify!($field))), )* }
            }

            /// Each value mapped with its table entry, in table order.
            pub fn map<B>(self, mut f: impl FnMut(&'static $crate::layout::Field, A) -> B) -> $steps<B> {
                let mut fields = $table.iter();
                $steps { $( $field: f(fields.next().expect(stringify!($field)), self.$field), )* }
            }

            /// References to the values, as a struct of the same fields.
            pub fn as_ref(&self) -> $steps<&A> {
                $steps { $( $field: &self.$field, )* }
            }

            /// Each value mapped with its table entry, in table order; the
            /// first error ends the mapping.
            pub fn try_map<B, E>(
                self,
                mut f: impl FnMut(&'static $crate::layout::Field, A) -> std::result::Result<B, E>,
            ) -> std::result::Result<$steps<B>, E> {
                let mut fields = $table.iter();
                Ok($steps { $( $field: f(fields.next().expect(stringify!($field)), self.$field)?, )* })
            }

            /// (table entry, value) pairs in table order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static $crate::layout::Field, &A)> {
                $table.iter().zip([$( &self.$field ),*])
            }

            /// (table entry, mutable value) pairs in table order.
            pub fn iter_mut(&mut self) -> impl Iterator<Item = (&'static $crate::layout::Field, &mut A)> {
                $table.iter().zip([$( &mut self.$field ),*])
            }
        }

        impl $message {
            /// The message's per-step arrays.
            pub fn steps(&self) -> $steps<&Array> {
                $steps { $( $field: &self.$field, )* }
            }

            /// The message from its own fields and its per-step arrays.
            #[allow(clippy::too_many_arguments)]
            pub fn from_parts(
                $( $head: $htype, )*
                steps: $steps<Array>,
                $( $tail: $ttype, )*
            ) -> Self {
                $message { $( $head, )* $( $field: steps.$field, )* $( $tail, )* }
            }
        }
    };
}
pub(crate) use per_step_layout;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ModelConfig, Preset};
    use crate::protocol::{EpisodeSteps, TrajectorySteps, EPISODE_STEPS, TRAJECTORY_STEPS};

    #[test]
    fn tables_name_every_per_step_field_of_the_messages() {
        let cfg = ModelConfig::preset(Preset::Small, 3);
        let trajectory = crate::fixtures::trajectory(&cfg, 4, 1);
        let names: Vec<&str> = trajectory.steps().iter().map(|(f, _)| f.name).collect();
        let json = serde_json::to_value(&trajectory).unwrap();
        let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        keys.retain(|k| !["actor_id", "env_index", "params_version", "initial_state"].contains(k));
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "every array of a trajectory is in its table");
        assert_eq!(names.len(), TRAJECTORY_STEPS.len());
        assert_eq!(EpisodeSteps::<()>::default().iter().count(), EPISODE_STEPS.len());
        assert_eq!(TrajectorySteps::<()>::default().iter().count(), TRAJECTORY_STEPS.len());
    }

    #[test]
    fn shapes_come_from_the_config() {
        let cfg = ModelConfig::preset(Preset::Paper, 18);
        let frame = TRAJECTORY_STEPS.iter().find(|f| f.name == "frame").unwrap();
        assert_eq!(frame.shape(&cfg, 51), vec![Some(51), Some(210), Some(160), Some(3)]);
        let logits = TRAJECTORY_STEPS.iter().find(|f| f.name == "policy_logits").unwrap();
        assert_eq!(logits.shape(&cfg, 51), vec![Some(51), Some(18)]);
        assert_eq!(logits.axes(), "step,action");
        let recorded = EPISODE_STEPS.iter().find(|f| f.name == "frame").unwrap();
        assert_eq!(
            recorded.shape(&cfg, 4),
            vec![Some(4), None, None, Some(3)],
            "the recorded frame's size is free"
        );
        assert_eq!(recorded.axes(), "step,row,column,channel");
    }

    #[test]
    fn map_visits_every_field_with_its_entry() {
        let steps = TrajectorySteps::from_fn(|f| f.name.to_string());
        let mapped = steps.map(|f, name| (f.name == name, f.dtype));
        assert!(mapped.iter().all(|(_, (same, _))| *same));
        assert_eq!(mapped.frame.1, DType::U8);
        assert_eq!(mapped.action.1, DType::I64);
        let failed = TrajectorySteps::from_fn(|f| f.name).try_map(|f, name| match f.dtype {
            DType::F32 => Err(name),
            _ => Ok(name.len()),
        });
        assert_eq!(failed, Err("reward"), "the first f32 field in table order stops it");
    }
}
