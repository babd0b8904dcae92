//! Messages that only the processes of their own run can make.
//!
//! Each run has a secret key, 256 random bits in `<run dir>/run.key` (hex,
//! mode 600), created by whichever process creates the run directory first.
//! Every message carries, after its bytes, a keyed BLAKE3 hash of them under
//! that key (the tag, [`TAG_BYTES`]); a receiver checks the tag before it
//! decodes anything, and a message whose tag does not match is counted and
//! dropped like any other bad message.
//!
//! What this protects against: forged messages (a process that can reach a
//! learner's or recorder's port, and knows the run id, which is no secret, but
//! cannot read the run directory) and messages altered in flight. What it
//! does not protect against: eavesdropping (frames and weights travel in
//! clear) and replay, within the same run, of messages seen on the wire.
//! `docs/reliability.md` has the threat model.
//!
//! On `ipc://` the operating system keeps others out instead ([`Guard::Os`]):
//! the socket is bound only in a directory that belongs to the user and that
//! no one else may enter (`crate::private`), so only the user's own
//! processes can connect, and those can read the key anyway; messages there
//! carry no tag and cost nothing to authenticate. On tcp, loopback included,
//! every message is tagged.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::rundir::RunDir;

/// Name of the key file inside the run directory.
pub const KEY_FILE: &str = "run.key";

/// Bytes of the tag appended to every message.
pub const TAG_BYTES: usize = blake3::OUT_LEN;

const KEY_BYTES: usize = blake3::KEY_LEN;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot {action} the run key {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the run key {} is not 64 hex digits: it was changed by hand or damaged; \
         stop every process of the run, delete the file and start them again \
         (a new key is made)",
        path.display()
    )]
    Malformed { path: PathBuf },
    #[error(
        "the run key {} can be read by other users (mode {mode:o}); make it the owner's \
         alone: chmod 600 {}",
        path.display(),
        path.display()
    )]
    TooOpen { path: PathBuf, mode: u32 },
}

/// A run's secret key. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct RunKey([u8; KEY_BYTES]);

impl std::fmt::Debug for RunKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunKey(..)")
    }
}

impl RunKey {
    /// 256 bits from the operating system's random source.
    pub fn random() -> Self {
        let mut key = [0u8; KEY_BYTES];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        RunKey(key)
    }

    pub fn from_bytes(key: [u8; KEY_BYTES]) -> Self {
        RunKey(key)
    }

