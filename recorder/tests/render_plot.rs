//! `recorder render` and `recorder plot` produce files that we open and check:
//! frame counts and sizes, and that blended pixels move toward the head's
//! colour where attention is high and keep the raw frame where it is near zero.

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

fn read_png(path: &Path) -> (usize, usize, Vec<u8>) {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width as usize, info.height as usize, buf)
}

/// Frames of a GIF as RGB, with their size.
fn read_gif(path: &Path) -> Vec<(usize, usize, Vec<u8>)> {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut dec = opts.read_info(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(f) = dec.read_next_frame().unwrap() {
        let rgb: Vec<u8> = f.buffer.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
        out.push((f.width as usize, f.height as usize, rgb));
    }
    out
}

fn px(img: &[u8], width: usize, x: usize, y: usize) -> [i32; 3] {
    let i = (y * width + x) * 3;
    [img[i] as i32, img[i + 1] as i32, img[i + 2] as i32]
}

fn max_diff(a: [i32; 3], b: [i32; 3]) -> i32 {
    (0..3).map(|k| (a[k] - b[k]).abs()).max().unwrap()
}

/// The heads' overlay colours, in `recorder render`'s order
/// (`HEAD_COLOURS` in recorder/src/render.rs).
const HEAD_COLOURS: [[i32; 3]; 6] =
    [[255, 48, 48], [48, 255, 48], [64, 128, 255], [255, 220, 0], [255, 0, 255], [0, 255, 255]];

/// Whether a blended pixel went at least half the way from the frame's pixel
/// `raw` to the head's colour, in every channel (`tolerance` for the GIF's
/// quantisation). Where attention is highest the overlay's weight is
/// 1 - bias = 0.7 (times the bilinearly resized map, near 1 at the cell's
/// centre). A fixed threshold on the difference from `raw` fails where a
/// frame happens to be near a head's colour in some channels.
fn went_toward(head: usize, blended: [i32; 3], raw: [i32; 3], tolerance: i32) -> bool {
    let colour = HEAD_COLOURS[head % HEAD_COLOURS.len()];
    // The test means something only where the colour is far from the frame.
    assert!(max_diff(colour, raw) > 40, "head {head}: frame pixel {raw:?} too close to {colour:?}");
    (0..3).all(|k| {
        let half = raw[k] + (colour[k] - raw[k]) / 2;
        let (lo, hi) = (half.min(colour[k]), half.max(colour[k]));
        (lo - tolerance..=hi + tolerance).contains(&blended[k])
    })
}

#[test]
fn render_blends_attention_where_it_is_high_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let rec = Recorder::start(root, &["--rotate-seconds", "0.1"]);
    let push = push(root);
    let mut sent = Sent::default();
    for c in episode(uid(0, 0, 1), &[5, 7], true) {
        send(&push, &c);
        sent.record(&c);
    }
    wait_for(20.0, "the episode", || rec.log().contains("episode recorded"));
    rec.stop();

    let out = root.join("render");
    let status = Command::new(recorder_bin())
        .args([
            "render",
            "--episode",
            "best",
            "--gif",
            "--scale",
            "1",
            "--sheet-steps",
            "3",
            "--out",
        ])
        .arg(&out)
        .arg(run_dir(root))
        .status()
        .unwrap();
    assert!(status.success());
    let cfg = cfg();
    let (gh, gw) = cfg.grid();
    let frames = &sent.fields["frame"].0;
    let raw = |t: usize| &frames[t * H * W * 3..(t + 1) * H * W * 3];
    // Pixel centre of the hot cell of `head` at step t (support::hot_attention), and a far corner.
    let hot = |head: usize, t: usize| {
        let (r, c) = (head + 1, 2 + t % 5);
        (
            ((c as f32 + 0.5) * W as f32 / gw as f32) as usize,
            ((r as f32 + 0.5) * H as f32 / gh as f32) as usize,
        )
    };
    let far = (W - 1, H - 1);

    // Videos: one frame per step, frame-sized; the grid holds the frame and every head.
    for head in 0..cfg.heads {
        let gif = read_gif(&out.join(format!("head{head}.gif")));
        assert_eq!(gif.len(), 12, "head {head}: one GIF frame per step");
        for (t, (w, h, img)) in gif.iter().enumerate() {
            assert_eq!((*w, *h), (W, H));
            let (x, y) = hot(head, t);
            let (got, was) = (px(img, W, x, y), px(raw(t), W, x, y));
            assert!(
                went_toward(head, got, was, 12),
                "head {head} step {t}: hot pixel {got:?} not blended from {was:?} toward its colour"
            );
            // GIF quantisation allows a small error where nothing is blended.
            assert!(
                max_diff(px(img, W, far.0, far.1), px(raw(t), W, far.0, far.1)) <= 12,
                "far pixel changed"
            );
        }
    }
    let grid = read_gif(&out.join("grid.gif"));
    assert_eq!(grid.len(), 12);
    assert!(
        grid[0].0 >= (1 + cfg.heads) * W && grid[0].1 >= H,
        "grid size {:?}",
        (grid[0].0, grid[0].1)
    );

    // Contact sheet: lossless PNG, exact checks using the panel index.
    let (sw, sh, sheet) = read_png(&out.join("sheet.png"));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("sheet.json")).unwrap()).unwrap();
    let panels = index["panels"].as_array().unwrap();
    assert_eq!(panels.len(), 3 * (1 + cfg.heads));
    let mut checked = 0;
    for p in panels {
        let (x0, y0) = (p["x"].as_u64().unwrap() as usize, p["y"].as_u64().unwrap() as usize);
        assert!(x0 + W <= sw && y0 + H <= sh);
        let t = p["step"].as_u64().unwrap() as usize;
        let at = |x: usize, y: usize| px(&sheet, sw, x0 + x, y0 + y);
        let kind = p["kind"].as_str().unwrap();
        if kind == "frame" {
            for y in 0..H {
                for x in 0..W {
                    assert_eq!(at(x, y), px(raw(t), W, x, y), "raw frame panel differs at {x},{y}");
                }
            }
            continue;
        }
        let head: usize = kind.trim_start_matches("head").parse().unwrap();
        let (hx, hy) = hot(head, t);
        let (got, was) = (at(hx, hy), px(raw(t), W, hx, hy));
        assert!(went_toward(head, got, was, 1), "{kind} step {t}: hot pixel {got:?} from {was:?}");
        // Near-zero attention (more than two cells from the hot one): exactly the frame.
        let (cell_h, cell_w) = (H as f32 / gh as f32, W as f32 / gw as f32);
        for y in 0..H {
            for x in 0..W {
                let dy = (y as f32 - hy as f32).abs() / cell_h;
                let dx = (x as f32 - hx as f32).abs() / cell_w;
                if dx > 2.0 || dy > 2.0 {
                    assert_eq!(
                        at(x, y),
                        px(raw(t), W, x, y),
                        "{kind} step {t}: pixel {x},{y} far from attention changed"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 1000);
    let (ww, wh, _) = read_png(&out.join("whatwhere.png"));
    assert_eq!((ww, wh), (sw, sh), "what/where sheet has the contact sheet's layout");
}

#[test]
fn plot_draws_each_run_in_its_colour() {
    let dir = tempfile::tempdir().unwrap();
    let header = "time,step,agent_steps,frames,sps,fps,total_loss,pg_loss,baseline_loss,entropy_loss,mean_episode_return,episodes";
    for (run, slope) in [("run-a", 1.0), ("run-b", -1.0)] {
        let d = dir.path().join(run);
        std::fs::create_dir_all(&d).unwrap();
        let mut csv = format!("{header}\n");
        for i in 0..50 {
            let ret = if i % 7 == 3 {
                "NaN".to_string()
            } else {
                format!("{}", 100.0 + slope * i as f64)
            };
            csv.push_str(&format!(
                "{i},{i},{},{},1,1,{},0.1,0.2,-0.3,{ret},1\n",
                i * 800,
                i * 3200,
                5.0 - 0.05 * i as f64
            ));
        }
        std::fs::write(d.join("logs.csv"), csv).unwrap();
    }
    let out = dir.path().join("plots");
    let output = Command::new(recorder_bin())
        .arg("plot")
        .arg(dir.path().join("run-a"))
        .arg(dir.path().join("run-b"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for name in ["mean_episode_return", "total_loss", "pg_loss", "baseline_loss", "entropy_loss"] {
        let (w, h, _) = read_png(&out.join(format!("{name}.png")));
        assert_eq!((w, h), (640, 300));
    }
    let (w, h, _) = read_png(&out.join("curves.png"));
    assert_eq!((w, h), (640, 1500));
    // Return rises for run-a (first colour) and falls for run-b (second colour):
    // the mean row of each colour's pixels in the left and right thirds of the plot.
    let (w, _, img) = read_png(&out.join("mean_episode_return.png"));
    let colours = [[31u8, 119, 180], [255, 127, 14]];
    let mean_row = |c: [u8; 3], x_lo: usize, x_hi: usize| {
        let mut ys = Vec::new();
        for y in 30..280 {
            for x in x_lo..x_hi {
                let i = (y * w + x) * 3;
                if img[i..i + 3] == c {
                    ys.push(y as f64);
                }
            }
        }
        assert!(!ys.is_empty(), "colour {c:?} missing in columns {x_lo}..{x_hi}");
        ys.iter().sum::<f64>() / ys.len() as f64
    };
    let (a_left, a_right) = (mean_row(colours[0], 70, 230), mean_row(colours[0], 430, 560));
    let (b_left, b_right) = (mean_row(colours[1], 70, 230), mean_row(colours[1], 430, 560));
    assert!(a_right < a_left - 20.0, "run-a rises (smaller row = higher): {a_left} -> {a_right}");
    assert!(b_right > b_left + 20.0, "run-b falls: {b_left} -> {b_right}");
}
