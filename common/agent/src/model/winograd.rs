//! The ConvLSTM's 3x3 gate convolution for inference on the CPU, as Winograd
//! F(2x2, 3x3) (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural
//! Networks").
//!
//! Why: at the paper preset the gate convolution (192 -> 512 channels over the
//! 27x20 grid) is about three quarters of an actor's inference time, and
//! libtorch's direct convolution already runs it near the CPU's peak
//! arithmetic rate (docs/performance.md). Winograd computes each 2x2 block of
//! outputs from a 4x4 input tile with 16 multiplications per input channel
//! instead of 36, so the work becomes 16 matrix products [C_out, C_in] x
//! [C_in, tiles] with 2.25x fewer multiply-adds, plus cheap additions that
//! transform tiles in and out. Its error against an f64 direct convolution
//! stays within 1e-5 of the output's scale (tests below).
//!
//! Only the forward pass: the learner keeps libtorch's convolution, whose
//! backward pass autograd provides. The transformed filter depends only on the
//! weights, so [`WinogradFilter`] is built once per weight version, not per
//! step.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Tiles per block: each thread transforms a block of tiles into its own
/// buffers, multiplies, and transforms back while the block is still in cache.
const BLOCK: usize = 64;

/// A 3x3 filter bank [C_out, C_in, 3, 3] transformed to the Winograd domain:
/// `u[k][i][o]` (column-major [C_out, C_in], which the matrix product reads
/// without repacking) for the 16 elements k of the 4x4 transform G g G^T.
#[derive(Clone)]
pub struct WinogradFilter {
    out_channels: usize,
    in_channels: usize,
    u: Vec<f32>,
}

impl std::fmt::Debug for WinogradFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the 16 x C_out x C_in numbers.
        f.debug_struct("WinogradFilter")
            .field("out_channels", &self.out_channels)
            .field("in_channels", &self.in_channels)
            .finish_non_exhaustive()
    }
}

impl WinogradFilter {
    /// Transforms `weight`, laid out [C_out, C_in, 3, 3] row-major.
    pub fn new(weight: &[f32], out_channels: usize, in_channels: usize) -> Self {
        assert_eq!(weight.len(), out_channels * in_channels * 9, "weight is [C_out, C_in, 3, 3]");
        let plane = out_channels * in_channels;
        let mut u = vec![0f32; 16 * plane];
        // Input channel outer, output channel inner: each k's writes run along
        // C_out, the stored order (column-major [C_out, C_in] per k).
        for i in 0..in_channels {
            for o in 0..out_channels {
                let g = &weight[(o * in_channels + i) * 9..][..9];
                for (k, v) in transform_filter(g).into_iter().enumerate() {
                    u[k * plane + i * out_channels + o] = v;
                }
            }
        }
        WinogradFilter { out_channels, in_channels, u }
    }

    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    pub fn in_channels(&self) -> usize {
        self.in_channels
    }
}

/// G g G^T for one 3x3 filter g (row-major), flattened row-major, with
/// G = [[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]].
fn transform_filter(g: &[f32]) -> [f32; 16] {
    let mut gg = [[0f32; 3]; 4];
    for c in 0..3 {
        let (g0, g1, g2) = (g[c], g[3 + c], g[6 + c]);
        gg[0][c] = g0;
        gg[1][c] = 0.5 * (g0 + g1 + g2);
        gg[2][c] = 0.5 * (g0 - g1 + g2);
        gg[3][c] = g2;
    }
    let mut u = [0f32; 16];
    for (r, row) in gg.iter().enumerate() {
        u[4 * r] = row[0];
        u[4 * r + 1] = 0.5 * (row[0] + row[1] + row[2]);
        u[4 * r + 2] = 0.5 * (row[0] - row[1] + row[2]);
        u[4 * r + 3] = row[2];
    }
    u
}

/// The shape of one call: `batch` images of `height` x `width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
}

impl Shape {
    /// Tile rows and columns per image: each tile makes 2x2 outputs.
    fn tiles(&self) -> (usize, usize) {
        (self.height.div_ceil(2), self.width.div_ceil(2))
    }

