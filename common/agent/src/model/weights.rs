//! Weights to and from safetensors bytes (params messages and checkpoints).
//!
//! Tensors are stored by their var-store names (`vision.conv0.weight`, ...) as
//! little-endian f32; the header's metadata key [`METADATA_KEY`] holds JSON with
//! `fingerprint` (the config's [`ModelConfig::fingerprint`]) and `config`, so any safetensors
//! reader (Python's `safetensors`, `scripts/python/reference_model.py`) can rebuild
//! the model, and a loader refuses weights of another architecture.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tch::{nn, Device, Kind, Tensor};

use wire::config::ModelConfig;
use wire::protocol::ProtocolError;

use super::ModelError;

/// The one metadata key (one key keeps the header's bytes deterministic):
/// JSON `{"fingerprint": "<hex>", "config": {ModelConfig}}`.
pub const METADATA_KEY: &str = "attention_agent";

#[derive(serde::Serialize, serde::Deserialize)]
struct ModelMetadata {
    fingerprint: String,
    config: ModelConfig,
}

fn model_metadata(cfg: &ModelConfig) -> Result<String, ModelError> {
    let meta = ModelMetadata { fingerprint: cfg.fingerprint(), config: cfg.clone() };
    serde_json::to_string(&meta).map_err(|e| ModelError::Invalid(e.to_string()))
}

/// Serialises every variable of `vs` (sorted by name) with the config metadata.
pub fn to_safetensors(vs: &nn::VarStore, cfg: &ModelConfig) -> Result<Vec<u8>, ModelError> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let metadata = HashMap::from([(METADATA_KEY.to_owned(), model_metadata(cfg)?)]);
    let named: Vec<(&str, &Tensor)> = vars.iter().map(|(n, t)| (n.as_str(), t)).collect();
    tensors_to_safetensors(&named, Some(metadata))
}

fn dtype_of(kind: Kind) -> Result<Dtype, ModelError> {
    match kind {
        Kind::Float => Ok(Dtype::F32),
        Kind::Uint8 => Ok(Dtype::U8),
        Kind::Bool => Ok(Dtype::BOOL),
        Kind::Int64 => Ok(Dtype::I64),
        other => Err(ModelError::Invalid(format!("cannot store {other:?} tensors"))),
    }
}

fn kind_of(dtype: Dtype) -> Result<Kind, ModelError> {
    match dtype {
        Dtype::F32 => Ok(Kind::Float),
        Dtype::U8 => Ok(Kind::Uint8),
        Dtype::BOOL => Ok(Kind::Bool),
        Dtype::I64 => Ok(Kind::Int64),
        other => Err(ModelError::Invalid(format!("cannot read {other:?} tensors"))),
    }
}

/// Any named f32, u8, bool or i64 tensors as safetensors bytes (host byte order,
/// little-endian on every target we build for).
pub fn tensors_to_safetensors(
    named: &[(&str, &Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>, ModelError> {
    let mut buffers = Vec::with_capacity(named.len());
    for (name, t) in named {
        let t = t.detach().to_device(Device::Cpu).contiguous();
        let dtype = dtype_of(t.kind())?;
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * dtype.size()];
        t.f_copy_data_u8(&mut bytes, numel)?;
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        buffers.push((*name, dtype, shape, bytes));
    }
    let views = buffers
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (*name, v))
                .map_err(|e| ModelError::Safetensors(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, &metadata).map_err(|e| ModelError::Safetensors(e.to_string()))
}

/// Every tensor of safetensors bytes (f32, u8, bool or i64), on the CPU.
pub fn safetensors_to_tensors(bytes: &[u8]) -> Result<HashMap<String, Tensor>, ModelError> {
    let file =
        SafeTensors::deserialize(bytes).map_err(|e| ModelError::Safetensors(e.to_string()))?;
    let mut out = HashMap::new();
    for (name, view) in file.tensors() {
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind_of(view.dtype())?)?;
        out.insert(name, t);
    }
    Ok(out)
}

/// The fingerprint in the metadata of safetensors bytes, if any.
pub fn fingerprint_of(bytes: &[u8]) -> Result<Option<String>, ModelError> {
    let (_, meta) =
        SafeTensors::read_metadata(bytes).map_err(|e| ModelError::Safetensors(e.to_string()))?;
    let Some(json) = meta.metadata().as_ref().and_then(|m| m.get(METADATA_KEY)) else {
        return Ok(None);
    };
    let meta: ModelMetadata = serde_json::from_str(json)
        .map_err(|e| ModelError::Safetensors(format!("metadata {METADATA_KEY}: {e}")))?;
    Ok(Some(meta.fingerprint))
}

/// Copies the tensors of `bytes` into `vs`. All-or-nothing: every check (the
/// fingerprint, every name present with its shape and dtype, no extra tensor)
/// passes before the first variable changes.
pub fn load_safetensors(
    vs: &mut nn::VarStore,
    cfg: &ModelConfig,
    bytes: &[u8],
) -> Result<(), ModelError> {
    let want = cfg.fingerprint();
    match fingerprint_of(bytes)? {
        Some(got) if got == want => {}
        got => {
            let got = got.unwrap_or_else(|| "none".into());
            return Err(ProtocolError::Fingerprint { got, want }.into());
        }
    }
    let file =
        SafeTensors::deserialize(bytes).map_err(|e| ModelError::Safetensors(e.to_string()))?;
    let vars = vs.variables();
    if file.len() != vars.len() {
        return Err(ModelError::Mismatch(format!(
            "{} tensors in the weights, {} in the model",
            file.len(),
            vars.len()
        )));
    }
    let mut loaded = Vec::with_capacity(vars.len());
    for (name, var) in &vars {
        let view = file
            .tensor(name)
            .map_err(|_| ModelError::Mismatch(format!("tensor {name} missing")))?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        if view.dtype() != Dtype::F32 || shape != var.size() {
            return Err(ModelError::Mismatch(format!(
                "tensor {name}: {:?} {:?}, the model has F32 {:?}",
                view.dtype(),
                shape,
                var.size()
            )));
        }
        let t = Tensor::f_from_data_size(view.data(), &shape, Kind::Float)?;
        loaded.push((var.shallow_clone(), t));
    }
    tch::no_grad(|| {
        for (mut var, t) in loaded {
            var.copy_(&t);
        }
    });
    Ok(())
}
