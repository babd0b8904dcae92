//! The attention-augmented agent as libtorch computes it: the model
//! ([`model`]: vision core, spatial basis, attention, policy core, heads),
//! V-trace ([`vtrace`]), the numeric precision the model computes in
//! ([`precision`]) and what the machine offers for it ([`machine`]).
//!
//! The actor and the learner depend on it; the recorder does not, so it builds
//! and runs where no PyTorch is installed. Shapes come from
//! [`wire::config::ModelConfig`]; what travels between processes is `wire`'s.

pub mod machine;
pub mod model;
pub mod policy;
pub mod precision;
pub mod vtrace;
