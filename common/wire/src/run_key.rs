//! The run's secret key: 256 random bits in `<run dir>/run.key` (hex, mode
//! 600), created by whichever process creates the run directory first, and
//! refused when others may read it. Everything that keeps strangers out of a
//! run derives from it (`crate::auth`, `crate::seal`).

use std::io::Write;
use std::path::{Path, PathBuf};

/// Name of the key file inside the run directory.
pub const KEY_FILE: &str = "run.key";

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

    /// The key's bytes, for deriving the sealing keys (`crate::seal`).
    pub(crate) fn bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
