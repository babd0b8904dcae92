//! Who may speak for a run, and how each socket keeps everyone else out.
//!
//! Each run has a secret key, 256 random bits in `<run dir>/run.key` (hex,
//! mode 600), created by whichever process creates the run directory first.
//! A process that can read it speaks for the run ([`Credentials`]); each of
//! its sockets guards its messages as its address allows ([`Channel`]):
//!
//! - On `ipc://` the operating system keeps others out ([`Guard::Os`]): the
//!   socket is bound only in a directory that belongs to the user and that no
//!   one else may enter (`crate::private`), so only the user's own processes,
//!   which can read the key anyway, can connect. Messages go as they are and
//!   cost nothing to guard.
//! - On tcp, loopback included, every message is sealed ([`Guard::Sealed`],
//!   `crate::seal`): encrypted and authenticated under keys derived from the
//!   run key, never taken twice, and, where the receiver asks for it, never
//!   taken when sealed before the receiver started.
//!
//! `docs/reliability.md` has the threat model.

use std::path::Path;
use std::sync::Arc;

use crate::protocol::ProtocolError;
pub use crate::run_key::{AuthError, RunKey, KEY_FILE};
use crate::rundir::RunDir;
use crate::seal::{End, SealId, Sealing, Service, HEADER_BYTES, OVERHEAD};

/// What a process needs to speak for its run: the run id every message names
/// and the key its sockets seal with. The sockets take this, so a socket
/// without a key cannot be made.
#[derive(Clone, Debug)]
pub struct Credentials {
    run: String,
    key: RunKey,
    /// Refuse sealed messages sealed before this (microseconds since the
    /// Unix epoch).
    not_before_us: Option<u64>,
}

impl Credentials {
    pub fn new(run: impl Into<String>, key: RunKey) -> Self {
        Credentials { run: run.into(), key, not_before_us: None }
    }

    /// The run directory's id and key (the key is created if the run has none).
    pub fn of(run_dir: &RunDir) -> Result<Self, AuthError> {
        Ok(Credentials::new(run_dir.xpid(), RunKey::load_or_create(run_dir.root())?))
    }

    /// A run id with a fresh random key: for tests and benchmarks whose
    /// processes share memory rather than a run directory.
    pub fn ephemeral(run: impl Into<String>) -> Self {
        Credentials::new(run, RunKey::random())
    }

    /// These credentials, with every socket made from them refusing sealed
    /// messages sealed before `start` ([`ProtocolError::Stale`]). A learner
    /// passes its start: when it was resumed, nothing of the session before
    /// (a replay of a captured message included) is taken.
    pub fn refusing_sealed_before(mut self, start: std::time::SystemTime) -> Self {
        self.not_before_us = Some(crate::seal::unix_micros(start));
        self
    }

    pub fn run(&self) -> &str {
        &self.run
    }

    /// A socket's guard at `address`, held at `end` of a `service` socket: the operating system's
    /// ([`Guard::Os`]) on `ipc://` in a private directory (made private if it
    /// is new), sealing on anything else. Both ends of a socket decide from
    /// the same address, so they agree. An ipc address in a directory others
    /// may enter is an error: the run would be open to them. Each call makes
    /// a new sender (its own id, key and counter).
    pub fn for_address(
        &self,
        address: &str,
        end: End,
        service: Service,
    ) -> Result<Channel, crate::private::NotPrivate> {
        let guard = match address.strip_prefix("ipc://") {
            None => Guard::Sealed(Arc::new(Sealing::new(
                self.key.clone(),
                end,
                service,
                self.not_before_us,
            ))),
            Some(path) => {
                crate::private::socket_dir(Path::new(path))?;
                Guard::Os
            }
        };
        Ok(Channel { run: self.run.clone(), guard })
    }
}

/// Who keeps strangers' messages out on a socket.
#[derive(Clone, Debug)]
pub enum Guard {
    /// The operating system: the socket lives in a directory only this user
    /// may enter (ipc, checked by [`crate::private::check_private`]), so
    /// only the user's own processes, which can read the key anyway, can
    /// connect. Messages go as they are.
    Os,
    /// Sealing (tcp): every message encrypted and authenticated, taken once.
    Sealed(Arc<Sealing>),
}

