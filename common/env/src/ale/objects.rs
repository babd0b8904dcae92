//! Object positions read from the RAM, for games declared as a table: one
//! [`Game`] per game (in [`super::games`]), each object a sprite whose top
//! left corner comes from RAM bytes plus offsets, with its size, when it is
//! on screen and its colours. Seaquest, whose lanes and sprite kinds need
//! logic, has its own decoder ([`super::seaquest`]).
//!
//! The addresses and offsets are facts read from two published tables (each
//! game's file names its sources): the AtariARI annotations of Anand et al.
//! 2019 (`atariari/benchmark/ram_annotations.py`) and OCAtari's RAM
//! extraction (Delfosse et al. 2023, `ocatari/ram/<game>.py`), and checked
//! here against the frames ([`check`]).
//!
//! Positions are centres in the coordinates of every object position of this
//! project: (row, column) of the 210x160 frame, pixel (r, c) centred at
//! (r, c). An absent object is NaN, NaN; every object of the game is reported
//! every step, in the declared order. The kind of an object is its name
//! without the `_<number>` suffix (`recorder analyze` groups by kind).

use super::RAM_SIZE;

/// One game's objects.
pub struct Game {
    /// The ROM name (`ale_py/roms/<name>.bin`).
    pub name: &'static str,
    pub objects: &'static [Object],
}

/// Where a coordinate of an object's top-left corner comes from.
#[derive(Clone, Copy, Debug)]
pub enum Coord {
    /// A RAM byte plus an offset, in frame pixels.
    Ram(usize, f32),
    /// A fixed place (a paddle that moves along one axis only).
    Fixed(f32),
    /// Computed from the RAM; `None`: not on screen.
    From(fn(&[u8; RAM_SIZE]) -> Option<f32>),
}

impl Coord {
    fn read(self, ram: &[u8; RAM_SIZE]) -> Option<f32> {
        match self {
            Coord::Ram(addr, offset) => Some(f32::from(ram[addr]) + offset),
            Coord::Fixed(v) => Some(v),
            Coord::From(f) => f(ram),
        }
    }
}

/// When an object is on screen.
#[derive(Clone, Copy, Debug)]
pub enum Presence {
    Always,
    /// While the RAM byte is not 0.
    NonZero(usize),
    /// While `f` says so.
    When(fn(&[u8; RAM_SIZE]) -> bool),
}

/// One object: a sprite of `size` (height, width) whose top-left pixel is
/// (`top`, `left`), drawn in one of `colours` (RGB, the NTSC palette's).
#[derive(Clone, Copy, Debug)]
pub struct Object {
    pub name: &'static str,
    pub top: Coord,
    pub left: Coord,
    pub size: (f32, f32),
    pub present: Presence,
    pub colours: &'static [[u8; 3]],
}

/// The frame's size.
const ROWS: f32 = 210.0;
const COLUMNS: f32 = 160.0;

impl Object {
    /// The centre (row, column) of the sprite, or None when it is absent or
    /// wholly off the frame.
    pub fn centre(&self, ram: &[u8; RAM_SIZE]) -> Option<(f32, f32)> {
        let present = match self.present {
            Presence::Always => true,
            Presence::NonZero(addr) => ram[addr] != 0,
            Presence::When(f) => f(ram),
        };
        if !present {
            return None;
        }
        let (top, left) = (self.top.read(ram)?, self.left.read(ram)?);
        let (h, w) = self.size;
        let on_frame = top + h > 0.0 && top < ROWS && left + w > 0.0 && left < COLUMNS;
        on_frame.then(|| (top + (h - 1.0) / 2.0, left + (w - 1.0) / 2.0))
    }
}

impl Game {
    /// Every object as (name, row, column), NaN where absent, in order.
    pub fn positions(&self, ram: &[u8; RAM_SIZE]) -> Vec<(&'static str, f32, f32)> {
        self.objects
            .iter()
            .map(|o| {
                let (r, c) = o.centre(ram).unwrap_or((f32::NAN, f32::NAN));
                (o.name, r, c)
            })
            .collect()
    }
}

