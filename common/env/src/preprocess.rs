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
/// their covered fraction (OpenCV's INTER_AREA). Separable: rows, then columns.
/// Weights and scratch buffers are allocated once.
#[derive(Clone, Debug)]
pub struct Resizer {
    src: (usize, usize),
    dst: (usize, usize),
    rows: Taps,
    cols: Taps,
    /// Luma after the row pass (grayscale path), [dst_h, src_w].
    luma: Vec<f32>,
    /// After the row pass, [dst_h, src_w, 3].
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
            weights.resize(weights.len() + pad, 0.0);
            weights.extend_from_slice(&w);
            weights.resize(weights.len() + taps - pad - w.len(), 0.0);
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
        // Rows first, on whole RGB rows (contiguous, so the compiler
        // vectorizes): tmp[r] = sum_k w[r, k] * rgb[first[r] + k], [dh, sw, 3].
        let line = sw * 3;
        let t = self.rows.taps;
        self.tmp.resize(dh * line, 0.0);
        for (r, acc) in self.tmp.chunks_exact_mut(line).enumerate() {
            let first = self.rows.first[r];
            acc.fill(0.0);
            for (k, &wk) in self.rows.weights[r * t..(r + 1) * t].iter().enumerate() {
                let src = &rgb[(first + k) * line..(first + k + 1) * line];
                for (a, &v) in acc.iter_mut().zip(src) {
                    *a += wk * f32::from(v);
                }
            }
        }
        if grayscale {
            // Luma is linear, so taking it between the passes equals taking
            // it of the area mean, and the column pass then runs on one channel.
            self.luma.resize(dh * sw, 0.0);
            for (l, p) in self.luma.iter_mut().zip(self.tmp.chunks_exact(3)) {
                *l = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
            }
            column_pass::<1>(&self.luma, sw, &self.cols, out);
        } else {
            column_pass::<3>(&self.tmp, sw, &self.cols, out);
        }
    }
}

/// Column pass over f32 rows of width `w` with `C` channels into rounded u8
/// rows of the output width.
fn column_pass<const C: usize>(src: &[f32], w: usize, cols: &Taps, out: &mut [u8]) {
    let t = cols.taps;
    let dw = cols.first.len();
    for (row, o) in src.chunks_exact(w * C).zip(out.chunks_exact_mut(dw * C)) {
        for ((o, &f), wt) in
            o.chunks_exact_mut(C).zip(&cols.first).zip(cols.weights.chunks_exact(t))
        {
            let mut acc = [0f32; C];
            for (px, &wk) in row[f * C..(f + t) * C].chunks_exact(C).zip(wt) {
                for c in 0..C {
                    acc[c] += wk * px[c];
                }
            }
            for c in 0..C {
                o[c] = (acc[c] + 0.5).clamp(0.0, 255.0) as u8;
            }
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
