//! The run directory `runs/<xpid>/` (docs/architecture.md, The run directory)
//! and its `endpoints.json`.
//!
//! The run id that every message carries is the xpid, so processes of two runs
//! that share a host or a cluster never mix.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Paths inside one run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
    xpid: String,
}

impl RunDir {
    /// `runs_root/xpid`. The xpid must be a plain name (it is the run id on the wire).
    pub fn new(runs_root: &Path, xpid: &str) -> Result<Self, String> {
        if xpid.is_empty()
            || !xpid.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || xpid.starts_with('.')
        {
            return Err(format!(
                "xpid {xpid:?} must be a plain name of letters, digits, '-', '_' and '.'"
            ));
        }
        Ok(RunDir { root: runs_root.join(xpid), xpid: xpid.to_owned() })
    }

    /// The run id carried by every message.
    pub fn xpid(&self) -> &str {
        &self.xpid
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Creates the run directory with its `checkpoints/` and `sock/`, all
    /// 0700 whatever the umask (and made so if they existed already).
    pub fn create(&self) -> std::io::Result<()> {
        for dir in [self.root.clone(), self.checkpoints(), self.sockets()] {
            crate::private::private_dir(&dir)?;
        }
        Ok(())
    }
    pub fn sockets(&self) -> PathBuf {
        self.root.join("sock")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    pub fn endpoints(&self) -> PathBuf {
        self.root.join("endpoints.json")
    }
    pub fn logs_csv(&self) -> PathBuf {
        self.root.join("logs.csv")
    }
    pub fn meta_json(&self) -> PathBuf {
        self.root.join("meta.json")
    }
    /// The default `ipc://` address of socket `name` on this host.
    pub fn ipc(&self, name: &str) -> String {
        let path = self.sockets().join(name);
        let path = std::path::absolute(&path).unwrap_or(path);
        format!("ipc://{}", path.display())
    }
}

/// Why a learner session ended, as `meta.json`'s `end_reason` records it.
/// Launchers decide from it whether to requeue a job (`learner end-reason`
/// prints it), so it is a closed set, not free text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndReason {
    /// The run learned from its `--total-frames`: it is finished.
    #[serde(rename = "total frames reached")]
    TotalFramesReached,
    /// Ctrl-C, SIGTERM or SLURM's time limit: the run can be resumed.
    #[serde(rename = "interrupted")]
    Interrupted,
    /// A part of the learner died (meta.json's `failure` says which and why):
    /// the learner exits non-zero; the run can be resumed once that is fixed.
    #[serde(rename = "failed")]
    Failed,
}

impl EndReason {
    /// The words `meta.json` holds.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::TotalFramesReached => "total frames reached",
            EndReason::Interrupted => "interrupted",
            EndReason::Failed => "failed",
        }
    }
    /// One word for scripts: `total-frames-reached`, `interrupted` or `failed`.
    pub fn as_word(self) -> &'static str {
        match self {
            EndReason::TotalFramesReached => "total-frames-reached",
            EndReason::Interrupted => "interrupted",
            EndReason::Failed => "failed",
        }
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RunDir {
    /// How the newest learner session of this run ended: `None` while it runs,
    /// before a learner ever started, or for a session killed with no chance
    /// to write it. An unreadable `meta.json` is an error naming the file.
    pub fn end_reason(&self) -> Result<Option<EndReason>, String> {
        #[derive(Deserialize)]
        struct Meta {
            #[serde(default)]
            end_reason: Option<EndReason>,
        }
        let path = self.meta_json();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let meta: Meta = serde_json::from_slice(&bytes).map_err(|e| {
            format!("{} is not a learner's meta.json ({e}): was it edited by hand?", path.display())
        })?;
        Ok(meta.end_reason)
    }
}

/// Addresses the learner and recorder bound, as written to `endpoints.json`.
/// Each process rewrites only its own entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trajectories: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episodes: Option<String>,
    /// The learner's central-inference socket, when it serves inference
    /// (actors with `--inference auto` then act through it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference: Option<String>,
}