    /// Tile `t` of the batch: its image, tile row and tile column.
    fn tile(&self, t: usize) -> (usize, usize, usize) {
        let (th, tw) = self.tiles();
        (t / (th * tw), (t / tw) % th, t % tw)
    }
}

/// out [B, H, W, C_out] = bias + the 3x3 convolution of `input` [B, H, W, C_in]
/// with zero padding 1 (the output has the input's size), on `threads` threads
/// (libtorch's own, [`super::openmp`]).
///
/// Both are channels-last, so that every transform below reads and writes
/// whole runs of channels, which the compiler vectorises.
pub fn conv3x3(
    input: &[f32],
    shape: Shape,
    filter: &WinogradFilter,
    bias: &[f32],
    out: &mut [f32],
    threads: usize,
) {
    let (ci, co) = (filter.in_channels, filter.out_channels);
    let (h, w) = (shape.height, shape.width);
    assert_eq!(input.len(), shape.batch * h * w * ci, "input is [B, H, W, C_in]");
    assert_eq!(out.len(), shape.batch * h * w * co, "output is [B, H, W, C_out]");
    assert_eq!(bias.len(), co, "bias is [C_out]");
    let (th, tw) = shape.tiles();
    let tiles = shape.batch * th * tw;
    let blocks = tiles.div_ceil(BLOCK);
    let next = AtomicUsize::new(0);
    let out = SharedOut(out.as_mut_ptr());
    let zeros = vec![0f32; ci];
    let work = || {
        let mut v = vec![0f32; 16 * BLOCK * ci];
        let mut m = vec![0f32; 16 * BLOCK * co];
        let mut scratch = vec![0f32; 16 * ci.max(co)];
        loop {
            let b = next.fetch_add(1, Ordering::Relaxed);
            if b >= blocks {
                break;
            }
            let first = b * BLOCK;
            let n = BLOCK.min(tiles - first);
            for j in 0..n {
                transform_input(input, shape, ci, first + j, &zeros, &mut scratch, &mut v, j);
            }
            multiply(filter, &v, n, &mut m);
            for j in 0..n {
                // SAFETY: each output element belongs to exactly one tile and
                // each tile to exactly one block, which one thread takes; `out`
                // outlives the scope the threads run in.
                unsafe { transform_output(&m, shape, co, bias, first + j, j, &mut scratch, &out) };
            }
        }
    };
    super::openmp::run(threads.clamp(1, blocks.max(1)), &work);
}

/// The output buffer, written by several threads at disjoint elements.
struct SharedOut(*mut f32);
// SAFETY: see `conv3x3`: threads write disjoint elements.
unsafe impl Sync for SharedOut {}

/// (o0, o1, o2, o3) = B^T (a0, a1, a2, a3), element-wise over channels, with
/// B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]].
#[inline(always)]
fn input_1d(a: [&[f32]; 4], o: [&mut [f32]; 4]) {
    let [a0, a1, a2, a3] = a;
    let [o0, o1, o2, o3] = o;
    let n = o0.len();
    let (a0, a1, a2, a3) = (&a0[..n], &a1[..n], &a2[..n], &a3[..n]);
    let (o1, o2, o3) = (&mut o1[..n], &mut o2[..n], &mut o3[..n]);
    for i in 0..n {
        o0[i] = a0[i] - a2[i];
        o1[i] = a1[i] + a2[i];
        o2[i] = a2[i] - a1[i];
        o3[i] = a1[i] - a3[i];
    }
}

