//! A minimal RGB raster: bilinear resize of maps, drawing, a 5x7 bitmap font
//! for labels, and PNG / animated GIF / MP4 (through ffmpeg) output. Enough for
//! attention videos and line plots without system fonts or image libraries.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
#[derive(Clone, Debug, PartialEq)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Rgb {
    pub fn new(width: usize, height: usize, fill: [u8; 3]) -> Self {
        let mut data = Vec::with_capacity(width * height * 3);
        for _ in 0..width * height {
            data.extend_from_slice(&fill);
        }
        Rgb { width, height, data }
    }

    pub fn from_frame(width: usize, height: usize, data: &[u8]) -> Self {
        assert_eq!(data.len(), width * height * 3);
        Rgb { width, height, data: data.to_vec() }
    }

    pub fn get(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    pub fn put(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = (y as usize * self.width + x as usize) * 3;
            self.data[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Copies `other` with its top-left corner at (x, y).
    pub fn blit(&mut self, other: &Rgb, x: usize, y: usize) {
        for row in 0..other.height.min(self.height.saturating_sub(y)) {
            let w = other.width.min(self.width.saturating_sub(x));
            let src = row * other.width * 3;
            let dst = ((y + row) * self.width + x) * 3;
            self.data[dst..dst + w * 3].copy_from_slice(&other.data[src..src + w * 3]);
        }
    }

    /// Nearest-neighbour upscale by an integer factor (for small frames).
    pub fn scale(&self, k: usize) -> Rgb {
        if k <= 1 {
            return self.clone();
        }
        let mut out = Rgb::new(self.width * k, self.height * k, [0; 3]);
        for y in 0..out.height {
            for x in 0..out.width {
                let c = self.get(x / k, y / k);
                out.put(x as i64, y as i64, c);
            }
        }
        out
    }

    /// A line from (x0, y0) to (x1, y1) (Bresenham).
    pub fn line(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
        self.dashed_line(x0, y0, x1, y1, c, (1, 0));
    }

    /// A dashed line: `dash.0` pixels drawn, then `dash.1` skipped, from (x0, y0).
    pub fn dashed_line(
        &mut self,
        x0: i64,
        y0: i64,
        x1: i64,
        y1: i64,
        c: [u8; 3],
        dash: (usize, usize),
    ) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        let period = (dash.0 + dash.1).max(1);
        for k in 0usize.. {
            if k % period < dash.0 {
                self.put(x, y, c);
            }
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    pub fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: [u8; 3]) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.put(xx, yy, c);
            }
        }
    }

    /// Draws `text` with the 5x7 font, `scale` pixels per font pixel, top-left at (x, y).
    pub fn text(&mut self, x: i64, y: i64, text: &str, scale: i64, c: [u8; 3]) {
        for (i, ch) in text.chars().enumerate() {
            let glyph = glyph(ch);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        let px = x + (i as i64 * 6 + col) * scale;
                        let py = y + row as i64 * scale;
                        self.fill_rect(px, py, scale, scale, c);
                    }
                }
            }
        }
    }

    pub fn write_png(&self, path: &Path) -> Result<()> {
        let file =
            std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
        self.encode_png(std::io::BufWriter::new(file))
    }

    /// The image as PNG bytes.
    pub fn png_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.encode_png(&mut out)?;
        Ok(out)
    }

    fn encode_png(&self, out: impl std::io::Write) -> Result<()> {
        let mut enc = png::Encoder::new(out, self.width as u32, self.height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&self.data)?;
        w.finish()?;
        Ok(())
    }
}

/// Width in pixels of `text` at `scale`.
pub fn text_width(text: &str, scale: usize) -> usize {
    text.chars().count() * 6 * scale
}

/// Bilinear resize of a `h x w` map to `height x width`, pixel centres aligned
/// (the grid cell (i, j) covers rows i*height/h .. (i+1)*height/h).
pub fn resize_map(map: &[f32], (h, w): (usize, usize), height: usize, width: usize) -> Vec<f32> {
    let mut out = vec![0.0; height * width];
    let coord = |o: usize, n_out: usize, n_in: usize| -> (usize, usize, f32) {
        let c = ((o as f32 + 0.5) * n_in as f32 / n_out as f32 - 0.5).clamp(0.0, (n_in - 1) as f32);
        let i0 = c.floor() as usize;
        let i1 = (i0 + 1).min(n_in - 1);
        (i0, i1, c - i0 as f32)
    };
    let cols: Vec<_> = (0..width).map(|x| coord(x, width, w)).collect();
    for y in 0..height {
        let (r0, r1, fy) = coord(y, height, h);
        for (x, &(c0, c1, fx)) in cols.iter().enumerate() {
            let top = map[r0 * w + c0] * (1.0 - fx) + map[r0 * w + c1] * fx;
            let bottom = map[r1 * w + c0] * (1.0 - fx) + map[r1 * w + c1] * fx;
            out[y * width + x] = top * (1.0 - fy) + bottom * fy;
        }
    }
    out
}

