//! Shared by every process of the attention-augmented agent: the wire protocol
//! ([`protocol`]) and its NNG sockets ([`transport`]), the model ([`model`]),
//! the environments ([`env`]), V-trace ([`vtrace`]), the numeric precision
//! the model computes in ([`precision`]) and the configuration every shape
//! derives from ([`config`]).
//!
//! It holds no process logic: the `actor`, `learner` and `recorder` binaries
//! wire these pieces together.

pub mod args;
pub mod auth;
pub mod checkpoint;
pub mod config;
pub mod env;
pub mod fixtures;
pub mod machine;
pub mod model;
pub mod precision;
pub mod protocol;
pub mod rundir;
pub mod transport;
pub mod vtrace;
