//! Checkpoints on disk, and the one way to find a good one.
//!
//! `runs/<xpid>/checkpoints/ckpt-<step, 12 digits>/` is a directory holding
//!
//! - `model.safetensors`: the weights exactly as `Model::to_safetensors` writes
//!   them (config and fingerprint in the metadata), so the actor, the recorder
//!   and Python's `safetensors` read them as they are;
//! - `optimizer.safetensors`: the learner's optimizer state;
//! - `manifest.json`: counters, the learner's config, the model config, and the
//!   length and FNV-1a hash of each file above.
//!
//! The learner writes them (`learner/src/checkpoint.rs`). Whoever reads one,
//! the learner on `--resume` or the actor in `--eval`, goes through
//! [`verify`]: every file's length and hash is checked against the manifest
//! before any byte is used. [`newest_verified`] finds the newest checkpoint
//! that verifies, by step number, never by sorting names: a damaged
//! checkpoint set aside as `ckpt-<step>.damaged` or a writer's hidden
//! `.tmp-ckpt-*` directory is not a checkpoint at all, and a damaged
//! `ckpt-<step>` is skipped for the next older one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;

/// Name prefix of a checkpoint directory; the step number follows.
pub const PREFIX: &str = "ckpt-";
/// The manifest format this code reads and writes.
pub const FORMAT: u32 = 1;
pub const MODEL_FILE: &str = "model.safetensors";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const MANIFEST_FILE: &str = "manifest.json";

/// The learner's progress; everything `--resume` needs besides the tensors.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Updates done (learner steps).
    pub step: u64,
    /// Agent steps learned from (T * B per update).
    pub agent_steps: u64,
    /// Environment frames learned from (agent steps * action repeat): the
    /// learning-rate schedule and `--total-frames` count these.
    pub frames: u64,
    /// Version of the newest weights: 1 for the initial weights, +1 per update
    /// (0 is "none" in a params request).
    pub version: u64,
    /// Episodes finished in the trajectories learned from.
    pub episodes: u64,
    /// Seconds spent training, over all sessions of the run.
    pub train_seconds: f64,
}

/// One file of a checkpoint as the manifest records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub fnv1a64: String,
}

impl FileEntry {
    /// The entry for `bytes` written as `name`.
    pub fn of(name: &str, bytes: &[u8]) -> Self {
        FileEntry { name: name.into(), bytes: bytes.len() as u64, fnv1a64: fnv1a64(bytes) }
    }
}

/// `manifest.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub counters: Counters,
    pub learner_config: serde_json::Value,
    pub model_config: ModelConfig,
    pub fingerprint: String,
    pub files: Vec<FileEntry>,
}

/// Why a checkpoint cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot parse {path}: {source}")]
    Manifest { path: PathBuf, source: serde_json::Error },
    #[error("{path}: checkpoint format {found} (this build reads {FORMAT})")]
    Format { path: PathBuf, found: u32 },
    #[error(
        "{path} is damaged: {bytes} bytes (hash {hash}), the manifest says {expected_bytes} \
         bytes (hash {expected_hash})"
    )]
    Damaged { path: PathBuf, bytes: u64, hash: String, expected_bytes: u64, expected_hash: String },
    #[error("{path} lists no {name}")]
    Missing { path: PathBuf, name: String },
    #[error("none of the {count} checkpoints in {dir} verifies (see the warnings above)")]
    NoneVerifies { dir: PathBuf, count: usize },
    #[error("no checkpoint (ckpt-<step>/ with {MANIFEST_FILE}) in {dir}")]
    NoCheckpoint { dir: PathBuf },
}

