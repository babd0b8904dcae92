//! Sealed messages: what travels over tcp, encrypted and authenticated.
//!
//! On tcp every message is sealed with an AEAD (AES-256-GCM where the CPU has
//! AES instructions, ChaCha20-Poly1305 otherwise; both from `ring`, which
//! measured fastest here, docs/performance.md). Nobody who cannot read the
//! run's key reads a message, forges one, or alters one unnoticed, and no
//! message is taken twice:
//!
//! - **Keys.** Each socket end, when it is made, picks a random 128-bit
//!   sender id. It seals under a key derived (BLAKE3's key derivation) from
//!   the run key, the algorithm, the direction (dialer to listener, or back),
//!   the kind of socket ([`Service`]) and that sender id. A message can
//!   therefore not be reflected back to its sender nor moved to another
//!   socket of the run, and no two sockets ever share a key.
//! - **Nonces.** The nonce is the sender's message counter, so under one key
//!   no nonce is ever used twice.
//! - **Replay.** A listener (learner, recorder) keeps, per sender, a window of
//!   the last [`WINDOW`] counters it took, and drops a message whose counter
//!   it has taken or that is older than the window ([`ProtocolError::Replayed`]).
//!   A reply (params, actions) is bound to the request it answers: the
//!   request's sender id and counter are part of the reply's authenticated
//!   data, so an old reply cannot answer a new request.
//! - **Restarts.** A message carries the time it was sealed (authenticated).
//!   A receiver may refuse everything sealed before it started
//!   ([`crate::auth::Credentials::refusing_sealed_before`]): a learner resumed
//!   with `--resume` has empty windows, and this is what keeps the old
//!   session's messages out ([`ProtocolError::Stale`]).
//!
//! The header (in clear, authenticated): algorithm (1 byte), sender id (16),
//! counter (8, little-endian), sealed-at time (8, microseconds since the Unix
//! epoch, little-endian). Then the ciphertext, then the 16-byte tag.
//!
//! On ipc in a private directory the operating system keeps others out
//! ([`crate::auth::Guard::Os`]) and none of this runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey};

use crate::protocol::ProtocolError;
use crate::run_key::RunKey;

/// Bytes of the header before the ciphertext.
pub const HEADER_BYTES: usize = 1 + 16 + 8 + 8;
/// Bytes of the AEAD tag after the ciphertext.
pub const TAG_BYTES: usize = 16;
/// What sealing adds to a message.
pub const OVERHEAD: usize = HEADER_BYTES + TAG_BYTES;
/// Counters a listener remembers per sender: a message more than this many
/// behind the newest of its sender is refused as a replay. NNG delivers one
/// sender's messages in order, so only a replay is ever that far behind.
pub const WINDOW: u64 = 128;

/// Which AEAD sealed a message (its header's first byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Aes256Gcm = 1,
    ChaCha20Poly1305 = 2,
}

impl Algorithm {
    /// AES-256-GCM where the CPU has AES and carry-less multiply
    /// instructions (then it is the faster of the two by far), ChaCha20-
    /// Poly1305 otherwise (constant-time and fast in software). A receiver
    /// opens either, so nodes of different CPUs talk.
    pub fn preferred() -> Self {
        #[cfg(target_arch = "x86_64")]
        let hardware_aes = std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq");
        #[cfg(target_arch = "aarch64")]
        let hardware_aes = std::arch::is_aarch64_feature_detected!("aes");
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        let hardware_aes = false;
        if hardware_aes {
            Algorithm::Aes256Gcm
        } else {
            Algorithm::ChaCha20Poly1305
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Algorithm::Aes256Gcm),
            2 => Some(Algorithm::ChaCha20Poly1305),
            _ => None,
        }
    }

    fn ring(self) -> &'static ring::aead::Algorithm {
        match self {
            Algorithm::Aes256Gcm => &ring::aead::AES_256_GCM,
            Algorithm::ChaCha20Poly1305 => &ring::aead::CHACHA20_POLY1305,
        }
    }
}