    /// The key of the run directory `root`, created if there is none yet.
    ///
    /// Processes that start together (a SLURM array, `train-local.sh`) may all
    /// find no key: each writes a complete candidate to a file of its own and
    /// hard-links it to [`KEY_FILE`]. A link is made whole or not at all and
    /// never replaces an existing file, so exactly one candidate wins, every
    /// process reads that one, and no reader sees half a key.
    pub fn load_or_create(root: &Path) -> Result<Self, AuthError> {
        let path = root.join(KEY_FILE);
        match Self::load_file(&path) {
            Err(AuthError::Io { ref source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            other => return other,
        }
        let io = |action, source| AuthError::Io { action, path: path.clone(), source };
        std::fs::create_dir_all(root).map_err(|e| io("create the directory of", e))?;
        // A name no other call picks (64 random bits), so a call deletes only
        // the candidate it created itself.
        let suffix: u64 = rand::random();
        let candidate = root.join(format!(".{KEY_FILE}.{suffix:016x}"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&candidate).map_err(|e| io("create", e))?;
        let written = (|| {
            writeln!(file, "{}", hex(&Self::random().0))?;
            file.sync_all()?;
            match std::fs::hard_link(&candidate, &path) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
                _ => Ok(()),
            }
        })();
        let _ = std::fs::remove_file(&candidate);
        written.map_err(|e| io("create", e))?;
        Self::load_file(&path)
    }

    /// The key in `path`, refused when others may read it.
    pub fn load_file(path: &Path) -> Result<Self, AuthError> {
        let io = |action, source| AuthError::Io { action, path: path.to_owned(), source };
        let text = std::fs::read_to_string(path).map_err(|e| io("read", e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map_err(|e| io("read", e))?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(AuthError::TooOpen { path: path.to_owned(), mode: mode & 0o777 });
            }
        }
        let text = text.trim();
        let mut key = [0u8; KEY_BYTES];
        if text.len() != 2 * KEY_BYTES || !text.is_ascii() {
            return Err(AuthError::Malformed { path: path.to_owned() });
        }
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .map_err(|_| AuthError::Malformed { path: path.to_owned() })?;
        }
        Ok(RunKey(key))
    }

    /// The tag of `bytes`: their keyed BLAKE3 hash.
    pub fn tag(&self, bytes: &[u8]) -> [u8; TAG_BYTES] {
        *blake3::keyed_hash(&self.0, bytes).as_bytes()
    }

    /// Whether `tag` is the tag of `bytes`, compared in constant time
    /// (`blake3::Hash`'s equality), so timing tells a forger nothing.
    pub fn verify(&self, bytes: &[u8], tag: &[u8]) -> bool {
        let Ok(tag) = <[u8; TAG_BYTES]>::try_from(tag) else { return false };
        blake3::keyed_hash(&self.0, bytes) == blake3::Hash::from_bytes(tag)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a process needs to speak for its run: the run id every message names
/// and the key every message is tagged with. The sockets take this, so a
/// socket without a key cannot be made.
#[derive(Clone, Debug)]
pub struct Credentials {
    run: String,
    key: RunKey,
    guard: Guard,
}

/// Who keeps strangers' messages out on a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// The tag: every message carries it, every receiver checks it (tcp).
    Tag,
    /// The operating system: the socket lives in a directory only this user
    /// may enter (ipc, checked by [`crate::private::check_private`]), so
    /// only the user's own processes, which can read the key anyway, can
    /// connect. Messages carry no tag and cost nothing to authenticate.
    Os,
}

impl Credentials {
    pub fn new(run: impl Into<String>, key: RunKey) -> Self {
        Credentials { run: run.into(), key, guard: Guard::Tag }
    }

    /// These credentials for a socket at `address`: untagged ([`Guard::Os`])
    /// on `ipc://` in a private directory (made private if it is new),
    /// tagged on anything else. Both ends of a socket decide from the same
    /// address, so they agree. An ipc address in a directory others may
    /// enter is an error: the run would be open to them.
    pub fn for_address(&self, address: &str) -> Result<Self, crate::private::NotPrivate> {
        let guard = match address.strip_prefix("ipc://") {
            None => Guard::Tag,
            Some(path) => {
                crate::private::socket_dir(Path::new(path))?;
                Guard::Os
            }
        };
        Ok(Credentials { guard, ..self.clone() })
    }

    pub fn guard(&self) -> Guard {
        self.guard
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

    pub fn run(&self) -> &str {
        &self.run
    }

    pub fn key(&self) -> &RunKey {
        &self.key
    }

    /// `message` with its tag appended (as it is under [`Guard::Os`]).
    pub fn seal(&self, mut message: Vec<u8>) -> Vec<u8> {
        if self.guard == Guard::Tag {
            let tag = self.key.tag(&message);
            message.extend_from_slice(&tag);
        }
        message
    }

    /// The message without its tag, if the tag is this run's; `None` for a
    /// message too short to hold one or whose tag does not match. Under
    /// [`Guard::Os`], the message as it came.
    pub fn open<'a>(&self, sealed: &'a [u8]) -> Option<&'a [u8]> {
        if self.guard == Guard::Os {
            return Some(sealed);
        }
        let body = sealed.len().checked_sub(TAG_BYTES)?;
        let (message, tag) = sealed.split_at(body);
        self.key.verify(message, tag).then_some(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_message_opens_with_its_key_only() {
        let ours = Credentials::ephemeral("run");
        let sealed = ours.seal(b"a trajectory".to_vec());
        assert_eq!(sealed.len(), 12 + TAG_BYTES);
        assert_eq!(ours.open(&sealed), Some(&b"a trajectory"[..]));
        let forger = Credentials::ephemeral("run");
        assert_eq!(forger.open(&sealed), None, "same run id, another key");
        assert_eq!(ours.open(&sealed[..TAG_BYTES - 1]), None, "shorter than a tag");
        assert_eq!(ours.open(&[]), None);
    }

    #[test]
    fn flipping_any_bit_of_message_or_tag_is_caught() {
        let creds = Credentials::ephemeral("run");
        let sealed = creds.seal((0..200u8).collect());
        for i in 0..sealed.len() {
            for bit in [0x01, 0x80] {
                let mut altered = sealed.clone();
                altered[i] ^= bit;
                assert_eq!(creds.open(&altered), None, "byte {i} bit {bit:#x}");
            }
        }
    }

    #[test]
    fn the_key_file_is_the_owners_alone_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let key = RunKey::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = RunKey::load_or_create(dir.path()).unwrap_err();
            assert!(matches!(e, AuthError::TooOpen { .. }) && e.to_string().contains("chmod 600"));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(RunKey::load_or_create(dir.path()).unwrap(), key, "read, not made again");
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim().len(), 64);
        // No candidate files are left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(&path, "not a key\n").unwrap();
        assert!(matches!(RunKey::load_file(&path), Err(AuthError::Malformed { .. })));
    }

    /// Eight starters released at once, 1,000 times: every call succeeds and
    /// reads the one key. (With temporary names made of the process id and
    /// the clock, two threads could pick the same name, and the loser deleted
    /// the winner's candidate: both calls could fail.)
    #[test]
    fn processes_starting_together_agree_on_one_key() {
        for _ in 0..1000 {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("run");
            let start = std::sync::Barrier::new(8);
            let keys: Vec<RunKey> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            RunKey::load_or_create(&root).unwrap()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(keys.windows(2).all(|w| w[0] == w[1]), "every starter reads the winner's key");
            assert_eq!(std::fs::read_dir(&root).unwrap().count(), 1, "only run.key remains");
        }
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let creds = Credentials::new("run", RunKey::from_bytes([0xab; 32]));
        assert!(!format!("{creds:?}").contains("ab"), "{creds:?}");
    }
}