/// One socket end's credentials: the run id, and the guard its address
/// calls for ([`Credentials::for_address`]).
#[derive(Clone, Debug)]
pub struct Channel {
    run: String,
    guard: Guard,
}

impl Channel {
    pub fn run(&self) -> &str {
        &self.run
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// What a message starts with before its plaintext is written: room
    /// for the header sealing writes (nothing under [`Guard::Os`]).
    pub fn header_room(&self) -> &'static [u8] {
        const ROOM: [u8; HEADER_BYTES] = [0; HEADER_BYTES];
        match self.guard {
            Guard::Os => &[],
            Guard::Sealed(_) => &ROOM,
        }
    }

    /// Bytes sealing adds to a message (0 under [`Guard::Os`]).
    pub fn overhead(&self) -> usize {
        match self.guard {
            Guard::Os => 0,
            Guard::Sealed(_) => OVERHEAD,
        }
    }

    /// Seals `buffer` (its [`Channel::header_room`], then the plaintext) in
    /// place and appends the tag; returns the message's id. Under
    /// [`Guard::Os`] the buffer stays as it is and there is no id. A reply
    /// passes the id of the request it answers. The one sealing step of
    /// every message: nng messages, byte vectors.
    pub fn seal_buffer<B>(&self, buffer: &mut B, reply_to: Option<&SealId>) -> Option<SealId>
    where
        B: std::ops::DerefMut<Target = [u8]> + for<'a> Extend<&'a u8>,
    {
        let Guard::Sealed(sealing) = &self.guard else { return None };
        let (tag, id) = sealing.seal_in_place(buffer, reply_to);
        buffer.extend(&tag);
        Some(id)
    }

    /// `plain` sealed, as bytes, with its id (`None` under [`Guard::Os`],
    /// where the bytes are `plain`).
    pub fn seal(&self, plain: &[u8], reply_to: Option<&SealId>) -> (Vec<u8>, Option<SealId>) {
        let mut framed = Vec::with_capacity(plain.len() + self.overhead());
        framed.extend_from_slice(self.header_room());
        framed.extend_from_slice(plain);
        let id = self.seal_buffer(&mut framed, reply_to);
        (framed, id)
    }

    /// The plaintext of `sealed`, opened in place, and its id; under
    /// [`Guard::Os`], the bytes as they came. A dialer passes the id of the
    /// request it waits on (`answering`).
    pub fn open<'a>(
        &self,
        sealed: &'a mut [u8],
        answering: Option<&SealId>,
    ) -> Result<(&'a [u8], Option<SealId>), ProtocolError> {
        match &self.guard {
            Guard::Os => Ok((sealed, None)),
            Guard::Sealed(sealing) => {
                sealing.open(sealed, answering).map(|(plain, id)| (plain, Some(id)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ipc in a private directory goes as it is; tcp is sealed, and a
    /// sealed message opens at the other end only, once.
    #[test]
    fn tcp_is_sealed_and_private_ipc_is_not() {
        let creds = Credentials::ephemeral("run");
        let dir = tempfile::tempdir().unwrap();
        let ipc = format!("ipc://{}/socket", dir.path().join("sock").display());
        let os = creds.for_address(&ipc, End::Dialer, Service::Stream).unwrap();
        assert!(matches!(os.guard(), Guard::Os));
        assert_eq!(os.seal(b"frames", None), (b"frames".to_vec(), None));
        let tcp = "tcp://127.0.0.1:5555";
        let actor = creds.for_address(tcp, End::Dialer, Service::Stream).unwrap();
        let learner = creds.for_address(tcp, End::Listener, Service::Stream).unwrap();
        let (mut sealed, id) = actor.seal(b"frames", None);
        assert_eq!(sealed.len(), 6 + OVERHEAD);
        let mut copy = sealed.clone();
        assert_eq!(learner.open(&mut sealed, None).unwrap(), (&b"frames"[..], id));
        assert_eq!(learner.open(&mut copy, None), Err(ProtocolError::Replayed));
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let creds = Credentials::new("run", RunKey::from_bytes([0xab; 32]));
        assert!(!format!("{creds:?}").contains("ab"), "{creds:?}");
        let channel = creds.for_address("tcp://127.0.0.1:1", End::Dialer, Service::Stream).unwrap();
        assert!(!format!("{channel:?}").contains("ab"), "{channel:?}");
    }
}
