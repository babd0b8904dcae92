//! `recorder plot`: learning curves from the `logs.csv` of one or more runs,
//! against environment frames, drawn as PNG with the built-in bitmap font.
//! One picture per metric (`<metric>.png`) and all of them stacked
//! (`curves.png`); several runs share each plot, one colour per run, named in
//! the legend by their run directory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::image::{text_width, Rgb};

#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// Run directories (each with a logs.csv) or logs.csv files.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Output directory (default: `<first run>/plots`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Column for the x axis.
    #[arg(long, default_value = "frames")]
    pub x: String,
    /// Columns to plot, one picture each (missing columns are skipped).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "mean_episode_return,total_loss,pg_loss,baseline_loss,entropy_loss"
    )]
    pub y: Vec<String>,
    /// Moving average over this many rows (NaN rows skipped), for noisy returns.
    #[arg(long, default_value_t = 1)]
    pub smooth: usize,
    /// Picture size in pixels.
    #[arg(long, default_value_t = 640)]
    pub width: usize,
    #[arg(long, default_value_t = 300)]
    pub height: usize,
}

/// The columns of one logs.csv.
pub struct Table {
    pub name: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<f64>>,
}

impl Table {
    pub fn read(path: &Path, name: String) -> Result<Table> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let mut lines = text.lines();
        let header: Vec<String> = match lines.next() {
            Some(h) => h.split(',').map(|s| s.trim().to_owned()).collect(),
            None => bail!("{} is empty", path.display()),
        };
        let rows = lines
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split(',').map(|v| v.trim().parse::<f64>().unwrap_or(f64::NAN)).collect())
            .collect();
        Ok(Table { name, header, rows })
    }

    /// (x, y) points where both are finite.
    pub fn series(&self, x: &str, y: &str, smooth: usize) -> Option<Vec<(f64, f64)>> {
        let xi = self.header.iter().position(|h| h == x)?;
        let yi = self.header.iter().position(|h| h == y)?;
        let pts: Vec<(f64, f64)> = self
            .rows
            .iter()
            .filter_map(|r| Some((*r.get(xi)?, *r.get(yi)?)))
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .collect();
        if smooth <= 1 {
            return Some(pts);
        }
        Some(
            (0..pts.len())
                .map(|i| {
                    let lo = i.saturating_sub(smooth - 1);
                    let w = &pts[lo..=i];
                    (pts[i].0, w.iter().map(|p| p.1).sum::<f64>() / w.len() as f64)
                })
                .collect(),
        )
    }
}

pub const RUN_COLOURS: [[u8; 3]; 6] =
    [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75]];

/// Compact number for tick labels: 3 significant digits, E notation for large/small.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-2..1e4).contains(&a) {
        let e = a.log10().floor() as i32;
        format!("{:.1}E{}", v / 10f64.powi(e), e)
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

const MARGIN_L: usize = 60;
const MARGIN_R: usize = 10;
const MARGIN_T: usize = 22;
const MARGIN_B: usize = 24;

/// One line plot of `series` (name, points) for metric `title`, one colour per series.
pub fn line_plot(
    title: &str,
    xlabel: &str,
    series: &[(String, Vec<(f64, f64)>)],
    width: usize,
    height: usize,
) -> Rgb {
    let lines: Vec<Line> = series
        .iter()
        .enumerate()
        .map(|(k, (name, points))| Line {
            name: name.clone(),
            points: points.clone(),
            colour: RUN_COLOURS[k % RUN_COLOURS.len()],
            dashed: false,
        })
        .collect();
    lines_plot(title, xlabel, &lines, None, width, height)
}

/// One line of [`lines_plot`].
#[derive(Clone, Debug)]
pub struct Line {
    /// Legend entry; lines with an empty name are left out of the legend.
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub colour: [u8; 3],
    pub dashed: bool,
}

/// Dash pattern of dashed lines: pixels drawn, pixels skipped.
const DASH: (usize, usize) = (4, 3);

