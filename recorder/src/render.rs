//! `recorder render`: attention videos and pictures of one recorded episode.
//!
//! Blending (after section 4.3 of the Brown reproduction): each head's map is
//! scaled so its maximum is 1, resized bilinearly to the frame, and each pixel
//! becomes a weighted average, per RGB channel, of the frame and the head's
//! colour, `out = (1 - w) * frame + w * colour` with `w = (1 - bias) * m`.
//! The bias is the frame's weight where attention is highest, so the frame
//! always stays visible; where attention is near zero the pixel is the frame's.
//!
//! What/where (the paper's figure 6 recipe): per grid cell, the difference
//! content logit - place logit, clipped to [-ln 10, ln 10], coloured from blue
//! ("where": the spatial basis dominates) through white to red ("what": the
//! keys dominate), and blended over the frame with the attention weight as
//! above.
//!
//! Outputs in the output directory: `head<k>.mp4|gif` per head, `grid.mp4|gif`
//! (raw frame and all heads side by side), `sheet.png` (a contact sheet of a
//! few steps) with `sheet.json` (where each panel is), `whatwhere.png`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tracing::info;

use crate::image::{resize_map, text_width, Rgb, Video};
use crate::reader::{list_episodes, load, select, EpisodeData};

#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// Run directories (their closed `episodes-*.h5`) or segment files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Which episode: a uid (`a0-e1-n3`), `best` (highest return) or `latest`.
    #[arg(long, default_value = "best")]
    pub episode: String,
    /// Output directory (default: `<run dir>/videos/<uid>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// First step to render.
    #[arg(long, default_value_t = 0)]
    pub start: usize,
    /// Render every k-th step.
    #[arg(long, default_value_t = 1)]
    pub stride: usize,
    /// Render at most this many steps.
    #[arg(long, default_value_t = 500)]
    pub max_steps: usize,
    /// Weight of the frame where attention is highest (0: full colour, 1: no overlay).
    #[arg(long, default_value_t = 0.3)]
    pub bias: f32,
    /// Frames per second of the videos.
    #[arg(long, default_value_t = 15)]
    pub fps: u32,
    /// Write GIF even when ffmpeg is available.
    #[arg(long)]
    pub gif: bool,
    /// Integer upscale of the frames (default: enough for about 160 rows).
    #[arg(long)]
    pub scale: Option<usize>,
    /// Steps shown in the contact sheet and the what/where picture.
    #[arg(long, default_value_t = 6)]
    pub sheet_steps: usize,
}

/// Colour of each head's overlay (cycled past four heads).
pub const HEAD_COLOURS: [[u8; 3]; 6] =
    [[255, 48, 48], [48, 255, 48], [64, 128, 255], [255, 220, 0], [255, 0, 255], [0, 255, 255]];

pub fn head_colour(head: usize) -> [u8; 3] {
    HEAD_COLOURS[head % HEAD_COLOURS.len()]
}

/// The map divided by its maximum (all zeros if the maximum is not positive).
fn normalised(map: &[f32]) -> Vec<f32> {
    let max = map.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max.is_finite() && max > 0.0 {
        map.iter().map(|v| (v / max).max(0.0)).collect()
    } else {
        vec![0.0; map.len()]
    }
}