/// Whether a sprite `height` rows tall with its top row at `top` is inside a
/// field of `rows` (a playfield, a ski slope), a quarter of its height
/// allowed over either edge: cut by more, it is not reported.
pub fn within_rows(top: f32, height: f32, rows: std::ops::Range<f32>) -> bool {
    top >= rows.start - height / 4.0 && top + height <= rows.end + height / 4.0
}

/// The kind of an object: its name without a `_<number>` suffix
/// (`enemy_11` is an `enemy`, `player_missile` a `player_missile`). What
/// `recorder analyze` groups by and the checks count by.
pub fn kind(name: &str) -> &str {
    match name.rsplit_once('_') {
        Some((kind, n))
            if !kind.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            kind
        }
        _ => name,
    }
}

#[cfg(test)]
#[test]
fn kinds_drop_numbered_suffixes_only() {
    assert_eq!(kind("enemy_11"), "enemy");
    assert_eq!(kind("enemy_missile_2"), "enemy_missile");
    assert_eq!(kind("player_missile"), "player_missile");
    assert_eq!(kind("ball"), "ball");
    assert_eq!(kind("_3"), "_3");
    assert_eq!(kind("a_"), "a_");
}

/// The check of a game's table against its frames: random play, and for
/// every reported object whether a pixel of its colour lies within its
/// sprite's box, widened by a tolerance, around the reported centre.
#[cfg(test)]
pub mod check {
    use super::*;
    use crate::ale::Ale;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;

    /// Per kind: (positions checked, positions that landed on their colour).
    pub type Report = BTreeMap<String, (usize, usize)>;