/// A line plot of `lines` with their own colours and dashes, titled `title`;
/// `y_range` fixes the y axis (else it spans the data).
pub fn lines_plot(
    title: &str,
    xlabel: &str,
    lines: &[Line],
    y_range: Option<(f64, f64)>,
    width: usize,
    height: usize,
) -> Rgb {
    let mut img = Rgb::new(width, height, [255, 255, 255]);
    let all: Vec<(f64, f64)> = lines.iter().flat_map(|l| l.points.iter().copied()).collect();
    let (mut x0, mut x1, mut y0, mut y1) =
        (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in &all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if all.is_empty() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if let Some((lo, hi)) = y_range {
        (y0, y1) = (lo, hi);
    }
    if x1 <= x0 {
        x0 -= 0.5;
        x1 += 0.5;
    }
    if y1 <= y0 {
        y0 -= 0.5;
        y1 += 0.5;
    }
    let (pw, ph) = (width - MARGIN_L - MARGIN_R, height - MARGIN_T - MARGIN_B);
    let px = |x: f64| MARGIN_L as i64 + ((x - x0) / (x1 - x0) * pw as f64).round() as i64;
    let py = |y: f64| (MARGIN_T + ph) as i64 - ((y - y0) / (y1 - y0) * ph as f64).round() as i64;
    // Axes, grid and tick labels (ends and middle).
    let grey = [200, 200, 200];
    let black = [0, 0, 0];
    for k in 0..=4 {
        let gy = MARGIN_T as i64 + (k * ph / 4) as i64;
        img.line(MARGIN_L as i64, gy, (MARGIN_L + pw) as i64, gy, grey);
        let v = y1 - (y1 - y0) * k as f64 / 4.0;
        let s = fmt_num(v);
        img.text(MARGIN_L as i64 - 4 - text_width(&s, 1) as i64, gy - 3, &s, 1, black);
    }
    img.line(MARGIN_L as i64, MARGIN_T as i64, MARGIN_L as i64, (MARGIN_T + ph) as i64, black);
    img.line(
        MARGIN_L as i64,
        (MARGIN_T + ph) as i64,
        (MARGIN_L + pw) as i64,
        (MARGIN_T + ph) as i64,
        black,
    );
    for k in 0..=4 {
        let v = x0 + (x1 - x0) * k as f64 / 4.0;
        let gx = px(v);
        img.line(gx, (MARGIN_T + ph) as i64, gx, (MARGIN_T + ph + 3) as i64, black);
        let s = fmt_num(v);
        let tx = (gx - text_width(&s, 1) as i64 / 2).clamp(0, (width - text_width(&s, 1)) as i64);
        img.text(tx, (MARGIN_T + ph + 6) as i64, &s, 1, black);
    }
    let xl = xlabel;
    img.text((MARGIN_L + pw - text_width(xl, 1)) as i64, (height - 9) as i64, xl, 1, [90, 90, 90]);
    img.text(MARGIN_L as i64, 4, title, 2, black);
    // Lines.
    for line in lines {
        let (c, pts) = (line.colour, &line.points);
        let dash = if line.dashed { DASH } else { (1, 0) };
        for w in pts.windows(2) {
            img.dashed_line(px(w[0].0), py(w[0].1), px(w[1].0), py(w[1].1), c, dash);
        }
        if let [(x, y)] = pts[..] {
            // A lone point: a square, hollow for a dashed line.
            let (x, y) = (px(x), py(y));
            img.fill_rect(x - 2, y - 2, 5, 5, c);
            if line.dashed {
                img.fill_rect(x - 1, y - 1, 3, 3, [255, 255, 255]);
            }
        }
    }
    // Legend, top right.
    let mut ly = MARGIN_T as i64 + 4;
    for line in lines.iter().filter(|l| !l.name.is_empty()) {
        let lx = (MARGIN_L + pw) as i64 - text_width(&line.name, 1) as i64 - 16;
        if line.dashed {
            img.fill_rect(lx, ly + 2, 4, 3, line.colour);
            img.fill_rect(lx + 7, ly + 2, 3, 3, line.colour);
        } else {
            img.fill_rect(lx, ly + 2, 10, 3, line.colour);
        }
        img.text(lx + 13, ly, &line.name, 1, black);
        ly += 10;
    }
    img
}

pub fn plot(args: PlotArgs) -> Result<()> {
    let mut tables = Vec::new();
    for run in &args.runs {
        let (csv, name) = if run.is_dir() {
            (
                run.join("logs.csv"),
                run.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            )
        } else {
            let dir =
                run.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
            (run.clone(), dir.unwrap_or_else(|| run.display().to_string()))
        };
        tables.push(Table::read(&csv, name)?);
    }
    let out = match &args.out {
        Some(o) => o.clone(),
        None if args.runs[0].is_dir() => args.runs[0].join("plots"),
        None => PathBuf::from("plots"),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let mut pictures = Vec::new();
    for y in &args.y {
        let series: Vec<(String, Vec<(f64, f64)>)> = tables
            .iter()
            .filter_map(|t| Some((t.name.clone(), t.series(&args.x, y, args.smooth)?)))
            .collect();
        if series.is_empty() {
            eprintln!("no column {y:?} (or {:?}) in any logs.csv; skipped", args.x);
            continue;
        }
        let img = line_plot(y, &args.x, &series, args.width, args.height);
        let path = out.join(format!("{y}.png"));
        img.write_png(&path)?;
        println!("{}", path.display());
        pictures.push(img);
    }
    if pictures.is_empty() {
        bail!("nothing to plot");
    }
    let mut all = Rgb::new(args.width, args.height * pictures.len(), [255, 255, 255]);
    for (k, p) in pictures.iter().enumerate() {
        all.blit(p, 0, k * args.height);
    }
    let path = out.join("curves.png");
    all.write_png(&path)?;
    println!("{}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_compactly() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(1.5), "1.50");
        assert_eq!(fmt_num(250.0), "250");
        assert_eq!(fmt_num(2.5e6), "2.5E6");
        assert_eq!(fmt_num(-0.001), "-1.0E-3");
    }

    #[test]
    fn series_skips_nan_and_smooths() {
        let t = Table {
            name: "r".into(),
            header: vec!["frames".into(), "ret".into()],
            rows: vec![vec![0.0, 1.0], vec![1.0, f64::NAN], vec![2.0, 3.0], vec![3.0, 5.0]],
        };
        assert_eq!(t.series("frames", "ret", 1).unwrap(), vec![(0.0, 1.0), (2.0, 3.0), (3.0, 5.0)]);
        assert_eq!(t.series("frames", "ret", 2).unwrap(), vec![(0.0, 1.0), (2.0, 2.0), (3.0, 4.0)]);
        assert!(t.series("frames", "nope", 1).is_none());
    }
}
