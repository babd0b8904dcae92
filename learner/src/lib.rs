//! The learner: receives trajectories from any number of actors, learns from
//! batches of B unrolls with V-trace and RMSProp, serves the newest weights,
//! and owns the run's checkpoints and logs (docs/architecture.md: Processes,
//! V-trace and the loss, The run directory).
//!
//! The learner as a library: `main.rs` parses the command line and
//! dispatches; `learner bench` and the tests call the same functions. The
//! whole loop is [`training::train`], in phases ([`training`]):
//!
//! 1. bind the trajectory PULL and the params REP sockets, write their
//!    addresses to `<run dir>/endpoints.json`;
//! 2. receive threads ([`batcher`]) decode and validate trajectories, dropping
//!    and counting bad ones; an assembler thread stacks B of them into a
//!    time-major batch `[T+1, B, ...]`; bounded queues slow the actors down
//!    rather than buffer without end;
//! 3. per batch: forward over all T+1 steps from the stored initial recurrent
//!    states, the IMPALA loss with V-trace (`agent::vtrace`, rewards clipped
//!    to [-1, 1] there), backward, gradient-norm clipping, RMSProp with a
//!    learning rate decaying linearly to zero over `--total-frames`;
//! 4. publish the new weights to the params thread ([`params_service`]),
//!    append a row to `logs.csv` ([`metrics`]), checkpoint now and then
//!    ([`checkpoint`]);
//! 5. at `--total-frames` or on Ctrl-C / SIGTERM: a last checkpoint, exit 0;
//!    a service that died: a last checkpoint, the reason in `meta.json`, exit 1.

pub mod batcher;
pub mod bench;
pub mod checkpoint;
pub mod flags;
pub mod inference;
pub mod metrics;
pub mod optim;
pub mod params_service;
pub mod receive;
pub mod settings;
pub mod tensorboard;
pub mod training;
pub mod update;

pub use training::{train, Summary};
pub use update::{update, UpdateStats};