impl Endpoints {
    /// Reads `endpoints.json`; a missing file is an empty set.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Endpoints::default()),
            Err(e) => Err(e),
        }
    }

    /// Merges `update` into the file (write-then-rename, so a reader on another
    /// node never sees half a file). Fields `update` leaves empty are kept.
    pub fn merge_into(path: &Path, update: &Endpoints) -> std::io::Result<()> {
        // Learner and recorder may start at the same moment: serialize the
        // read-modify-rename so neither loses the other's entry.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.with_extension("json.lock"))?;
        lock.lock()?;
        let mut current = Self::read(path).unwrap_or_default();
        if update.trajectories.is_some() {
            current.trajectories.clone_from(&update.trajectories);
        }
        if update.params.is_some() {
            current.params.clone_from(&update.params);
            // The learner writes its whole set: a learner restarted without
            // central inference must not leave its predecessor's address.
            current.inference.clone_from(&update.inference);
        }
        if update.episodes.is_some() {
            current.episodes.clone_from(&update.episodes);
        }
        let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&current)?)?;
        std::fs::rename(&tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_reason_reads_what_the_learner_writes() {
        let root = tempfile::tempdir().unwrap();
        let run = RunDir::new(root.path(), "r").unwrap();
        assert_eq!(run.end_reason(), Ok(None), "no meta.json yet");
        std::fs::create_dir_all(run.root()).unwrap();
        for (json, expected) in [
            (r#"{"end_reason": null}"#.to_string(), None),
            ("{}".to_string(), None),
            (
                serde_json::json!({"x": {"end_reason": "deeper"}, "end_reason": "total frames reached"})
                    .to_string(),
                Some(EndReason::TotalFramesReached),
            ),
            (serde_json::json!({ "end_reason": EndReason::Interrupted }).to_string(), Some(EndReason::Interrupted)),
        ] {
            std::fs::write(run.meta_json(), &json).unwrap();
            assert_eq!(run.end_reason(), Ok(expected), "{json}");
        }
        for bad in [r#"{"end_reason": "bored"}"#, "{not json"] {
            std::fs::write(run.meta_json(), bad).unwrap();
            let err = run.end_reason().unwrap_err();
            assert!(err.contains("meta.json"), "{err}");
        }
    }

    #[test]
    fn xpid_must_be_a_plain_name() {
        assert!(RunDir::new(Path::new("runs"), "seaquest-1").is_ok());
        assert!(RunDir::new(Path::new("runs"), "../etc").is_err());
        assert!(RunDir::new(Path::new("runs"), "").is_err());
        assert!(RunDir::new(Path::new("runs"), "a/b").is_err());
    }

    #[test]
    fn endpoints_merge_keeps_other_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("endpoints.json");
        let learner = Endpoints {
            trajectories: Some("ipc:///t".into()),
            params: Some("ipc:///p".into()),
            episodes: None,
            inference: Some("ipc:///i".into()),
        };
        Endpoints::merge_into(&path, &learner).unwrap();
        let recorder = Endpoints { episodes: Some("ipc:///e".into()), ..Default::default() };
        Endpoints::merge_into(&path, &recorder).unwrap();
        let read = Endpoints::read(&path).unwrap();
        assert_eq!(read.trajectories.as_deref(), Some("ipc:///t"));
        assert_eq!(read.episodes.as_deref(), Some("ipc:///e"));
        assert_eq!(read.inference.as_deref(), Some("ipc:///i"));
        // A learner restarted without central inference clears its address.
        let plain = Endpoints { inference: None, ..learner };
        Endpoints::merge_into(&path, &plain).unwrap();
        let read = Endpoints::read(&path).unwrap();
        assert_eq!(read.inference, None);
        assert_eq!(read.episodes.as_deref(), Some("ipc:///e"));
        assert_eq!(
            Endpoints::read(&dir.path().join("missing.json")).unwrap(),
            Endpoints::default()
        );
    }

    #[test]
    fn concurrent_merges_lose_no_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("endpoints.json");
        for round in 0..20 {
            let writers: Vec<_> = (0..3)
                .map(|i| {
                    let path = path.clone();
                    std::thread::spawn(move || {
                        let value = Some(format!("ipc:///{round}/{i}"));
                        let update = match i {
                            0 => Endpoints { trajectories: value, ..Default::default() },
                            1 => Endpoints { params: value, ..Default::default() },
                            _ => Endpoints { episodes: value, ..Default::default() },
                        };
                        Endpoints::merge_into(&path, &update).unwrap();
                    })
                })
                .collect();
            writers.into_iter().for_each(|w| w.join().unwrap());
            let read = Endpoints::read(&path).unwrap();
            assert_eq!(read.trajectories, Some(format!("ipc:///{round}/0")));
            assert_eq!(read.params, Some(format!("ipc:///{round}/1")));
            assert_eq!(read.episodes, Some(format!("ipc:///{round}/2")));
        }
    }
}
