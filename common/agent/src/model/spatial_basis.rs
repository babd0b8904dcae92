//! The fixed spatial basis of the attention (Mott et al. 2019, section 2).
//!
//! For u, v in 1..=n and every grid position (i, j) of an h x w grid:
//!
//! ```text
//! S[i, j, c] = f(pi * u * i / h) * g(pi * v * j / w),   f, g in {cos, sin}
//! ```
//!
//! giving 4 n^2 channels (64 for n = 4), computed from h and w and never learned.
//! Channel order: `c = ((u - 1) * n + (v - 1)) * 4 + 2 * a + b`, where `a` picks
//! f (0 = cos, 1 = sin) and `b` picks g (0 = cos, 1 = sin). The reproduction's
//! cos-only 8x8 basis is not this one.

use std::f64::consts::PI;

use tch::{Device, Kind, Tensor};

/// The basis value at grid position (i, j) for channel `c` (see the module doc).
pub fn basis_value(h: usize, w: usize, n: usize, i: usize, j: usize, c: usize) -> f64 {
    let (uv, ab) = (c / 4, c % 4);
    let (u, v) = (uv / n + 1, uv % n + 1);
    let (a, b) = (ab / 2, ab % 2);
    let x = PI * u as f64 * i as f64 / h as f64;
    let y = PI * v as f64 * j as f64 / w as f64;
    let f = if a == 0 { x.cos() } else { x.sin() };
    let g = if b == 0 { y.cos() } else { y.sin() };
    f * g
}

/// The spatial basis as f32 [h * w, 4 n^2], rows in row-major grid order
/// (position `i * w + j`), on `device`.
pub fn spatial_basis(h: usize, w: usize, n: usize, device: Device) -> Tensor {
    let channels = 4 * n * n;
    let mut values = Vec::with_capacity(h * w * channels);
    for i in 0..h {
        for j in 0..w {
            for c in 0..channels {
                values.push(basis_value(h, w, n, i, j, c) as f32);
            }
        }
    }
    Tensor::from_slice(&values)
        .view([(h * w) as i64, channels as i64])
        .to_kind(Kind::Float)
        .to_device(device)
}