/// Which end of a socket a process holds: the listener binds (learner,
/// recorder), the dialer connects (actor). Each seals under the key of its
/// own direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum End {
    Listener,
    Dialer,
}

/// Which kind of socket a message travels on. Part of every key, so a
/// message sealed for one socket of the run opens on no other (an actor's
/// params request sent to the inference port cannot draw an answer that
/// would then open on the params socket).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// PUSH -> PULL: trajectories to the learner, episodes to the recorder.
    Stream = 1,
    /// REQ <-> REP: params requests and the weights.
    Params = 2,
    /// REQ <-> raw REP: central inference's observations and actions.
    Inference = 3,
}

/// Who sealed a message and its number among that sender's messages: what a
/// reply is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealId {
    sender: [u8; 16],
    counter: u64,
}

impl SealId {
    fn bytes(&self) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..16].copy_from_slice(&self.sender);
        out[16..].copy_from_slice(&self.counter.to_le_bytes());
        out
    }
}

/// Microseconds since the Unix epoch.
pub fn unix_micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The counters taken from one sender, newest `top - 1`, as a bitmap of the
/// last [`WINDOW`] (bit i: counter `top - 1 - i` taken).
#[derive(Default, Debug)]
struct Window {
    top: u64,
    seen: u128,
}

impl Window {
    /// Takes `counter` unless it was taken before or is older than the window.
    fn take(&mut self, counter: u64) -> bool {
        if counter >= self.top {
            let shift = counter - self.top + 1;
            self.seen = if shift >= WINDOW { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.top = counter + 1;
            return true;
        }
        let back = self.top - 1 - counter;
        if back >= WINDOW || self.seen >> back & 1 == 1 {
            return false;
        }
        self.seen |= 1 << back;
        true
    }
}

/// A sender heard from: its key (derived once) and its window.
struct Peer {
    key: Arc<LessSafeKey>,
    window: Window,
}

/// One socket end's sealing: its own sender id, key and counter, and the
/// peers it has opened messages from.
pub struct Sealing {
    run_key: RunKey,
    end: End,
    service: Service,
    me: [u8; 16],
    algorithm: Algorithm,
    key: LessSafeKey,
    counter: AtomicU64,
    not_before_us: Option<u64>,
    peers: Mutex<HashMap<(Algorithm, [u8; 16]), Peer>>,
}

impl std::fmt::Debug for Sealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealing")
            .field("end", &self.end)
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

/// The key `sender`, at `end` of a `service` socket, seals with under
/// `algorithm`.
fn derive(
    run_key: &RunKey,
    algorithm: Algorithm,
    end: End,
    service: Service,
    sender: &[u8; 16],
) -> LessSafeKey {
    // Fixed, distinct contexts (BLAKE3's rule for key derivation): one per
    // algorithm and direction, so no key serves two of them.
    let context = match (algorithm, end) {
        (Algorithm::Aes256Gcm, End::Listener) => {
            "attention-agents wire 2026-12-05 AES-256-GCM sealed by a listener"
        }
        (Algorithm::Aes256Gcm, End::Dialer) => {
            "attention-agents wire 2026-12-05 AES-256-GCM sealed by a dialer"
        }
        (Algorithm::ChaCha20Poly1305, End::Listener) => {
            "attention-agents wire 2026-12-05 ChaCha20-Poly1305 sealed by a listener"
        }
        (Algorithm::ChaCha20Poly1305, End::Dialer) => {
            "attention-agents wire 2026-12-05 ChaCha20-Poly1305 sealed by a dialer"
        }
    };
    let mut material = [0u8; 49];
    material[..32].copy_from_slice(run_key.bytes());
    material[32..48].copy_from_slice(sender);
    material[48] = service as u8;
    let key = blake3::derive_key(context, &material);
    LessSafeKey::new(UnboundKey::new(algorithm.ring(), &key).expect("a 32-byte key"))
}

fn nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[..8].copy_from_slice(&counter.to_le_bytes());
    Nonce::assume_unique_for_key(bytes)
}

