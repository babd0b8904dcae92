//! The analysis as a terminal table, as CSV and as a plot of the share over
//! training.

use std::fmt::Write as _;

use crate::image::Rgb;
use crate::plot::{lines_plot, Line};
use crate::render::head_colour;

use super::*;

pub(super) fn fmt_opt(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "-".into()
    }
}

/// The table as printed on the terminal.
pub fn table(rows: &[Row], radius: f32) -> String {
    let mut out = format!(
        "share: attention mass within {radius:.1} px of the kind's nearest object; \
         peak: px from the map's highest cell to it; shuf = time-shuffled, unif = uniform map\n"
    );
    let _ = writeln!(
        out,
        "{:>17} {:>4} {:<16} {:>7} {:>7} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "params",
        "head",
        "kind",
        "steps",
        "present",
        "share",
        "shuf",
        "unif",
        "peak",
        "shuf",
        "unif",
        "entropy",
        "unif"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:>17} {:>4} {:<16} {:>7} {:>7} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7}",
            format!("{}-{}", r.params_first, r.params_last),
            r.head,
            r.kind,
            r.steps,
            r.present,
            fmt_opt(r.share, 3),
            fmt_opt(r.share_shuffled, 3),
            fmt_opt(r.share_uniform, 3),
            fmt_opt(r.peak_distance, 1),
            fmt_opt(r.peak_distance_shuffled, 1),
            fmt_opt(r.peak_distance_uniform, 1),
            fmt_opt(r.entropy, 2),
            fmt_opt(r.entropy_uniform, 2),
        );
    }
    out
}

/// A CSV field of a mean: six decimals, empty when undefined.
fn mean(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.6}")
    } else {
        String::new()
    }
}

/// The CSV's columns, declared once: each name and how a row (with the
/// analysis radius) writes it.
type Column = (&'static str, fn(&Row, f32) -> String);
pub const CSV_COLUMNS: &[Column] = &[
    ("params_first", |r, _| r.params_first.to_string()),
    ("params_last", |r, _| r.params_last.to_string()),
    ("params_mean", |r, _| mean(r.params_mean)),
    ("head", |r, _| r.head.to_string()),
    ("kind", |r, _| r.kind.clone()),
    ("radius", |_, radius| radius.to_string()),
    ("episodes", |r, _| r.episodes.to_string()),
    ("steps", |r, _| r.steps.to_string()),
    ("present", |r, _| r.present.to_string()),
    ("shuffled", |r, _| r.shuffled.to_string()),
    ("share", |r, _| mean(r.share)),
    ("share_shuffled", |r, _| mean(r.share_shuffled)),
    ("share_uniform", |r, _| mean(r.share_uniform)),
    ("peak_distance", |r, _| mean(r.peak_distance)),
    ("peak_distance_shuffled", |r, _| mean(r.peak_distance_shuffled)),
    ("peak_distance_uniform", |r, _| mean(r.peak_distance_uniform)),
    ("entropy", |r, _| mean(r.entropy)),
    ("entropy_uniform", |r, _| mean(r.entropy_uniform)),
];

/// The table as CSV ([`CSV_COLUMNS`]); undefined means are empty fields.
pub fn csv(rows: &[Row], radius: f32) -> String {
    let names: Vec<&str> = CSV_COLUMNS.iter().map(|(name, _)| *name).collect();
    let mut out = names.join(",") + "\n";
    for r in rows {
        let fields: Vec<String> = CSV_COLUMNS.iter().map(|(_, field)| field(r, radius)).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

pub(super) const PANEL: (usize, usize) = (640, 260);

/// The share over training: one panel per kind that was ever present, a
/// solid line per head, the head's time-shuffled baseline dashed in its
/// colour, the uniform baseline dashed in grey.
pub fn share_plot(rows: &[Row], kinds: &[String], radius: f32) -> Option<Rgb> {
    let heads = rows.iter().map(|r| r.head + 1).max().unwrap_or(0);
    let mut panels = Vec::new();
    for kind in kinds {
        let of = |head: usize| rows.iter().filter(move |r| &r.kind == kind && r.head == head);
        if !rows.iter().any(|r| &r.kind == kind && r.present > 0) {
            continue;
        }
        let series = |head: usize, y: fn(&Row) -> f64| -> Vec<(f64, f64)> {
            of(head).map(|r| (r.params_mean, y(r))).filter(|p| p.1.is_finite()).collect()
        };
        let mut lines = Vec::new();
        for head in 0..heads {
            lines.push(Line {
                name: format!("head {head}"),
                points: series(head, |r| r.share),
                colour: head_colour(head),
                dashed: false,
            });
            lines.push(Line {
                name: String::new(),
                points: series(head, |r| r.share_shuffled),
                colour: head_colour(head),
                dashed: true,
            });
        }
        lines.push(Line {
            name: "time-shuffled (head colour)".into(),
            points: Vec::new(),
            colour: [60, 60, 60],
            dashed: true,
        });
        lines.push(Line {
            name: "uniform".into(),
            points: series(0, |r| r.share_uniform),
            colour: [150, 150, 150],
            dashed: true,
        });
        let title = format!("{kind}: share within {radius:.1} px");
        panels.push(lines_plot(
            &title,
            "params version",
            &lines,
            Some((0.0, 1.0)),
            PANEL.0,
            PANEL.1,
        ));
    }
    if panels.is_empty() {
        return None;
    }
    let mut all = Rgb::new(PANEL.0, PANEL.1 * panels.len(), [255, 255, 255]);
    for (k, p) in panels.iter().enumerate() {
        all.blit(p, 0, k * PANEL.1);
    }
    Some(all)
}