/// Tile `t`'s 4x4 input patch d for every channel, transformed to B^T d B and
/// stored as column `j` of the block: v[k][j][i], k = 4 r + c.
#[allow(clippy::too_many_arguments)]
fn transform_input(
    input: &[f32],
    shape: Shape,
    ci: usize,
    t: usize,
    zeros: &[f32],
    scratch: &mut [f32],
    v: &mut [f32],
    j: usize,
) {
    let (h, w) = (shape.height as isize, shape.width as isize);
    let (img, ty, tx) = shape.tile(t);
    let (y0, x0) = (2 * ty as isize - 1, 2 * tx as isize - 1);
    // The patch's 16 pixels, each a run of C_in channels (zeros outside the image).
    let pixel = |r: usize, c: usize| -> &[f32] {
        let (y, x) = (y0 + r as isize, x0 + c as isize);
        if y < 0 || x < 0 || y >= h || x >= w {
            zeros
        } else {
            let p = (img * shape.height + y as usize) * shape.width + x as usize;
            &input[p * ci..][..ci]
        }
    };
    // Down the columns first: t[r][c] = (B^T d)[r][c], into the scratch.
    for c in 0..4 {
        let rows = scratch
            .get_disjoint_mut([0, 4, 8, 12].map(|k| (c + k) * ci..(c + k + 1) * ci))
            .expect("16 disjoint runs of the scratch");
        input_1d([pixel(0, c), pixel(1, c), pixel(2, c), pixel(3, c)], rows);
    }
    // Then along the rows: v[r][c] = (t B)[r][c].
    let stride_k = BLOCK * ci;
    for r in 0..4 {
        let s = &scratch[4 * r * ci..(4 * r + 4) * ci];
        let (s0, s1, s2, s3) = (&s[..ci], &s[ci..2 * ci], &s[2 * ci..3 * ci], &s[3 * ci..]);
        let out = v
            .get_disjoint_mut(
                [0, 1, 2, 3].map(|c| {
                    (4 * r + c) * stride_k + j * ci..(4 * r + c) * stride_k + (j + 1) * ci
                }),
            )
            .expect("16 disjoint runs of the block");
        input_1d([s0, s1, s2, s3], out);
    }
}

