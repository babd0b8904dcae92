//! The bulk arrays of every message ([`Array`]): dense, little-endian, with
//! their dtype and shape, travelling as MessagePack `bin` (a `Vec<u8>` without
//! `serde_bytes` would become an array of integers, 1.5x larger and ~300x
//! slower); and their checks against a field of a per-step layout.

use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;
use crate::error::{ProtocolError, Result};
use crate::layout::{Check, DType, Field};

/// A dense little-endian array that travels as MessagePack `bin`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Array {
    pub dtype: DType,
    pub shape: Vec<usize>,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

impl Array {
    pub fn from_u8(shape: Vec<usize>, data: Vec<u8>) -> Self {
        Array { dtype: DType::U8, shape, data }
    }

    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> Self {
        let mut data = Vec::with_capacity(values.len() * 4);
        for v in values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        Array { dtype: DType::F32, shape, data }
    }

    pub fn from_i64(shape: Vec<usize>, values: &[i64]) -> Self {
        let mut data = Vec::with_capacity(values.len() * 8);
        for v in values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        Array { dtype: DType::I64, shape, data }
    }

    /// Number of elements the shape describes.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Checks dtype, shape and that the data fills the shape exactly.
    pub fn check(&self, field: &'static str, dtype: DType, shape: &[usize]) -> Result<()> {
        if self.dtype != dtype {
            return Err(ProtocolError::DType { field, got: self.dtype, want: dtype });
        }
        if self.shape != shape {
            return Err(ProtocolError::Shape {
                field,
                got: self.shape.clone(),
                want: shape.to_vec(),
            });
        }
        self.check_len(field)
    }

    /// Checks the array against a layout's field for `steps` steps: dtype,
    /// shape (a free dimension only needs the same size throughout, which the
    /// length check ensures) and the field's value check.
    pub fn check_field(
        &self,
        field: &'static Field,
        cfg: &ModelConfig,
        steps: usize,
    ) -> Result<()> {
        let want = field.shape(cfg, steps);
        let matches = self.shape.len() == want.len()
            && self.shape.iter().zip(&want).all(|(&got, want)| want.is_none_or(|w| w == got));
        if !matches {
            return Err(ProtocolError::Shape {
                field: field.name,
                got: self.shape.clone(),
                want: want.iter().map(|w| w.unwrap_or(0)).collect(),
            });
        }
        self.check(field.name, field.dtype, &self.shape.clone())?;
        match field.check {
            Check::Any => Ok(()),
            Check::Finite => self.check_finite(field.name),
            Check::Action => self.check_actions(field.name, cfg.num_actions),
            Check::Flag => match self.data.iter().any(|&d| d > 1) {
                true => Err(ProtocolError::Invalid(format!(
                    "field {}: values other than 0 and 1",
                    field.name
                ))),
                false => Ok(()),
            },
        }
    }

    fn check_len(&self, field: &'static str) -> Result<()> {
        let want = self.shape.iter().try_fold(self.dtype.size(), |acc, &d| acc.checked_mul(d));
        if want != Some(self.data.len()) {
            return Err(ProtocolError::Length {
                field,
                len: self.data.len(),
                shape: self.shape.clone(),
                dtype: self.dtype,
            });
        }
        Ok(())
    }

    /// The elements as f32; errors unless the dtype is f32 and the length fits.
    pub fn to_f32(&self, field: &'static str) -> Result<Vec<f32>> {
        self.expect_dtype(field, DType::F32)?;
        Ok(self.data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect())
    }

    /// The elements as i64; errors unless the dtype is i64 and the length fits.
    pub fn to_i64(&self, field: &'static str) -> Result<Vec<i64>> {
        self.expect_dtype(field, DType::I64)?;
        Ok(self.data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect())
    }

    fn expect_dtype(&self, field: &'static str, dtype: DType) -> Result<()> {
        if self.dtype != dtype {
            return Err(ProtocolError::DType { field, got: self.dtype, want: dtype });
        }
        self.check_len(field)
    }

    pub(crate) fn check_finite(&self, field: &'static str) -> Result<()> {
        if self.to_f32(field)?.iter().all(|v| v.is_finite()) {
            Ok(())
        } else {
            Err(ProtocolError::NonFinite { field })
        }
    }

    fn check_actions(&self, field: &'static str, num_actions: usize) -> Result<()> {
        match self.to_i64(field)?.into_iter().find(|&a| a < 0 || a as u64 >= num_actions as u64) {
            Some(action) => Err(ProtocolError::ActionOutOfRange { field, action, num_actions }),
            None => Ok(()),
        }
    }
}