/// The authenticated data: the header, and for a reply the request's id.
fn aad(header: &[u8], reply_to: Option<&SealId>) -> ([u8; HEADER_BYTES + 24], usize) {
    let mut out = [0u8; HEADER_BYTES + 24];
    out[..HEADER_BYTES].copy_from_slice(header);
    match reply_to {
        Some(id) => {
            out[HEADER_BYTES..].copy_from_slice(&id.bytes());
            (out, HEADER_BYTES + 24)
        }
        None => (out, HEADER_BYTES),
    }
}

impl Sealing {
    /// A new socket end: a fresh random sender id and a counter from 0.
    /// `not_before` (microseconds since the epoch): refuse messages sealed
    /// earlier.
    pub fn new(run_key: RunKey, end: End, service: Service, not_before_us: Option<u64>) -> Self {
        let mut me = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut me);
        let algorithm = Algorithm::preferred();
        Sealing {
            key: derive(&run_key, algorithm, end, service, &me),
            run_key,
            end,
            service,
            me,
            algorithm,
            counter: AtomicU64::new(0),
            not_before_us,
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// This end with `algorithm` instead of the preferred one (tests: both
    /// algorithms must open anywhere).
    pub fn with_algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self.key = derive(&self.run_key, algorithm, self.end, self.service, &self.me);
        self
    }

