//! Writing checkpoints, and loading one on `--resume`. The layout on disk, its
//! verification and the search for the newest good checkpoint are
//! `wire::checkpoint`'s, shared with the actor's `--eval`.
//!
//! A checkpoint is written into a hidden `.tmp-*` directory, synced, and
//! renamed into place in one step, so a crash leaves either the old set or the
//! new one. On `--resume` a damaged checkpoint is skipped with a warning and
//! the next older one is tried; once one verifies, the damaged newer ones are
//! renamed `<name>.damaged` (kept, never loaded). Only the newest `keep`
//! checkpoints stay. The optimizer state holds, for RMSProp,
//! `square_avg.<param>` and `momentum_buffer.<param>`; for Adam,
//! `exp_avg_sq.<param>` and `exp_avg.<param>`; for both, `step`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tch::{Device, Kind, Tensor};

use agent::model::Model;
pub use wire::checkpoint::{list, Counters};
use wire::checkpoint::{
    FileEntry, Manifest, FORMAT, MANIFEST_FILE, MODEL_FILE, OPTIMIZER_FILE, PREFIX,
};
use wire::config::ModelConfig;
use wire::rundir::RunDir;

use crate::flags::TrainArgs;
use crate::optim::Optimizer;

/// A verified checkpoint, read into memory.
pub struct Loaded {
    pub path: PathBuf,
    pub counters: Counters,
    pub learner_config: serde_json::Value,
    pub model_config: ModelConfig,
    model: Vec<u8>,
    optimizer: Vec<u8>,
}

impl Loaded {
    /// Copies weights and optimizer state into `model` and `opt`.
    pub fn apply(&self, model: &mut Model, opt: &mut Optimizer) -> Result<()> {
        model
            .load_safetensors(&self.model)
            .with_context(|| format!("loading weights of {}", self.path.display()))?;
        let file = SafeTensors::deserialize(&self.optimizer)
            .with_context(|| format!("reading optimizer state of {}", self.path.display()))?;
        let device = model.vs.device();
        opt.load_state(|name| {
            let view = file.tensor(name).ok()?;
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            (view.dtype() == Dtype::F32)
                .then(|| Tensor::f_from_data_size(view.data(), &shape, Kind::Float).ok())
                .flatten()
                .map(|t| t.to_device(device))
        })
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("loading optimizer state of {}", self.path.display()))
    }
}

