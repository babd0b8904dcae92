//! Helpers for the end-to-end tests in `tests/tests/`: they start the real
//! `actor`, `learner` and `recorder` binaries from `target/release`.
//!
//! `scripts/test.sh` builds the binaries before it runs the tests; when you
//! run `cargo test -p tests` by hand, run `cargo build --release --bins` first.

use std::path::PathBuf;
use std::process::Child;

/// Path of a workspace binary next to the running test executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the binaries first (cargo build --release --bins; scripts/test.sh does it)",
        path.display()
    );
    path
}

/// A child process killed (and reaped) when the test ends, pass or fail.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}