/// The 64-bit FNV-1a hash of `bytes`, as 16 hex digits.
pub fn fnv1a64(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The step of a checkpoint directory's name (`ckpt-000000000020` -> 20);
/// None for anything else (`ckpt-000000000030.damaged`, `.tmp-ckpt-...`).
pub fn step_of(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// Checkpoint directories in `dir`, newest (highest step) first.
pub fn list(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let step = step_of(e.file_name().to_str()?)?;
            e.path().is_dir().then_some((step, e.path()))
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found
}

/// A checkpoint whose files all match its manifest, read into memory.
#[derive(Debug)]
pub struct Verified {
    pub path: PathBuf,
    pub manifest: Manifest,
    files: HashMap<String, Vec<u8>>,
}

impl Verified {
    /// The verified bytes of `name` (e.g. [`MODEL_FILE`]), taken out.
    pub fn take(&mut self, name: &str) -> Result<Vec<u8>, CheckpointError> {
        self.files
            .remove(name)
            .ok_or_else(|| CheckpointError::Missing { path: self.path.clone(), name: name.into() })
    }
}

/// Reads one checkpoint directory and checks every file it lists.
pub fn verify(path: &Path) -> Result<Verified, CheckpointError> {
    let read = |file: &Path| {
        std::fs::read(file).map_err(|source| CheckpointError::Read { path: file.into(), source })
    };
    let manifest_path = path.join(MANIFEST_FILE);
    let manifest: Manifest = serde_json::from_slice(&read(&manifest_path)?)
        .map_err(|source| CheckpointError::Manifest { path: manifest_path.clone(), source })?;
    if manifest.format != FORMAT {
        return Err(CheckpointError::Format { path: path.into(), found: manifest.format });
    }
    let mut files = HashMap::new();
    for entry in &manifest.files {
        let file = path.join(&entry.name);
        let bytes = read(&file)?;
        let actual = FileEntry::of(&entry.name, &bytes);
        if actual != *entry {
            return Err(CheckpointError::Damaged {
                path: file,
                bytes: actual.bytes,
                hash: actual.fnv1a64,
                expected_bytes: entry.bytes,
                expected_hash: entry.fnv1a64.clone(),
            });
        }
        files.insert(entry.name.clone(), bytes);
    }
    Ok(Verified { path: path.into(), manifest, files })
}

/// The newest checkpoint that verifies, and the newer ones that did not (each
/// with why), so the caller can warn, and the learner set them aside.
#[derive(Debug)]
pub struct Newest {
    pub verified: Verified,
    pub damaged: Vec<(PathBuf, CheckpointError)>,
}

/// The newest checkpoint in `dir` that verifies; older ones are tried when a
/// newer one is damaged. `Ok(None)` when there is no checkpoint at all; an
/// error when checkpoints exist but none verifies.
pub fn newest_verified(dir: &Path) -> Result<Option<Newest>, CheckpointError> {
    let found = list(dir);
    let count = found.len();
    let mut damaged = Vec::new();
    for (_, path) in found {
        match verify(&path) {
            Ok(verified) => return Ok(Some(Newest { verified, damaged })),
            Err(e) => damaged.push((path, e)),
        }
    }
    if count == 0 {
        Ok(None)
    } else {
        for (path, e) in &damaged {
            tracing::warn!("skipping checkpoint {}: {e}", path.display());
        }
        Err(CheckpointError::NoneVerifies { dir: dir.into(), count })
    }
}

/// The model weights a user names with `--checkpoint`: a weights file as it
/// is, a checkpoint directory (verified), or a run directory or its
/// checkpoints directory, whose newest checkpoint that verifies is used
/// (damaged ones are skipped with a warning; `.damaged` and temporary
/// directories are not checkpoints). Returns the weights and the file they
/// came from.
pub fn model_weights(path: &Path) -> Result<(Vec<u8>, PathBuf), CheckpointError> {
    if path.is_file() {
        let bytes = std::fs::read(path)
            .map_err(|source| CheckpointError::Read { path: path.into(), source })?;
        return Ok((bytes, path.to_path_buf()));
    }
    let mut verified = if path.join(MANIFEST_FILE).is_file() {
        verify(path)?
    } else {
        let dir = if path.join("checkpoints").is_dir() {
            path.join("checkpoints")
        } else {
            path.to_path_buf()
        };
        let newest = newest_verified(&dir)?.ok_or(CheckpointError::NoCheckpoint { dir })?;
        for (damaged, e) in &newest.damaged {
            tracing::warn!("skipping checkpoint {}: {e}", damaged.display());
        }
        newest.verified
    };
    let weights = verified.take(MODEL_FILE)?;
    Ok((weights, verified.path.join(MODEL_FILE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint directory as the learner writes one, with made-up bytes.
    fn plant(dir: &Path, step: u64, name_suffix: &str) -> PathBuf {
        let path = dir.join(format!("{PREFIX}{step:012}{name_suffix}"));
        std::fs::create_dir_all(&path).unwrap();
        let model = format!("weights of step {step}").into_bytes();
        let optimizer = vec![step as u8; 64];
        std::fs::write(path.join(MODEL_FILE), &model).unwrap();
        std::fs::write(path.join(OPTIMIZER_FILE), &optimizer).unwrap();
        let manifest = Manifest {
            format: FORMAT,
            counters: Counters { step, ..Default::default() },
            learner_config: serde_json::json!({}),
            model_config: ModelConfig::small(3),
            fingerprint: ModelConfig::small(3).fingerprint(),
            files: vec![
                FileEntry::of(MODEL_FILE, &model),
                FileEntry::of(OPTIMIZER_FILE, &optimizer),
            ],
        };
        std::fs::write(path.join(MANIFEST_FILE), serde_json::to_vec(&manifest).unwrap()).unwrap();
        path
    }

    #[test]
    fn names_that_are_not_checkpoints_have_no_step() {
        assert_eq!(step_of("ckpt-000000000020"), Some(20));
        assert_eq!(step_of("ckpt-000000000030.damaged"), None);
        assert_eq!(step_of(".tmp-ckpt-000000000030-4242"), None);
        assert_eq!(step_of("ckpt-"), None);
        assert_eq!(step_of("ckpt-+5"), None);
    }

    /// Newer-looking directories that are not good checkpoints never win:
    /// one set aside as damaged, a writer's temporary one, and a damaged
    /// checkpoint under a checkpoint's own name.
    #[test]
    fn the_newest_verified_checkpoint_wins_over_newer_damaged_ones() {
        let dir = tempfile::tempdir().unwrap();
        plant(dir.path(), 10, "");
        let good = plant(dir.path(), 20, "");
        plant(dir.path(), 30, ".damaged");
        plant(dir.path(), 40, "");
        std::fs::create_dir(dir.path().join(".tmp-ckpt-000000000050-1")).unwrap();
        let damaged = dir.path().join("ckpt-000000000040");
        std::fs::write(damaged.join(MODEL_FILE), b"weights of step 41").unwrap();

        let mut newest = newest_verified(dir.path()).unwrap().unwrap();
        assert_eq!(newest.verified.path, good);
        assert_eq!(newest.verified.manifest.counters.step, 20);
        assert_eq!(newest.verified.take(MODEL_FILE).unwrap(), b"weights of step 20");
        assert_eq!(newest.damaged.len(), 1);
        assert_eq!(newest.damaged[0].0, damaged);
        assert!(matches!(newest.damaged[0].1, CheckpointError::Damaged { .. }));
    }

    #[test]
    fn every_kind_of_damage_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let path = plant(dir.path(), 1, "");
        assert!(verify(&path).is_ok());
        let model = std::fs::read(path.join(MODEL_FILE)).unwrap();
        let mut flipped = model.clone();
        flipped[3] ^= 1;
        for bytes in [&model[..model.len() - 1], &flipped[..], &[&model[..], b"x"].concat()[..]] {
            std::fs::write(path.join(MODEL_FILE), bytes).unwrap();
            assert!(matches!(verify(&path), Err(CheckpointError::Damaged { .. })));
        }
        std::fs::remove_file(path.join(MODEL_FILE)).unwrap();
        assert!(matches!(verify(&path), Err(CheckpointError::Read { .. })));
        std::fs::write(path.join(MANIFEST_FILE), b"{").unwrap();
        assert!(matches!(verify(&path), Err(CheckpointError::Manifest { .. })));
    }

    #[test]
    fn no_checkpoint_is_none_and_all_damaged_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(newest_verified(dir.path()).unwrap().is_none());
        assert!(newest_verified(&dir.path().join("missing")).unwrap().is_none());
        let path = plant(dir.path(), 5, "");
        std::fs::write(path.join(OPTIMIZER_FILE), b"").unwrap();
        let err = newest_verified(dir.path()).unwrap_err();
        assert!(matches!(err, CheckpointError::NoneVerifies { count: 1, .. }), "{err}");
    }
}