/// Named f32 tensors as safetensors bytes.
fn tensors_to_safetensors(tensors: &[(String, Tensor)]) -> Result<Vec<u8>> {
    let mut buffers = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let t = t.detach().to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * 4];
        t.f_copy_data_u8(&mut bytes, numel)?;
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        buffers.push((name.as_str(), shape, bytes));
    }
    let views = buffers
        .iter()
        .map(|(name, shape, bytes)| Ok((*name, TensorView::new(Dtype::F32, shape.clone(), bytes)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    Ok(safetensors::serialize(views, &None)?)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes).with_context(|| format!("writing {}", path.display()))?;
    file.sync_all().with_context(|| format!("syncing {}", path.display()))?;
    Ok(())
}

/// Writes a checkpoint of `model`, `opt` and `counters` into `dir` and keeps
/// the newest `keep` (at least 1). Returns its path.
pub fn save(
    dir: &Path,
    model: &Model,
    opt: &Optimizer,
    counters: &Counters,
    learner_config: &serde_json::Value,
    keep: usize,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = format!("{PREFIX}{:012}", counters.step);
    let target = dir.join(&name);
    let tmp = dir.join(format!(".tmp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;

    let weights = model.to_safetensors().context("serializing weights")?;
    let optimizer = tensors_to_safetensors(&opt.state()).context("serializing optimizer state")?;
    let mut files = Vec::new();
    for (file, bytes) in [(MODEL_FILE, &weights), (OPTIMIZER_FILE, &optimizer)] {
        write_synced(&tmp.join(file), bytes)?;
        files.push(FileEntry::of(file, bytes));
    }
    let manifest = Manifest {
        format: FORMAT,
        counters: counters.clone(),
        learner_config: learner_config.clone(),
        model_config: model.cfg.clone(),
        fingerprint: model.cfg.fingerprint(),
        files,
    };
    write_synced(&tmp.join(MANIFEST_FILE), &serde_json::to_vec_pretty(&manifest)?)?;

    if target.exists() {
        // Same step written before (no update since): replace it.
        std::fs::remove_dir_all(&target)
            .with_context(|| format!("replacing {}", target.display()))?;
    }
    std::fs::rename(&tmp, &target)
        .with_context(|| format!("renaming {} to {}", tmp.display(), target.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    prune(dir, keep.max(1));
    Ok(target)
}

/// Removes all but the newest `keep` checkpoints, and temporary directories
/// that dead writers left behind.
fn prune(dir: &Path, keep: usize) {
    for (_, path) in list(dir).into_iter().skip(keep) {
        if let Err(e) = std::fs::remove_dir_all(&path) {
            tracing::warn!("cannot remove old checkpoint {}: {e}", path.display());
        }
    }
    let own = format!("-{}", std::process::id());
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") && !name.ends_with(&own) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn loaded(mut verified: wire::checkpoint::Verified) -> Result<Loaded> {
    Ok(Loaded {
        model: verified.take(MODEL_FILE)?,
        optimizer: verified.take(OPTIMIZER_FILE)?,
        path: verified.path,
        counters: verified.manifest.counters,
        learner_config: verified.manifest.learner_config,
        model_config: verified.manifest.model_config,
    })
}

/// Renames a damaged checkpoint directory to `<name>.damaged`, out of [`list`]'s sight.
fn set_aside(path: &Path) {
    let aside = path.with_extension("damaged");
    match std::fs::rename(path, &aside) {
        Ok(()) => tracing::warn!("damaged checkpoint moved to {}", aside.display()),
        Err(e) => tracing::warn!("cannot move damaged checkpoint {} aside: {e}", path.display()),
    }
}

/// The newest checkpoint in `dir` that verifies (`wire::checkpoint::newest_verified`).
/// The damaged ones newer than it go aside (renamed, not deleted): left in
/// place they would sort as the newest, and pruning would delete every fresh
/// checkpoint instead. `Ok(None)` when there is none at all; an error when
/// checkpoints exist but none verifies.
pub fn load_latest(dir: &Path) -> Result<Option<Loaded>> {
    let Some(newest) = wire::checkpoint::newest_verified(dir)? else {
        return Ok(None);
    };
    for (path, e) in &newest.damaged {
        tracing::warn!("skipping checkpoint {}: {e}", path.display());
        set_aside(path);
    }
    loaded(newest.verified).map(Some)
}

/// Settings that may change between sessions of a run without warning.
pub(crate) const FREE_ON_RESUME: &[&str] = &[
    "resume",
    "device",
    "precision",
    "threads",
    "queue_batches",
    "decode_threads",
    "max_message_bytes",
    "trajectories_address",
    "params_address",
    "inference",
    "inference_batch",
    "inference_wait_ms",
    "inference_idle_s",
    "inference_address",
    "allow_remote",
    "checkpoint_interval_s",
    "keep_checkpoints",
    "log_interval_s",
    "runs_root",
    "tensorboard",
];

/// Where a training session starts. With `--resume`: the newest checkpoint
/// that verifies, loaded into `model` and `opt`, refused if it is of another
/// architecture, with a warning per setting that changed (other than those
/// free to change); a fresh start when there is none. Without: a fresh start,
/// refused if the run already has checkpoints, so no run is overwritten by
/// accident. Returns the counters to go on from and the checkpoint resumed.
pub fn resume_or_start(
    run_dir: &RunDir,
    args: &TrainArgs,
    cfg: &ModelConfig,
    config_json: &serde_json::Value,
    model: &mut Model,
    opt: &mut Optimizer,
) -> Result<(Counters, Option<PathBuf>)> {
    // Version 0 means "none" in a ParamsRequest: the initial weights are version 1.
    let fresh = Counters { version: 1, ..Counters::default() };
    if !args.resume {
        if let Some((step, path)) = list(&run_dir.checkpoints()).first() {
            bail!(
                "run {} already has checkpoints (newest: {}, step {step}): pass --resume to \
                 continue it, or choose another --xpid",
                run_dir.xpid(),
                path.display()
            );
        }
        return Ok((fresh, None));
    }
    let Some(loaded) = load_latest(&run_dir.checkpoints())? else {
        tracing::warn!(
            "--resume: no checkpoint in {}, starting a new run",
            run_dir.checkpoints().display()
        );
        return Ok((fresh, None));
    };
    if &loaded.model_config != cfg {
        bail!(
            "checkpoint {} is of another architecture (preset/agent/game/action set) \
             than --preset {} --agent {} --game {}: resume with the run's own flags",
            loaded.path.display(),
            args.run.preset,
            args.run.agent,
            args.run.game
        );
    }
    for (key, new) in config_json.as_object().into_iter().flatten() {
        // A key the checkpoint lacks is a setting added since it was written.
        let Some(old) = loaded.learner_config.get(key.as_str()) else { continue };
        if !FREE_ON_RESUME.contains(&key.as_str()) && old != new {
            tracing::warn!("--resume: {key} was {old} in the checkpoint, now {new}");
        }
    }
    loaded.apply(model, opt)?;
    Ok((loaded.counters.clone(), Some(loaded.path.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::OptimizerConfig;

    fn model() -> Model {
        Model::new(ModelConfig::small(3), Device::Cpu)
    }

    #[test]
    fn save_load_roundtrip_keeps_weights_optimizer_and_counters() {
        let dir = tempfile::tempdir().unwrap();
        tch::manual_seed(1);
        let m = model();
        let cfg = OptimizerConfig::RmsProp { alpha: 0.99, eps: 0.01, momentum: 0.0 };
        let opt = Optimizer::new(&m.vs, cfg);
        // Give the optimizer a non-zero state.
        for (_, t) in opt.state() {
            let _ = t.shallow_clone().fill_(0.25);
        }
        let counters = Counters { step: 7, frames: 700, version: 7, ..Default::default() };
        let config = serde_json::json!({"learning_rate": 0.1});
        for step in 1..=5 {
            let c = Counters { step, ..counters.clone() };
            save(dir.path(), &m, &opt, &c, &config, 3).unwrap();
        }
        let steps: Vec<u64> = list(dir.path()).iter().map(|(s, _)| *s).collect();
        assert_eq!(steps, vec![5, 4, 3], "keeps the newest three");

        let loaded = load_latest(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.counters.step, 5);
        assert_eq!(loaded.counters.frames, 700);
        assert_eq!(loaded.learner_config, config);

        tch::manual_seed(2);
        let mut m2 = model();
        let mut opt2 = Optimizer::new(&m2.vs, cfg);
        loaded.apply(&mut m2, &mut opt2).unwrap();
        let (a, b) = (m.vs.variables(), m2.vs.variables());
        assert_eq!(a.len(), b.len());
        for (name, t) in &a {
            assert!(t.equal(&b[name]), "weights {name} differ after loading");
        }
        let saved: std::collections::HashMap<String, Tensor> = opt.state().into_iter().collect();
        for (name, t) in opt2.state() {
            let off = (t - &saved[&name]).abs().max().double_value(&[]);
            assert_eq!(off, 0.0, "optimizer state {name} not restored");
        }
    }

    #[test]
    fn damaged_newest_checkpoint_falls_back_to_the_previous() {
        let dir = tempfile::tempdir().unwrap();
        let m = model();
        let opt = Optimizer::new(
            &m.vs,
            OptimizerConfig::RmsProp { alpha: 0.99, eps: 0.01, momentum: 0.0 },
        );
        let config = serde_json::json!({});
        for step in [10, 20] {
            let c = Counters { step, ..Default::default() };
            save(dir.path(), &m, &opt, &c, &config, 5).unwrap();
        }
        // Truncate the newest one's weights, as a crash mid-copy would.
        let newest = dir.path().join("ckpt-000000000020").join(MODEL_FILE);
        let bytes = std::fs::read(&newest).unwrap();
        std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
        assert!(wire::checkpoint::verify(&dir.path().join("ckpt-000000000020")).is_err());
        assert_eq!(load_latest(dir.path()).unwrap().unwrap().counters.step, 10);

        // A temporary directory (a writer killed before its rename) is never loaded.
        std::fs::create_dir(dir.path().join(".tmp-ckpt-000000000030-1")).unwrap();
        assert_eq!(load_latest(dir.path()).unwrap().unwrap().counters.step, 10);

        // Every checkpoint damaged: an error, not a silent fresh start.
        let older = dir.path().join("ckpt-000000000010").join(MANIFEST_FILE);
        std::fs::write(&older, b"{").unwrap();
        assert!(load_latest(dir.path()).is_err());
        // No checkpoint at all: None.
        assert!(load_latest(&dir.path().join("nothing")).unwrap().is_none());
    }
}