/// Blends per-pixel colours over the frame: `w = (1 - bias) * weight`.
fn blend_with(frame: &Rgb, weight: &[f32], colour: impl Fn(usize) -> [f32; 3], bias: f32) -> Rgb {
    let mut out = frame.clone();
    for (p, &m) in weight.iter().enumerate() {
        let w = (1.0 - bias) * m.clamp(0.0, 1.0);
        let c = colour(p);
        for (ch, &target) in c.iter().enumerate() {
            let f = frame.data[p * 3 + ch] as f32;
            out.data[p * 3 + ch] = ((1.0 - w) * f + w * target).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// One head's attention map (`grid` cells) blended into the frame in `colour`.
pub fn blend(frame: &Rgb, map: &[f32], grid: (usize, usize), bias: f32, colour: [u8; 3]) -> Rgb {
    let m = resize_map(&normalised(map), grid, frame.height, frame.width);
    let c = [colour[0] as f32, colour[1] as f32, colour[2] as f32];
    blend_with(frame, &m, |_| c, bias)
}

/// What/where picture of one head: red = content ("what"), blue = place ("where").
pub fn what_where(
    frame: &Rgb,
    att: &[f32],
    content: &[f32],
    place: &[f32],
    grid: (usize, usize),
    bias: f32,
) -> Rgb {
    let ln10 = 10f32.ln();
    let diff: Vec<f32> =
        content.iter().zip(place).map(|(c, p)| ((c - p) / ln10).clamp(-1.0, 1.0)).collect();
    let d = resize_map(&diff, grid, frame.height, frame.width);
    let m = resize_map(&normalised(att), grid, frame.height, frame.width);
    blend_with(
        frame,
        &m,
        |p| {
            let t = d[p].abs();
            let hue = if d[p] >= 0.0 { [255.0, 0.0, 0.0] } else { [0.0, 64.0, 255.0] };
            [
                255.0 * (1.0 - t) + hue[0] * t,
                255.0 * (1.0 - t) + hue[1] * t,
                255.0 * (1.0 - t) + hue[2] * t,
            ]
        },
        bias,
    )
}

/// Space above each panel for its label.
const LABEL: usize = 10;
const PAD: usize = 4;

/// A row of labelled panels.
fn panel_row(panels: &[(String, Rgb)]) -> (Rgb, Vec<(usize, usize)>) {
    let (pw, ph) = (panels[0].1.width, panels[0].1.height);
    let width = panels.len() * (pw + PAD) + PAD;
    let mut row = Rgb::new(width, ph + LABEL + PAD, [0, 0, 0]);
    let mut at = Vec::new();
    for (i, (label, img)) in panels.iter().enumerate() {
        let x = PAD + i * (pw + PAD);
        let scale = if text_width(label, 1) <= pw { 1 } else { 0 };
        if scale > 0 {
            row.text(x as i64, 1, label, 1, [230, 230, 230]);
        }
        row.blit(img, x, LABEL);
        at.push((x, LABEL));
    }
    (row, at)
}

/// One step as `recorder render`'s grid shows it: the frame, then each
/// head's map blended into it in the head's colour, side by side, scaled by
/// `scale`. Returns the grid and the heads' panels.
pub fn step_grid<'a>(
    frame: &Rgb,
    label: &str,
    heads: usize,
    map: impl Fn(usize) -> &'a [f32],
    grid: (usize, usize),
    bias: f32,
    scale: usize,
) -> (Rgb, Vec<Rgb>) {
    let mut panels = vec![(label.to_string(), frame.scale(scale))];
    let mut blended = Vec::with_capacity(heads);
    for h in 0..heads {
        let b = blend(frame, map(h), grid, bias, head_colour(h)).scale(scale);
        blended.push(b.clone());
        panels.push((format!("HEAD {h}"), b));
    }
    (panel_row(&panels).0, blended)
}

fn stack(rows: &[Rgb]) -> Rgb {
    let width = rows.iter().map(|r| r.width).max().unwrap_or(1);
    let height = rows.iter().map(|r| r.height).sum();
    let mut out = Rgb::new(width, height, [0, 0, 0]);
    let mut y = 0;
    for r in rows {
        out.blit(r, 0, y);
        y += r.height;
    }
    out
}

pub fn render(args: RenderArgs) -> Result<()> {
    let episodes = list_episodes(&args.paths)?;
    let ep = select(&episodes, &args.episode)?;
    let data = load(ep, args.start, args.stride, args.max_steps)?;
    let out_dir = match &args.out {
        Some(d) => d.clone(),
        None => {
            let base = if args.paths[0].is_dir() {
                args.paths[0].clone()
            } else {
                args.paths[0].parent().map(Path::to_path_buf).unwrap_or_default()
            };
            base.join("videos").join(&ep.name)
        }
    };
    std::fs::create_dir_all(&out_dir).with_context(|| format!("create {}", out_dir.display()))?;
    let scale = args.scale.unwrap_or((160 / data.height.max(1)).max(1));
    info!(
        episode = %ep.name, steps = data.steps.len(), heads = data.heads, scale,
        "rendering to {}", out_dir.display()
    );

    let mut written = Vec::new();
    let mut heads: Vec<Vec<Rgb>> = vec![Vec::new(); data.heads];
    let mut grid_frames = Vec::new();
    for i in 0..data.steps.len() {
        let frame = Rgb::from_frame(data.width, data.height, data.frame(i));
        let (grid, panels) = step_grid(
            &frame,
            &format!("T{}", data.steps[i]),
            data.heads,
            |h| data.map(&data.attention, i, h),
            data.grid,
            args.bias,
            scale,
        );
        for (frames, panel) in heads.iter_mut().zip(panels) {
            frames.push(panel);
        }
        grid_frames.push(grid);
    }
    for (h, frames) in heads.into_iter().enumerate() {
        written.push(
            Video { frames, fps: args.fps }.write(&out_dir.join(format!("head{h}")), args.gif)?,
        );
    }
    written
        .push(Video { frames: grid_frames, fps: args.fps }.write(&out_dir.join("grid"), args.gif)?);

    let (sheet, index) = contact_sheet(&data, args.sheet_steps, args.bias, scale);
    sheet.write_png(&out_dir.join("sheet.png"))?;
    std::fs::write(out_dir.join("sheet.json"), serde_json::to_vec_pretty(&index)?)?;
    written.push(out_dir.join("sheet.png"));
    let ww = what_where_sheet(&data, args.sheet_steps, args.bias, scale);
    ww.write_png(&out_dir.join("whatwhere.png"))?;
    written.push(out_dir.join("whatwhere.png"));
    for p in &written {
        println!("{}", p.display());
    }
    Ok(())
}

/// Indices (into the loaded steps) of `n` evenly spaced steps.
fn sheet_indices(len: usize, n: usize) -> Vec<usize> {
    let n = n.clamp(1, len);
    (0..n).map(|k| if n == 1 { 0 } else { k * (len - 1) / (n - 1) }).collect()
}

/// Rows = steps; columns = raw frame, then each head's blend. The JSON index
/// says where each panel is (x, y, width, height at `scale`).
fn contact_sheet(
    data: &EpisodeData,
    n: usize,
    bias: f32,
    scale: usize,
) -> (Rgb, serde_json::Value) {
    let mut rows = Vec::new();
    let mut panels_json = Vec::new();
    let mut y0 = 0;
    for i in sheet_indices(data.steps.len(), n) {
        let frame = Rgb::from_frame(data.width, data.height, data.frame(i));
        let mut panels = vec![(format!("T{}", data.steps[i]), frame.scale(scale))];
        for h in 0..data.heads {
            let b = blend(&frame, data.map(&data.attention, i, h), data.grid, bias, head_colour(h));
            panels.push((format!("HEAD {h}"), b.scale(scale)));
        }
        let (row, at) = panel_row(&panels);
        for (k, (x, y)) in at.into_iter().enumerate() {
            panels_json.push(serde_json::json!({
                "step": data.steps[i],
                "kind": if k == 0 { "frame".to_string() } else { format!("head{}", k - 1) },
                "x": x, "y": y0 + y, "width": data.width * scale, "height": data.height * scale,
            }));
        }
        y0 += row.height;
        rows.push(row);
    }
    let index = serde_json::json!({ "scale": scale, "bias": bias, "panels": panels_json });
    (stack(&rows), index)
}

fn what_where_sheet(data: &EpisodeData, n: usize, bias: f32, scale: usize) -> Rgb {
    let mut rows = Vec::new();
    for i in sheet_indices(data.steps.len(), n) {
        let frame = Rgb::from_frame(data.width, data.height, data.frame(i));
        let mut panels = vec![(format!("T{}", data.steps[i]), frame.scale(scale))];
        for h in 0..data.heads {
            let img = what_where(
                &frame,
                data.map(&data.attention, i, h),
                data.map(&data.content, i, h),
                data.map(&data.place, i, h),
                data.grid,
                bias,
            );
            panels.push((format!("H{h} WHAT/WHERE"), img.scale(scale)));
        }
        rows.push(panel_row(&panels).0);
    }
    stack(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blend_changes_pixels_only_where_attention_is() {
        let frame = Rgb::new(20, 10, [100, 100, 100]);
        let mut map = vec![0.0f32; 5 * 4];
        map[0] = 1.0; // top-left cell of a 5x4 grid
        let out = blend(&frame, &map, (5, 4), 0.3, [255, 0, 0]);
        // Top-left pixel: (1 - 0.7) * 100 + 0.7 * 255 = 208.5 -> 209 (red), 30 (green).
        assert_eq!(out.get(0, 0), [209, 30, 30]);
        assert_eq!(out.get(19, 9), [100, 100, 100]);
        // Scaling the map changes nothing: each map is scaled to a maximum of 1.
        let scaled: Vec<f32> = map.iter().map(|v| v * 0.01).collect();
        assert_eq!(blend(&frame, &scaled, (5, 4), 0.3, [255, 0, 0]), out);
        // bias = 1 leaves the frame untouched.
        assert_eq!(blend(&frame, &map, (5, 4), 1.0, [255, 0, 0]), frame);
    }

    #[test]
    fn what_where_colours_content_red_and_place_blue() {
        let frame = Rgb::new(2, 1, [0, 0, 0]);
        let att = [1.0f32, 1.0];
        let content = [5.0f32, 0.0];
        let place = [0.0f32, 5.0];
        let out = what_where(&frame, &att, &content, &place, (1, 2), 0.0);
        let (left, right) = (out.get(0, 0), out.get(1, 0));
        assert!(left[0] > 200 && left[2] < 50, "{left:?}");
        assert!(right[2] > 200 && right[0] < 50, "{right:?}");
    }
}