/// m[k] = u[k] v[k]: [C_out, C_in] x [C_in, n] for each of the 16 elements,
/// with v[k] and m[k] stored tile-major ([n, C_in] and [n, C_out]).
fn multiply(filter: &WinogradFilter, v: &[f32], n: usize, m: &mut [f32]) {
    let (ci, co) = (filter.in_channels, filter.out_channels);
    for k in 0..16 {
        let u = &filter.u[k * co * ci..][..co * ci];
        let vk = &v[k * BLOCK * ci..][..n * ci];
        let mk = &mut m[k * BLOCK * co..][..n * co];
        // SAFETY: u is [co, ci] column-major (row stride 1, column stride
        // co); vk is [ci, n] with column stride ci; mk is [co, n] with column
        // stride co: every index read or written is inside these slices.
        unsafe {
            gemm::gemm(
                co,
                n,
                ci,
                mk.as_mut_ptr(),
                co as isize,
                1,
                false,
                u.as_ptr(),
                co as isize,
                1,
                vk.as_ptr(),
                ci as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }
}

/// Column `j` of the block (tile `t`) back to its 2x2 outputs: A^T m A + bias
/// for every output channel, with A^T = [[1, 1, 1, 0], [0, 1, -1, -1]];
/// outputs past the image's edge are dropped.
///
/// # Safety
/// `out` points to [B, H, W, C_out] and no other thread writes tile `t`.
#[allow(clippy::too_many_arguments)]
unsafe fn transform_output(
    m: &[f32],
    shape: Shape,
    co: usize,
    bias: &[f32],
    t: usize,
    j: usize,
    scratch: &mut [f32],
    out: &SharedOut,
) {
    let (h, w) = (shape.height, shape.width);
    let (img, ty, tx) = shape.tile(t);
    let stride_k = BLOCK * co;
    let e = |k: usize| &m[k * stride_k + j * co..][..co];
    // Down the columns: s[dy][c] = (A^T m)[dy][c], into the scratch [2][4][co].
    let (s0, s1) = scratch[..8 * co].split_at_mut(4 * co);
    for c in 0..4 {
        let (m0, m1, m2, m3) = (e(c), e(4 + c), e(8 + c), e(12 + c));
        let (o0, o1) = (&mut s0[c * co..][..co], &mut s1[c * co..][..co]);
        for o in 0..co {
            o0[o] = m0[o] + m1[o] + m2[o];
            o1[o] = m1[o] - m2[o] - m3[o];
        }
    }
    // Along the rows, plus the bias, straight into the output pixels.
    for (dy, s) in [&*s0, &*s1].into_iter().enumerate() {
        let y = 2 * ty + dy;
        if y >= h {
            continue;
        }
        let (a0, a1, a2, a3) = (&s[..co], &s[co..2 * co], &s[2 * co..3 * co], &s[3 * co..]);
        for dx in 0..2 {
            let x = 2 * tx + dx;
            if x >= w {
                continue;
            }
            // SAFETY: (img, y, x) is inside the image, so these co elements
            // are inside `out`, and only this tile writes them.
            let px = std::slice::from_raw_parts_mut(out.0.add(((img * h + y) * w + x) * co), co);
            if dx == 0 {
                for o in 0..co {
                    px[o] = a0[o] + a1[o] + a2[o] + bias[o];
                }
            } else {
                for o in 0..co {
                    px[o] = a1[o] - a2[o] - a3[o] + bias[o];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct convolution in f64, channels-last like `conv3x3`.
    fn direct_f64(
        input: &[f32],
        shape: Shape,
        weight: &[f32],
        bias: &[f32],
        co: usize,
    ) -> Vec<f64> {
        let (h, w) = (shape.height, shape.width);
        let ci = input.len() / (shape.batch * h * w);
        let mut out = vec![0f64; shape.batch * co * h * w];
        for b in 0..shape.batch {
            for o in 0..co {
                for y in 0..h {
                    for x in 0..w {
                        let mut acc = bias[o] as f64;
                        for i in 0..ci {
                            for r in 0..3 {
                                for c in 0..3 {
                                    let (yy, xx) =
                                        (y as isize + r as isize - 1, x as isize + c as isize - 1);
                                    if yy < 0 || xx < 0 || yy >= h as isize || xx >= w as isize {
                                        continue;
                                    }
                                    let v =
                                        input[((b * h + yy as usize) * w + xx as usize) * ci + i];
                                    acc += v as f64 * weight[((o * ci + i) * 3 + r) * 3 + c] as f64;
                                }
                            }
                        }
                        out[((b * h + y) * w + x) * co + o] = acc;
                    }
                }
            }
        }
        out
    }

    fn pseudo_random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    /// Odd and even sizes (partial edge tiles), one and several blocks and threads.
    #[test]
    fn matches_the_direct_convolution_in_f64() {
        for &(batch, ci, co, h, w, threads) in
            // The last: 70 tiles, so two blocks, the first spanning both
            // images, more threads than blocks, and channel counts past one
            // panel of the matrix product.
            &[
                (1, 1, 1, 1, 1, 1),
                (2, 3, 5, 7, 6, 1),
                (3, 16, 8, 27, 20, 2),
                (1, 5, 4, 4, 9, 3),
                (2, 40, 70, 9, 13, 3),
            ]
        {
            let shape = Shape { batch, height: h, width: w };
            let input = pseudo_random(batch * ci * h * w, 1, 1.0);
            let weight = pseudo_random(co * ci * 9, 2, 0.3);
            let bias = pseudo_random(co, 3, 0.1);
            let filter = WinogradFilter::new(&weight, co, ci);
            let mut out = vec![f32::NAN; batch * co * h * w];
            conv3x3(&input, shape, &filter, &bias, &mut out, threads);
            let want = direct_f64(&input, shape, &weight, &bias, co);
            let scale = want.iter().fold(0f64, |a, v| a.max(v.abs()));
            for (k, (&got, &want)) in out.iter().zip(&want).enumerate() {
                let err = (got as f64 - want).abs();
                assert!(
                    err <= 1e-5 * scale.max(1.0),
                    "shape {shape:?} ci {ci} co {co}: element {k} is {got}, want {want}"
                );
            }
        }
    }
}