    /// How a game's check is run and what it must reach.
    #[derive(Clone, Copy)]
    pub struct Expect {
        /// Emulator frames of random play.
        pub frames: usize,
        /// Pixels the box around a reported centre is widened by.
        pub tolerance: f32,
        /// Frames looked at, each and as their maximum (2: as recorded, the
        /// maximum of a step's last two frames; more for games that draw
        /// sprites in turns, a few per frame).
        pub pool: usize,
        /// Positions each kind needs at least (rare kinds excepted).
        pub min_checked: usize,
        /// Share of a kind's positions that must land on its colour.
        pub min_share: f64,
        /// Kinds that random play may not show (checked when they appear).
        pub rare: &'static [&'static str],
    }

    pub const EXPECT: Expect = Expect {
        frames: 4000,
        tolerance: 2.0,
        pool: 2,
        min_checked: 200,
        min_share: 0.9,
        rare: &[],
    };

    /// Plays `expect.frames` emulator frames of `game` with random actions
    /// (each held a few frames), and checks each frame's reported objects:
    /// a position lands when the pixels of the object's colour within its
    /// box, widened by `expect.tolerance`, in this frame and the maximum of
    /// the last `expect.pool` frames, or else in one of those earlier frames
    /// alone, have the bounding box of their part nearest it (pixels up to
    /// [`GAP`] apart joined; see [`component_box`]) centred within
    /// `expect.tolerance` plus a quarter of the sprite's size of it. Many
    /// games draw some sprites every other frame, or one in four; the
    /// recorded frames are the maximum of two, where a sprite drawn over a
    /// coloured background takes a colour of neither (Ms. Pac-Man's ghosts
    /// over the maze's blue), so each frame is looked at too. `shift` moves every
    /// reported column by that much (0: the table as it is; otherwise the
    /// check of the check: a wrong offset must fail).
    pub fn play(game: &Game, expect: &Expect, shift: f32) -> Report {
        let rom = crate::find_rom(game.name, None).expect("the game's ROM (scripts/bootstrap.sh)");
        let mut ale = Ale::load(&rom, 3, 0.0).expect("ALE loads the ROM");
        let actions = ale.minimal_action_set();
        let mut rng = rand_pcg::Pcg64::seed_from_u64(11);
        let (h, w) = ale.screen_size();
        let mut recent: std::collections::VecDeque<Vec<u8>> = Default::default();
        let mut report = Report::new();
        let mut action = actions[0];
        for i in 0..expect.frames {
            if i % 8 == 0 {
                action = actions[rng.gen_range(0..actions.len())];
            }
            ale.act(action);
            if ale.game_over() {
                ale.reset_game();
                continue;
            }
            let mut frame = if recent.len() >= expect.pool.max(1) {
                recent.pop_front().expect("a frame")
            } else {
                vec![0u8; h * w * 3]
            };
            ale.screen_rgb(&mut frame);
            recent.push_back(frame);
            let mut pooled = recent.back().expect("this frame").clone();
            for other in &recent {
                pooled.iter_mut().zip(other).for_each(|(p, o)| *p = (*p).max(*o));
            }
            let ram = ale.ram();
            for object in game.objects {
                let Some((r, c)) = object.centre(&ram) else { continue };
                let c = c + shift;
                let tolerance = expect.tolerance;
                let (dr, dc) = (object.size.0 / 2.0 + tolerance, object.size.1 / 2.0 + tolerance);
                // The box of the object's colour in the window: its centre
                // must be near the reported one (a sprite's shape changes as
                // it animates, so a quarter of its size is allowed on top).
                // Looked for in this frame and the maximum together, then in
                // each earlier frame alone (a box over several frames would
                // stretch along the sprite's path).
                let this = recent.len() - 1;
                let (rows, cols) = (window(r, dr, h), window(c, dc, w));
                let hit = (0..=this).rev().any(|view| {
                    let on = |rr: usize, cc: usize| {
                        let p = (rr * w + cc) * 3;
                        object.colours.iter().any(|k| {
                            k[..] == recent[view][p..p + 3]
                                || (view == this && k[..] == pooled[p..p + 3])
                        })
                    };
                    component_box(rows.clone(), cols.clone(), on, (r, c)).is_some_and(
                        |(r0, r1, c0, c1)| {
                            let (fr, fc) = ((r0 + r1) as f32 / 2.0, (c0 + c1) as f32 / 2.0);
                            (fr - r).abs() <= tolerance + object.size.0 / 4.0
                                && (fc - c).abs() <= tolerance + object.size.1 / 4.0
                        },
                    )
                });
                let e = report.entry(kind(object.name).to_string()).or_default();
                e.0 += 1;
                e.1 += usize::from(hit);
            }
        }
        report
    }

    fn window(centre: f32, half: f32, len: usize) -> std::ops::Range<usize> {
        let lo = (centre - half).ceil().max(0.0) as usize;
        let hi = ((centre + half).floor() + 1.0).clamp(0.0, len as f32) as usize;
        lo..hi.max(lo)
    }

    /// The bounding box (r0, r1, c0, c1) of the object's pixels in the
    /// window: the part of them nearest the reported centre, pixels at most
    /// [`GAP`] rows and columns apart counting as one part. Two objects of one colour on either side
    /// of a wrong place are two parts, not one box centred on it.
    fn component_box(
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        on: impl Fn(usize, usize) -> bool,
        centre: (f32, f32),
    ) -> Option<(usize, usize, usize, usize)> {
        let (height, width) = (rows.len(), cols.len());
        let mut mask = vec![false; height * width];
        let mut nearest: Option<(f32, usize)> = None;
        for (i, rr) in rows.clone().enumerate() {
            for (j, cc) in cols.clone().enumerate() {
                if on(rr, cc) {
                    mask[i * width + j] = true;
                    let d = (rr as f32 - centre.0).powi(2) + (cc as f32 - centre.1).powi(2);
                    if nearest.is_none_or(|(best, _)| d < best) {
                        nearest = Some((d, i * width + j));
                    }
                }
            }
        }
        let (_, start) = nearest?;
        // Grow from the nearest pixel over gaps of up to GAP - 1 pixels (a
        // sprite drawn in stripes, or cut by the maximum of two frames).
        let mut seen = vec![false; height * width];
        let mut stack = vec![start];
        seen[start] = true;
        let (mut i0, mut i1, mut j0, mut j1) = (height, 0, width, 0);
        while let Some(at) = stack.pop() {
            let (i, j) = (at / width, at % width);
            (i0, i1, j0, j1) = (i0.min(i), i1.max(i), j0.min(j), j1.max(j));
            for ii in i.saturating_sub(GAP)..(i + GAP + 1).min(height) {
                for jj in j.saturating_sub(GAP)..(j + GAP + 1).min(width) {
                    let k = ii * width + jj;
                    if mask[k] && !seen[k] {
                        seen[k] = true;
                        stack.push(k);
                    }
                }
            }
        }
        Some((rows.start + i0, rows.start + i1, cols.start + j0, cols.start + j1))
    }

    /// How far apart (rows, columns) two pixels of one part may be.
    const GAP: usize = 3;

    /// Two sprites of one colour on either side of a reported centre give
    /// the nearer one's box, not one box centred between them; a sprite
    /// drawn in stripes (gaps of one row) is one part.
    #[test]
    fn component_box_keeps_the_part_nearest_the_centre() {
        // Columns 0..=4 and 11..=15 lit on rows 0..=3: centre (1.5, 6.5).
        let two = |r: usize, c: usize| r < 4 && (c <= 4 || c >= 11);
        assert_eq!(component_box(0..4, 0..16, two, (1.5, 6.5)), Some((0, 3, 0, 4)));
        assert_eq!(component_box(0..4, 0..16, two, (1.5, 9.0)), Some((0, 3, 11, 15)));
        // Every other row of a 9x5 sprite lit: one part.
        let striped = |r: usize, c: usize| r.is_multiple_of(2) && r < 9 && (2..7).contains(&c);
        assert_eq!(component_box(0..12, 0..10, striped, (4.0, 4.0)), Some((0, 8, 2, 6)));
        assert_eq!(component_box(0..12, 0..10, |_, _| false, (4.0, 4.0)), None);
    }

    /// The per-game test: every kind (but rare ones) checked at least
    /// `min_checked` times, and every kind on its colour at least
    /// `min_share` of them; the same table shifted sideways by more than the
    /// widest box must fail for most kinds, or the check could not catch a
    /// wrong offset.
    pub fn assert_matches(game: &Game, expect: Expect) {
        let report = play(game, &expect, 0.0);
        println!("{}: per kind (checked, on its colour): {report:?}", game.name);
        for object in game.objects {
            let kind = kind(object.name);
            let (n, hit) = report.get(kind).copied().unwrap_or_default();
            assert!(
                n >= expect.min_checked || expect.rare.contains(&kind),
                "{}: {kind}: only {n} positions checked",
                game.name
            );
            assert!(
                hit as f64 >= expect.min_share * n as f64,
                "{}: {kind}: {hit} of {n} positions on the object's colour",
                game.name
            );
        }
        // Shifted sideways by more than the widest box: most kinds must fail
        // (a kind may still match where its neighbours share its colour).
        let widest = game.objects.iter().map(|o| o.size.1).fold(0.0, f32::max);
        let by = widest + 2.0 * expect.tolerance + 5.0;
        let shifted = play(game, &expect, by);
        println!("{}: shifted by {by:.0} px: {shifted:?}", game.name);
        let failing = shifted
            .values()
            .filter(|&&(n, hit)| (hit as f64) < expect.min_share * n as f64)
            .count();
        assert!(
            2 * failing > shifted.len(),
            "{}: shifted by more than a sprite's width, the table still matches: {shifted:?}",
            game.name
        );
    }
}
