//! Who answers a group's observations with actions. The actor's loop
//! ([`crate::train`]) is the same in both modes; only this differs:
//!
//! - [`Local`]: the actor's own `agent::policy::BatchedPolicy`, in this
//!   process. It assembles the unrolls, which go to the learner as they
//!   complete, and takes the learner's newest weights after each.
//! - [`Remote`]: the learner's (central inference): the request goes over
//!   the socket, and the learner's policy assembles the unrolls.

mod local;
mod remote;

use std::time::Duration;

use anyhow::Result;
use wire::protocol::{Actions, Observations};

pub use local::Local;
pub use remote::Remote;

/// What [`Inference::recv`] found for a group.
pub enum Reply {
    /// The actions for the group's current step (validated against it).
    Acted(Box<Actions>),
    /// Nothing yet: ask again later (other groups may have answers).
    NotYet,
    /// The group must start over with new episodes on a new stream.
    StartOver(String),
    /// The learner finished the run: the actor stops.
    Finished,
}

pub trait Inference {
    /// Asks for the actions of `group`'s current step.
    fn send(&mut self, group: usize, request: Observations) -> Result<()>;
    /// The answer to `group`'s request, waiting at most `wait` for it.
    fn recv(&mut self, group: usize, wait: Duration) -> Result<Reply>;
    /// Where `in_calls`, the time spent in [`send`](Self::send) and
    /// [`recv`](Self::recv) since the last call, went: ("inference", ..),
    /// ("waiting for the learner", ..), for the progress line.
    fn take_times(&mut self, in_calls: Duration) -> Vec<(&'static str, Duration)>;
    /// Counts worth a place on the progress line.
    fn status(&self) -> String;
}
