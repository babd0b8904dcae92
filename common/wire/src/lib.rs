//! What every process of a run shares, with no libtorch: the wire protocol
//! ([`protocol`]) and its NNG sockets ([`transport`]), the run's secret key
//! ([`run_key`]), who may speak for a run ([`auth`]) and the sealing of messages on tcp ([`seal`]), the configuration every shape derives from ([`config`]), the
//! per-step layouts ([`layout`]), the run directory ([`rundir`]: endpoints,
//! checkpoints, how a run ended), the flags every process takes ([`args`]), the
//! unroll buffer the batched policy fills ([`unroll`]) and the rule for
//! repeated log lines ([`log_throttle`]).
//!
//! It holds no process logic and no model: the recorder depends on it alone
//! (with `env` for its benchmark), so it builds on a laptop without PyTorch.

pub mod args;
pub mod array;
pub mod auth;
pub mod checkpoint;
pub mod config;
pub mod connections;
pub mod error;
pub mod events;
pub mod fixtures;
pub mod layout;
pub mod log_throttle;
pub mod private;
pub mod protocol;
pub mod run_key;
pub mod rundir;
pub mod seal;
pub mod transport;
pub mod unroll;