/// Frames of one video, written as MP4 (ffmpeg on PATH) or animated GIF.
pub struct Video {
    pub frames: Vec<Rgb>,
    pub fps: u32,
}

impl Video {
    /// Writes `<stem>.mp4` when ffmpeg is available and `prefer_gif` is off,
    /// else `<stem>.gif`. Returns the path written.
    pub fn write(&self, stem: &Path, prefer_gif: bool) -> Result<std::path::PathBuf> {
        if !prefer_gif && ffmpeg_available() {
            let path = stem.with_extension("mp4");
            self.write_mp4(&path)?;
            return Ok(path);
        }
        let path = stem.with_extension("gif");
        self.write_gif(&path)?;
        Ok(path)
    }

    pub fn write_gif(&self, path: &Path) -> Result<()> {
        let Some(first) = self.frames.first() else { bail!("no frames to write") };
        let file =
            std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
        let mut enc = gif::Encoder::new(
            std::io::BufWriter::new(file),
            first.width as u16,
            first.height as u16,
            &[],
        )?;
        enc.set_repeat(gif::Repeat::Infinite)?;
        let delay = (100 / self.fps.max(1)).max(2) as u16;
        for f in &self.frames {
            let mut frame =
                gif::Frame::from_rgb_speed(f.width as u16, f.height as u16, &f.data, 10);
            frame.delay = delay;
            enc.write_frame(&frame)?;
        }
        Ok(())
    }

    pub fn write_mp4(&self, path: &Path) -> Result<()> {
        let Some(first) = self.frames.first() else { bail!("no frames to write") };
        // yuv420p needs even sizes: pad by one pixel where needed.
        let (w, h) = (first.width + first.width % 2, first.height + first.height % 2);
        let mut child = Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s"])
            .arg(format!("{w}x{h}"))
            .args([
                "-r",
                &self.fps.to_string(),
                "-i",
                "-",
                "-pix_fmt",
                "yuv420p",
                "-vcodec",
                "libx264",
            ])
            .arg(path)
            .stdin(Stdio::piped())
            .spawn()
            .context("start ffmpeg")?;
        {
            let stdin = child.stdin.as_mut().expect("piped");
            for f in &self.frames {
                let mut padded = Rgb::new(w, h, [0; 3]);
                padded.blit(f, 0, 0);
                stdin.write_all(&padded.data)?;
            }
        }
        let status = child.wait()?;
        if !status.success() {
            bail!("ffmpeg failed writing {}: {status}", path.display());
        }
        Ok(())
    }
}

pub fn ffmpeg_available() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// 5x7 glyphs, one byte per row, bit 4 = leftmost column. Digits, capitals
/// (lower case is drawn as upper case) and a little punctuation.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        ',' => [0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '+' => [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '=' => [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00],
        '/' => [0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        _ => [0; 7],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_keeps_constant_maps_and_corners() {
        let map = vec![2.0f32; 6];
        assert!(resize_map(&map, (2, 3), 10, 9).iter().all(|&v| (v - 2.0).abs() < 1e-6));
        // A single hot cell in the top-left corner stays hottest there.
        let mut map = vec![0.0f32; 4];
        map[0] = 1.0;
        let out = resize_map(&map, (2, 2), 8, 8);
        assert_eq!(out[0], 1.0);
        assert!(out[7 * 8 + 7] < 1e-6);
    }

    #[test]
    fn png_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let mut img = Rgb::new(7, 5, [10, 20, 30]);
        img.put(3, 2, [255, 0, 0]);
        img.text(0, 0, "A1", 1, [1, 2, 3]);
        let path = dir.path().join("x.png");
        img.write_png(&path).unwrap();
        let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (7, 5));
        assert_eq!(&buf[..info.buffer_size()], &img.data[..]);
    }
}
