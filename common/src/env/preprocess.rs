//! Frame preprocessing: the maximum over two frames (removes Atari sprite
//! flicker), area resizing and RGB-to-luminance conversion, all on u8 `[H, W, C]`.

/// `out[i] = max(a[i], b[i])`, pixel- and channel-wise.
pub fn max_pool(a: &[u8], b: &[u8], out: &mut [u8]) {
    assert!(a.len() == b.len() && a.len() == out.len());
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x.max(y);
    }
}

/// ITU-R BT.601 luma of one RGB pixel, rounded.
#[inline]
pub fn luma(r: f32, g: f32, b: f32) -> u8 {
    (0.299 * r + 0.587 * g + 0.114 * b).round().clamp(0.0, 255.0) as u8
}

/// RGB `[H, W, 3]` to luminance `[H, W, 1]`.
pub fn rgb_to_gray(rgb: &[u8], out: &mut [u8]) {
    assert_eq!(rgb.len(), out.len() * 3);
    for (o, p) in out.iter_mut().zip(rgb.chunks_exact(3)) {
        *o = luma(f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
    }
}

/// Area ("box") resampling of RGB frames from one size to another: each output
/// pixel is the mean of the input pixels it covers, partial pixels weighted by
/// their covered fraction (OpenCV's INTER_AREA). Separable: columns, then rows.
/// Weights and scratch buffers are allocated once.
#[derive(Clone, Debug)]
pub struct Resizer {
    src: (usize, usize),
    dst: (usize, usize),
    rows: Taps,
    cols: Taps,
    /// Luma of the source frame (grayscale path), [src_h, src_w].
    luma: Vec<f32>,
    /// After the column pass, [src_h, dst_w, channels].
    tmp: Vec<f32>,
}

/// For each output index: the first input index and `taps` weights (zero
/// padded, so every output reads the same number of inputs).
#[derive(Clone, Debug)]
struct Taps {
    taps: usize,
    first: Vec<usize>,
    weights: Vec<f32>,
}

impl Taps {
    fn area(src: usize, dst: usize) -> Taps {
        let scale = src as f64 / dst as f64;
        let spans: Vec<(usize, Vec<f32>)> = (0..dst)
            .map(|o| {
                let (lo, hi) = (o as f64 * scale, (o + 1) as f64 * scale);
                let first = lo.floor() as usize;
                let last = (hi.ceil() as usize).min(src);
                let w = (first..last)
                    .map(|i| ((hi.min(i as f64 + 1.0) - lo.max(i as f64)) / scale) as f32)
                    .collect();
                (first, w)
            })
            .collect();
        let taps = spans.iter().map(|s| s.1.len()).max().unwrap_or(1).min(src);
        let mut first = Vec::with_capacity(dst);
        let mut weights = Vec::with_capacity(dst * taps);
        for (f, w) in spans {
            // Shift the window left where it would run past the input's end.
            let start = f.min(src - taps);
            first.push(start);
            let pad = f - start;
            weights.extend(std::iter::repeat(0.0).take(pad));
            weights.extend_from_slice(&w);
            weights.extend(std::iter::repeat(0.0).take(taps - pad - w.len()));
        }
        Taps { taps, first, weights }
    }
}

impl Resizer {
    /// A resizer from `src` (height, width) to `dst` (height, width).
    pub fn new(src: (usize, usize), dst: (usize, usize)) -> Self {
        Resizer {
            src,
            dst,
            rows: Taps::area(src.0, dst.0),
            cols: Taps::area(src.1, dst.1),
            luma: Vec::new(),
            tmp: Vec::new(),
        }
    }

    /// Resizes RGB `[src_h, src_w, 3]` into `out`: `[dst_h, dst_w, 3]`, or
    /// `[dst_h, dst_w, 1]` luminance (of the exact, unrounded area mean) when
    /// `grayscale`.
    pub fn resize(&mut self, rgb: &[u8], out: &mut [u8], grayscale: bool) {
        let (sh, sw) = self.src;
        let (dh, dw) = self.dst;
        assert_eq!(rgb.len(), sh * sw * 3);
        let ch = if grayscale { 1 } else { 3 };
        assert_eq!(out.len(), dh * dw * ch);
        self.tmp.resize(sh * dw * ch, 0.0);
        if grayscale {
            self.luma.clear();
            self.luma.extend(rgb.chunks_exact(3).map(|p| {
                0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])
            }));
            column_pass::<1>(&self.luma, sh, sw, &self.cols, &mut self.tmp);
        } else {
            column_pass_u8(rgb, sh, sw, &self.cols, &mut self.tmp);
        }
        let t = self.rows.taps;
        let row_len = dw * ch;
        for (r, o) in out.chunks_exact_mut(row_len).enumerate() {
            let first = self.rows.first[r];
            let w = &self.rows.weights[r * t..(r + 1) * t];
            let mut acc = [0f32; 512];
            let acc = &mut acc[..row_len.min(512)];
            if row_len > 512 {
                // Rare (wide outputs): the slow, general path.
                for (i, o) in o.iter_mut().enumerate() {
                    let v: f32 = (0..t).map(|k| w[k] * self.tmp[(first + k) * row_len + i]).sum();
                    *o = v.round().clamp(0.0, 255.0) as u8;
                }
                continue;
            }
            for (k, &wk) in w.iter().enumerate() {
                let src = &self.tmp[(first + k) * row_len..(first + k + 1) * row_len];
                for (a, &v) in acc.iter_mut().zip(src) {
                    *a += wk * v;
                }
            }
            for (o, &a) in o.iter_mut().zip(acc.iter()) {
                *o = a.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// Column pass over one-channel f32 rows: tmp[r, c] = sum_k w[c, k] src[r, first[c] + k].
fn column_pass<const C: usize>(src: &[f32], h: usize, w: usize, cols: &Taps, tmp: &mut [f32]) {
    let t = cols.taps;
    let dw = cols.first.len();
    for r in 0..h {
        let row = &src[r * w * C..(r + 1) * w * C];
        let out = &mut tmp[r * dw * C..(r + 1) * dw * C];
        for c in 0..dw {
            let f = cols.first[c];
            let wt = &cols.weights[c * t..(c + 1) * t];
            for ch in 0..C {
                let mut acc = 0.0;
                for (k, &wk) in wt.iter().enumerate() {
                    acc += wk * row[(f + k) * C + ch];
                }
                out[c * C + ch] = acc;
            }
        }
    }
}

/// Column pass over RGB u8 rows into f32.
fn column_pass_u8(src: &[u8], h: usize, w: usize, cols: &Taps, tmp: &mut [f32]) {
    let t = cols.taps;
    let dw = cols.first.len();
    for r in 0..h {
        let row = &src[r * w * 3..(r + 1) * w * 3];
        let out = &mut tmp[r * dw * 3..(r + 1) * dw * 3];
        for c in 0..dw {
            let f = cols.first[c];
            let wt = &cols.weights[c * t..(c + 1) * t];
            let px = &row[f * 3..(f + t) * 3];
            let mut acc = [0f32; 3];
            for (k, &wk) in wt.iter().enumerate() {
                acc[0] += wk * f32::from(px[k * 3]);
                acc[1] += wk * f32::from(px[k * 3 + 1]);
                acc[2] += wk * f32::from(px[k * 3 + 2]);
            }
            out[c * 3..c * 3 + 3].copy_from_slice(&acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_pool_takes_the_larger_value() {
        let mut out = [0u8; 4];
        max_pool(&[1, 9, 3, 0], &[5, 2, 3, 7], &mut out);
        assert_eq!(out, [5, 9, 3, 7]);
    }

    #[test]
    fn area_resize_by_an_integer_factor_averages_blocks() {
        // 4x4 RGB -> 2x2: each output pixel is the mean of a 2x2 block.
        let mut src = vec![0u8; 4 * 4 * 3];
        for r in 0..4 {
            for c in 0..4 {
                for ch in 0..3 {
                    src[(r * 4 + c) * 3 + ch] = (r * 40 + c * 10 + ch) as u8;
                }
            }
        }
        let mut out = vec![0u8; 2 * 2 * 3];
        Resizer::new((4, 4), (2, 2)).resize(&src, &mut out, false);
        for r in 0..2 {
            for c in 0..2 {
                for ch in 0..3 {
                    let mut sum = 0.0;
                    for dr in 0..2 {
                        for dc in 0..2 {
                            sum += f32::from(src[((2 * r + dr) * 4 + 2 * c + dc) * 3 + ch]);
                        }
                    }
                    assert_eq!(out[(r * 2 + c) * 3 + ch], (sum / 4.0).round() as u8);
                }
            }
        }
    }

    #[test]
    fn area_resize_keeps_a_constant_image_constant() {
        let src = vec![200u8; 210 * 160 * 3];
        let mut out = vec![0u8; 84 * 84 * 3];
        Resizer::new((210, 160), (84, 84)).resize(&src, &mut out, false);
        assert!(out.iter().all(|&v| v == 200));
        let mut gray = vec![0u8; 84 * 84];
        Resizer::new((210, 160), (84, 84)).resize(&src, &mut gray, true);
        assert!(gray.iter().all(|&v| v == 200));
    }

    #[test]
    fn gray_uses_bt601_weights() {
        let mut out = [0u8; 2];
        rgb_to_gray(&[255, 0, 0, 0, 0, 255], &mut out);
        assert_eq!(out, [76, 29]);
    }
}
