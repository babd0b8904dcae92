//! A run's files and sockets kept to their owner, whatever the umask
//! (docs/reliability.md, Threat model): the run directory, its
//! `checkpoints/` and `sock/` are 0700, the files the processes write in it
//! 0600, and an ipc socket is only bound or dialled in a directory that
//! belongs to the user and that no one else may enter, so that the
//! operating system keeps other users from connecting.

use std::path::{Path, PathBuf};

/// Why a directory is not private enough for a run's sockets.
#[derive(Debug, thiserror::Error)]
pub enum NotPrivate {
    #[error("cannot check {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} belongs to uid {owner}, not to this user (uid {me}): another user could replace \
         the run's sockets; use a directory of your own",
        path.display()
    )]
    Owner { path: PathBuf, owner: u32, me: u32 },
    #[error(
        "{} has mode {mode:o}: other users may enter it and connect to the run's sockets; \
         chmod 700 {} (or put the sockets in a directory only you can enter)",
        path.display(),
        path.display()
    )]
    Open { path: PathBuf, mode: u32 },
}

/// From now on, files this process creates are its user's alone (0600, and
/// directories 0700), whatever umask it was started with: the run's
/// checkpoints, logs, episodes and ipc socket files. The processes of a run
/// call it first thing.
pub fn restrict_umask() {
    #[cfg(unix)]
    // SAFETY: umask only swaps the process's file-mode mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` (and its parents) if needed and makes it 0700.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Checks that `dir` belongs to this user and that nobody else may enter
/// or list it (mode `& 0o077 == 0`).
pub fn check_private(dir: &Path) -> Result<(), NotPrivate> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(dir)
            .map_err(|source| NotPrivate::Io { path: dir.to_owned(), source })?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(NotPrivate::Owner { path: dir.to_owned(), owner: meta.uid(), me });
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(NotPrivate::Open { path: dir.to_owned(), mode });
        }
    }
    Ok(())
}

/// The directory of an ipc socket at `socket`: made private if it does not
/// exist yet, then checked ([`check_private`]). A path without a directory
/// part is the working directory's business.
pub fn socket_dir(socket: &Path) -> Result<(), NotPrivate> {
    let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if !dir.exists() {
        private_dir(dir).map_err(|source| NotPrivate::Io { path: dir.to_owned(), source })?;
    }
    check_private(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_private_dir_is_0700_and_passes_and_an_open_one_is_refused_with_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o775)).unwrap();
        let err = check_private(&dir).unwrap_err().to_string();
        assert!(err.contains("775") && err.contains("chmod 700"), "{err}");
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        check_private(&dir).unwrap();
        let missing = check_private(&tmp.path().join("none")).unwrap_err();
        assert!(matches!(missing, NotPrivate::Io { .. }), "{missing}");
    }
}
