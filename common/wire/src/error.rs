//! Why a message was refused ([`ProtocolError`]): every failure to read or
//! check a message is one of these, never a panic.

use crate::layout::DType;

/// Why a message was refused. Callers tell the cases apart to count them.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProtocolError {
    #[error("cannot decode message: {0}")]
    Decode(String),
    #[error("message without this run's tag (the key in <run dir>/run.key): two runs share an address, or it was forged or altered in flight; dropped unread")]
    Unauthenticated,
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

pub(crate) type Result<T> = std::result::Result<T, ProtocolError>;
