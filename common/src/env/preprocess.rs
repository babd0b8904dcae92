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
/// their covered fraction (OpenCV's INTER_AREA). Weights are computed once.
#[derive(Clone, Debug)]
pub struct Resizer {
    src: (usize, usize),
    dst: (usize, usize),
    /// Per output row: (first input row, weights of consecutive input rows).
    rows: Vec<(usize, Vec<f32>)>,
    /// Per output column: (first input column, weights).
    cols: Vec<(usize, Vec<f32>)>,
}

fn area_weights(src: usize, dst: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|o| {
            let (lo, hi) = (o as f64 * scale, (o + 1) as f64 * scale);
            let first = lo.floor() as usize;
            let last = (hi.ceil() as usize).min(src);
            let w = (first..last)
                .map(|i| {
                    let cover = hi.min(i as f64 + 1.0) - lo.max(i as f64);
                    (cover / scale) as f32
                })
                .collect();
            (first, w)
        })
        .collect()
}

impl Resizer {
    /// A resizer from `src` (height, width) to `dst` (height, width).
    pub fn new(src: (usize, usize), dst: (usize, usize)) -> Self {
        Resizer { src, dst, rows: area_weights(src.0, dst.0), cols: area_weights(src.1, dst.1) }
    }

    /// Resizes RGB `[src_h, src_w, 3]` into `out`: `[dst_h, dst_w, 3]`, or
    /// `[dst_h, dst_w, 1]` luminance when `grayscale`.
    pub fn resize(&self, rgb: &[u8], out: &mut [u8], grayscale: bool) {
        let (sh, sw) = self.src;
        let (dh, dw) = self.dst;
        assert_eq!(rgb.len(), sh * sw * 3);
        assert_eq!(out.len(), dh * dw * if grayscale { 1 } else { 3 });
        // Columns first: [sh, dw, 3] in f32.
        let mut tmp = vec![0f32; sh * dw * 3];
        for r in 0..sh {
            let src_row = &rgb[r * sw * 3..(r + 1) * sw * 3];
            for (c, (first, w)) in self.cols.iter().enumerate() {
                let mut acc = [0f32; 3];
                for (k, &wk) in w.iter().enumerate() {
                    let p = &src_row[(first + k) * 3..(first + k) * 3 + 3];
                    for ch in 0..3 {
                        acc[ch] += wk * f32::from(p[ch]);
                    }
                }
                tmp[(r * dw + c) * 3..(r * dw + c) * 3 + 3].copy_from_slice(&acc);
            }
        }
        for (r, (first, w)) in self.rows.iter().enumerate() {
            for c in 0..dw {
                let mut acc = [0f32; 3];
                for (k, &wk) in w.iter().enumerate() {
                    let i = ((first + k) * dw + c) * 3;
                    for ch in 0..3 {
                        acc[ch] += wk * tmp[i + ch];
                    }
                }
                if grayscale {
                    out[r * dw + c] = luma(acc[0], acc[1], acc[2]);
                } else {
                    for ch in 0..3 {
                        out[(r * dw + c) * 3 + ch] = acc[ch].round().clamp(0.0, 255.0) as u8;
                    }
                }
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