    /// Seals `framed[HEADER_BYTES..]` in place, writing the header into
    /// `framed[..HEADER_BYTES]`; returns the tag to append and the message's
    /// id. A reply passes the id of the request it answers.
    pub fn seal_in_place(
        &self,
        framed: &mut [u8],
        reply_to: Option<&SealId>,
    ) -> ([u8; TAG_BYTES], SealId) {
        let counter = self.counter.fetch_add(1, Ordering::Relaxed);
        assert!(counter < u64::MAX, "2^64 messages from one socket: its nonces are spent");
        let (header, body) = framed.split_at_mut(HEADER_BYTES);
        header[0] = self.algorithm as u8;
        header[1..17].copy_from_slice(&self.me);
        header[17..25].copy_from_slice(&counter.to_le_bytes());
        header[25..33].copy_from_slice(&unix_micros(SystemTime::now()).to_le_bytes());
        let (aad, len) = aad(header, reply_to);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(counter), Aad::from(&aad[..len]), body)
            .expect("sealing fails only for messages over 2^36 bytes");
        let mut out = [0u8; TAG_BYTES];
        out.copy_from_slice(tag.as_ref());
        (out, SealId { sender: self.me, counter })
    }

    /// Opens `sealed` in place and returns the plaintext and the message's
    /// id. A dialer passes the id of its request (`answering`): only a reply
    /// bound to it opens. A listener checks the sender's window and the
    /// sealed-at time instead.
    pub fn open<'a>(
        &self,
        sealed: &'a mut [u8],
        answering: Option<&SealId>,
    ) -> Result<(&'a [u8], SealId), ProtocolError> {
        if sealed.len() < OVERHEAD {
            return Err(ProtocolError::Unauthenticated);
        }
        let (header, body) = sealed.split_at_mut(HEADER_BYTES);
        let algorithm = Algorithm::from_byte(header[0]).ok_or(ProtocolError::Unauthenticated)?;
        let sender: [u8; 16] = header[1..17].try_into().expect("16 bytes");
        let counter = u64::from_le_bytes(header[17..25].try_into().expect("8 bytes"));
        let sealed_at = u64::from_le_bytes(header[25..33].try_into().expect("8 bytes"));
        let id = SealId { sender, counter };
        if counter == u64::MAX {
            // No sealer ever uses it (see `seal_in_place`); the window
            // arithmetic need not hold it.
            return Err(ProtocolError::Unauthenticated);
        }
        let theirs = match self.end {
            End::Listener => End::Dialer,
            End::Dialer => End::Listener,
        };
        // The key, derived once per sender. Nothing is judged before the
        // message is authenticated: a forgery is `Unauthenticated` whatever
        // counter it claims, and tells nothing of the window.
        let known = self.peers.lock().unwrap().get(&(algorithm, sender)).map(|p| p.key.clone());
        let key = known.unwrap_or_else(|| {
            Arc::new(derive(&self.run_key, algorithm, theirs, self.service, &sender))
        });
        let (aad, len) = aad(header, answering);
        let plain = key
            .open_in_place(nonce(counter), Aad::from(&aad[..len]), body)
            .map_err(|_| ProtocolError::Unauthenticated)?;
        if let Some(not_before) = self.not_before_us {
            if sealed_at < not_before {
                return Err(ProtocolError::Stale {
                    seconds: (not_before - sealed_at) as f64 / 1e6,
                });
            }
        }
        // Taken under the lock: of two copies opened at once, one passes.
        let mut peers = self.peers.lock().unwrap();
        let peer = peers
            .entry((algorithm, sender))
            .or_insert_with(|| Peer { key, window: Window::default() });
        if self.end == End::Listener && !peer.window.take(counter) {
            return Err(ProtocolError::Replayed);
        }
        Ok((plain, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(sealing: &Sealing, plain: &[u8], reply_to: Option<&SealId>) -> (Vec<u8>, SealId) {
        let mut framed = vec![0u8; HEADER_BYTES];
        framed.extend_from_slice(plain);
        let (tag, id) = sealing.seal_in_place(&mut framed, reply_to);
        framed.extend_from_slice(&tag);
        (framed, id)
    }

    fn open(
        sealing: &Sealing,
        bytes: &[u8],
        answering: Option<&SealId>,
    ) -> Result<Vec<u8>, ProtocolError> {
        let mut copy = bytes.to_vec();
        sealing.open(&mut copy, answering).map(|(plain, _)| plain.to_vec())
    }

    fn pair() -> (Sealing, Sealing) {
        let key = RunKey::random();
        (
            Sealing::new(key.clone(), End::Dialer, Service::Stream, None),
            Sealing::new(key, End::Listener, Service::Stream, None),
        )
    }

    #[test]
    fn a_message_opens_once_at_the_other_end_and_nowhere_else() {
        let (actor, learner) = pair();
        let (bytes, _) = sealed(&actor, b"a trajectory", None);
        assert_eq!(bytes.len(), 12 + OVERHEAD);
        assert!(
            !bytes.windows(12).any(|w| w == b"a trajectory"),
            "the plaintext is not on the wire"
        );
        assert_eq!(open(&learner, &bytes, None).unwrap(), b"a trajectory");
        assert_eq!(open(&learner, &bytes, None), Err(ProtocolError::Replayed), "taken once");
        // Reflected back to a dialer (its own direction's key): refused.
        assert_eq!(open(&actor, &bytes, None), Err(ProtocolError::Unauthenticated));
        // Another run's key: refused.
        let stranger = Sealing::new(RunKey::random(), End::Listener, Service::Stream, None);
        assert_eq!(open(&stranger, &bytes, None), Err(ProtocolError::Unauthenticated));
        assert_eq!(
            open(&learner, &bytes[..OVERHEAD - 1], None),
            Err(ProtocolError::Unauthenticated)
        );
    }

    /// A message sealed for one kind of socket opens on no other, and a
    /// forged header (the counter no sealer uses, a taken counter) is refused
    /// as unauthenticated, without a panic and without telling the window.
    #[test]
    fn a_message_opens_on_its_own_kind_of_socket_only_and_forged_headers_are_refused() {
        let key = RunKey::random();
        let actor = Sealing::new(key.clone(), End::Dialer, Service::Params, None);
        let params = Sealing::new(key.clone(), End::Listener, Service::Params, None);
        let inference = Sealing::new(key, End::Listener, Service::Inference, None);
        let (bytes, _) = sealed(&actor, b"params request", None);
        assert_eq!(open(&inference, &bytes, None), Err(ProtocolError::Unauthenticated));
        assert_eq!(open(&params, &bytes, None).unwrap(), b"params request");
        let mut forged = bytes.clone();
        forged[17..25].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(open(&params, &forged, None), Err(ProtocolError::Unauthenticated));
        let mut taken = bytes.clone();
        let last = taken.len() - 1;
        taken[last] ^= 1;
        assert_eq!(open(&params, &taken, None), Err(ProtocolError::Unauthenticated));
        assert_eq!(
            open(&params, &bytes, None),
            Err(ProtocolError::Replayed),
            "the real copy again"
        );
    }

    #[test]
    fn flipping_any_bit_of_a_sealed_message_is_caught() {
        let (actor, _) = pair();
        let (bytes, _) = sealed(&actor, &(0..100u8).collect::<Vec<_>>(), None);
        for i in 0..bytes.len() {
            for bit in [0x01, 0x80] {
                // A fresh listener each time, so no window hides a failure.
                let learner =
                    Sealing::new(actor.run_key.clone(), End::Listener, Service::Stream, None);
                let mut altered = bytes.clone();
                altered[i] ^= bit;
                assert!(open(&learner, &altered, None).is_err(), "byte {i} bit {bit:#x}");
            }
        }
    }

    /// A reply opens only as the answer to the request it is bound to.
    #[test]
    fn a_reply_answers_its_own_request_only() {
        let (actor, learner) = pair();
        let (first, first_id) = sealed(&actor, b"request 1", None);
        let (second, second_id) = sealed(&actor, b"request 2", None);
        for bytes in [&first, &second] {
            open(&learner, bytes, None).unwrap();
        }
        let (reply, _) = sealed(&learner, b"weights", Some(&first_id));
        assert_eq!(open(&actor, &reply, Some(&first_id)).unwrap(), b"weights");
        assert_eq!(open(&actor, &reply, Some(&second_id)), Err(ProtocolError::Unauthenticated));
        assert_eq!(open(&actor, &reply, None), Err(ProtocolError::Unauthenticated));
    }

    #[test]
    fn the_window_takes_each_counter_once_and_refuses_what_fell_out() {
        let mut w = Window::default();
        assert!(w.take(0) && !w.take(0));
        assert!(w.take(5) && w.take(3) && !w.take(3) && w.take(1) && !w.take(5));
        assert!(w.take(200), "a jump ahead");
        assert!(!w.take(200 - WINDOW), "fell out of the window");
        assert!(w.take(200 - WINDOW + 1) && !w.take(200 - WINDOW + 1));
        assert!(w.take(u64::MAX - 1));
    }

    #[test]
    fn messages_sealed_before_the_receiver_started_are_stale() {
        let key = RunKey::random();
        let actor = Sealing::new(key.clone(), End::Dialer, Service::Stream, None);
        let (old, _) = sealed(&actor, b"before", None);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let resumed =
            Sealing::new(key, End::Listener, Service::Stream, Some(unix_micros(SystemTime::now())));
        assert!(matches!(open(&resumed, &old, None), Err(ProtocolError::Stale { .. })));
        let (new, _) = sealed(&actor, b"after", None);
        assert_eq!(open(&resumed, &new, None).unwrap(), b"after");
    }

    #[test]
    fn either_algorithm_opens_anywhere() {
        for algorithm in [Algorithm::Aes256Gcm, Algorithm::ChaCha20Poly1305] {
            let (actor, learner) = pair();
            let actor = actor.with_algorithm(algorithm);
            let (bytes, _) = sealed(&actor, b"frames", None);
            assert_eq!(bytes[0], algorithm as u8);
            assert_eq!(open(&learner, &bytes, None).unwrap(), b"frames", "{algorithm:?}");
        }
    }

    /// Two copies of one message opened at once by two threads: one is taken.
    #[test]
    fn concurrent_copies_are_taken_once() {
        let (actor, learner) = pair();
        for _ in 0..200 {
            let (bytes, _) = sealed(&actor, &[7u8; 4096], None);
            let taken = std::thread::scope(|s| {
                let handles: Vec<_> =
                    (0..4).map(|_| s.spawn(|| open(&learner, &bytes, None).is_ok())).collect();
                handles.into_iter().map(|h| h.join().unwrap()).filter(|&ok| ok).count()
            });
            assert_eq!(taken, 1);
        }
    }
}
