//! Why a message was refused ([`ProtocolError`]): every failure to read or
//! check a message is one of these, never a panic. Why a socket failed
//! ([`TransportError`]), and why a peer refused our request ([`Refusal`]).

use crate::layout::DType;

/// Why a message was refused. Callers tell the cases apart to count them.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProtocolError {
    #[error("cannot decode message: {0}")]
    Decode(String),
    #[error("message not sealed with this run's key (<run dir>/run.key): two runs share an address, or it was forged or altered in flight; dropped unread")]
    Unauthenticated,
    #[error("message taken before (replayed, or older than the sender's window); dropped")]
    Replayed,
    #[error("message sealed {seconds:.1} s before this process started: a replay of an old session's message, one an actor sent before a --resume, or a sender whose clock is behind (keep the nodes' clocks in sync); dropped")]
    Stale { seconds: f64 },
    #[error("the peer refused our message: {0}")]
    RefusedByPeer(Refusal),
    #[error("cannot encode message: {0}")]
    Encode(String),
    #[error("protocol version {got} differs from ours ({want}): run the same build of actor, learner and recorder")]
    WrongProtocol { got: u16, want: u16 },
    #[error("message of run {got:?} reached run {want:?}: two runs share an address; give each run its own run dir or ports")]
    WrongRun { got: String, want: String },
    #[error("expected a {want} message, got {got}")]
    UnexpectedBody { got: &'static str, want: &'static str },
    #[error("field {field}: dtype {got:?}, expected {want:?}")]
    DType { field: &'static str, got: DType, want: DType },
    #[error("field {field}: shape {got:?}, expected {want:?}")]
    Shape { field: &'static str, got: Vec<usize>, want: Vec<usize> },
    #[error("field {field}: {len} data bytes do not fill shape {shape:?} of {dtype:?}")]
    Length { field: &'static str, len: usize, shape: Vec<usize>, dtype: DType },
    #[error("field {field}: action {action} outside 0..{num_actions}")]
    ActionOutOfRange { field: &'static str, action: i64, num_actions: usize },
    #[error("field {field}: holds NaN or infinity")]
    NonFinite { field: &'static str },
    #[error("weights for architecture {got}, this process runs {want}: actor and learner need the same --preset and game")]
    Fingerprint { got: String, want: String },
    #[error("{0}")]
    Invalid(String),
}

/// Why a peer refused a request, as its one-byte refusal says (the answer a
/// REP socket owes to a request it could not take; it holds nothing else).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("it cannot open our messages: it holds another run's key (two runs share an address, or run.key differs between the nodes)")]
    Unreadable = 1,
    #[error("sealed before it started (it was restarted or resumed meanwhile); send again")]
    Stale = 2,
    #[error("it had taken this message before; send again")]
    Replayed = 3,
    #[error("it could not read our message: another run (two runs share an address) or another build (run the same build of actor, learner and recorder)")]
    Invalid = 4,
}

impl Refusal {
    /// The refusal for a request refused with `e`.
    pub fn of(e: &ProtocolError) -> Self {
        match e {
            ProtocolError::Unauthenticated => Refusal::Unreadable,
            ProtocolError::Stale { .. } => Refusal::Stale,
            ProtocolError::Replayed => Refusal::Replayed,
            _ => Refusal::Invalid,
        }
    }

    /// The refusal a one-byte answer holds (anything unknown is `Invalid`).
    pub fn from_byte(byte: Option<u8>) -> Self {
        match byte {
            Some(1) => Refusal::Unreadable,
            Some(2) => Refusal::Stale,
            Some(3) => Refusal::Replayed,
            _ => Refusal::Invalid,
        }
    }

    /// Whether asking again can help: a stale or replayed request was the
    /// peer's restart or a lost answer; the others will be refused again.
    pub fn worth_retrying(self) -> bool {
        matches!(self, Refusal::Stale | Refusal::Replayed)
    }
}

/// Why a socket could not be made or used ([`crate::transport`]). A message
/// that arrived but was refused is a [`ProtocolError`] instead.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot {action} {address}: {source}")]
    Socket {
        action: &'static str,
        address: String,
        #[source]
        source: nng::Error,
    },
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    #[error("address {0:?} is not loopback: binding there exposes the run to the network; pass --allow-remote to do it on purpose")]
    NotLoopback(String),
    #[error("address {0:?} is neither ipc://<path> nor tcp://<host>:<port>")]
    BadAddress(String),
    #[error("the ipc socket's directory is not private: {0}")]
    NotPrivate(#[from] crate::private::NotPrivate),
    #[error("timed out")]
    TimedOut,
    #[error("socket closed")]
    Closed,
}

pub(crate) type Result<T> = std::result::Result<T, ProtocolError>;
