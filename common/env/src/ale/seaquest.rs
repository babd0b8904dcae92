//! Seaquest's objects read from its RAM, in frame pixels, for measuring what
//! the attention looks at (`recorder analyze`, docs/attention-analysis.md).
//!
//! Source of the RAM addresses: the AtariARI annotations of Anand et al. 2019,
//! "Unsupervised State Representation Learning in Atari" (NeurIPS 2019),
//! file `atariari/benchmark/ram_annotations.py` of
//! github.com/mila-iqia/atari-representation-learning:
//! `player_x` = 70, `player_y` = 97, `enemy_obstacle_x` = 30..34,
//! `diver_or_enemy_missile_x` = 71..75, `oxygen_meter_value` = 102,
//! `player_missile_x` = 103. AtariARI gives x only for enemies and divers and
//! says nothing of which of them are on screen; the rest comes from OCAtari
//! (Delfosse et al. 2023, `ocatari/ram/seaquest.py`), checked here on frames:
//! the enemies of lane `i` form a group whose members are bits of byte
//! `36 + i` (4: left at x, 2: middle at x + 16, 1: right at x + 32), and byte
//! `89 + i` modulo 8 in 4..=6 makes them submarines (which shoot: the lane's
//! byte `71 + i` is then an enemy missile instead of a diver). Two bytes were
//! found by searching the RAM against frames: byte 105 is 0 exactly while the
//! player's submarine is drawn (it counts down while the submarine explodes),
//! and byte 93 (0..7) is how far the sharks of every lane have bobbed down.
//!
//! Calibration: the RAM's units are frame pixels up to an offset. The offsets
//! below put each object at the centre of the visible part of its sprite, in
//! the coordinates every object position of this project uses: (row, column)
//! of the 210x160 frame, pixel (r, c) centred at (r, c). They were measured
//! against sprites found by colour in 20,000 frames of random play (ALE 0.10
//! from the virtualenv, seeds 1 and 7, every 5th frame): the player's
//! submarine is 16 pixels wide from column `x` and spans rows `y + 33` to
//! `y + 42` or `y + 43` (it alternates), nothing of it above row 57 while it
//! dives, rows `y + 33` to 52 when surfaced (`y <= 15`); its torpedo is 8x1 at
//! row `y + 40`, not drawn above row 57. Sharks are 8x7 from row
//! `137 - 24 * lane + bob`, enemy submarines 8 wide over rows `140 - 24 * lane`
//! to `150 - 24 * lane`, divers 8x13 from row `137 - 24 * lane`, enemy missiles
//! 6x4 from column `x + 2` and row `145 - 24 * lane`. Columns 0..8 are always
//! black (HMOVE), so sprites there are cut or hidden.
//!
//! Check (the test `ram_positions_match_the_frames`, this crate's ALE, 4,000
//! agent steps of the recorded max-pooled frames): the player's position was
//! within 1 pixel of its sprite's centre in 2,473 of 2,478 steps, within 2 in
//! 2,475 (the other 3, up to 8 px, at y = 15 where the pooled frame still
//! shows its previous place across the surface); over 3 pixels off: 15 of 4,936 enemy positions, 3 of 4,722 divers, 0 of 678
//! torpedoes, 6 of 4,000 oxygen readings (steps where the bar jumps).
//!
//! Lanes are numbered from the bottom (lane 0, byte 30) to the top (lane 3);
//! the extra enemy submarine that patrols the surface in later waves is not
//! reported (its byte was not checked against frames).

use super::RAM_SIZE;

/// Names of the objects [`objects`] reports, always all of them, in this
/// order. `enemy_{3 * lane + slot}`: slot 0, 1, 2 = left, middle, right of
/// the lane's group; `diver_{lane}`, `enemy_missile_{lane}`. The kind of an
/// object is its name without the `_<number>` suffix (`recorder analyze`
/// groups by kind).
pub const OBJECT_NAMES: [&str; 23] = [
    "player",
    "enemy_0",
    "enemy_1",
    "enemy_2",
    "enemy_3",
    "enemy_4",
    "enemy_5",
    "enemy_6",
    "enemy_7",
    "enemy_8",
    "enemy_9",
    "enemy_10",
    "enemy_11",
    "diver_0",
    "diver_1",
    "diver_2",
    "diver_3",
    "enemy_missile_0",
    "enemy_missile_1",
    "enemy_missile_2",
    "enemy_missile_3",
    "player_missile",
    "oxygen",
];

/// Lanes of enemies and divers.
pub const LANES: usize = 4;

// RAM addresses (see the module doc for where each comes from).
const PLAYER_X: usize = 70;
const PLAYER_Y: usize = 97;
const PLAYER_EXPLODING: usize = 105;
const ENEMY_X: usize = 30;
const ENEMY_GROUP: usize = 36;
const ENEMY_KIND: usize = 89;
const SHARK_BOB: usize = 93;
const DIVER_X: usize = 71;
const OXYGEN: usize = 102;
const PLAYER_MISSILE_X: usize = 103;

/// Rows between two lanes.
const LANE_PITCH: f32 = 24.0;
/// Columns 0..8 are the black bar the 2600 draws while it moves sprites
/// (HMOVE): nothing is visible there.
const FIRST_VISIBLE_COLUMN: i32 = 8;
/// Frame width; RAM x values count columns modulo 256, and 160..=255 are off
/// screen to the left (a group entering from the left starts near 255).
const SCREEN_COLUMNS: i32 = 160;
/// Rows above this one (the band under the surface) show no submarine or
/// torpedo, except the surfaced submarine itself.
const FIRST_SEA_ROW: f32 = 57.0;
/// Full oxygen (bar width in pixels).
pub const OXYGEN_MAX: u8 = 64;

/// Centre row of the visible part of the player's submarine for RAM
/// `player_y` = y. Surfaced (y <= 15) it shows rows y + 33 to 52; below, rows
/// y + 33 to y + 42 or y + 43 (alternating), none above row 57 while it dives
/// through the band under the surface.
fn player_row(y: u8) -> f32 {
    let y = f32::from(y);
    let (top, bottom) =
        if y <= 15.0 { (y + 33.0, 52.0) } else { ((y + 33.0).max(FIRST_SEA_ROW), y + 42.5) };
    (top + bottom) / 2.0
}

/// Centre column of the visible part of a sprite `width` pixels wide whose
/// left column is the RAM value `x` (modulo 256) plus `offset`, or None when
/// none of it is on screen.
fn visible_column(x: u8, offset: u8, width: i32) -> Option<f32> {
    let left = i32::from(x.wrapping_add(offset));
    let left = if left < SCREEN_COLUMNS { left } else { left - 256 };
    let (a, b) = (left.max(FIRST_VISIBLE_COLUMN), (left + width - 1).min(SCREEN_COLUMNS - 1));
    (a <= b).then(|| (a + b) as f32 / 2.0)
}

/// The bottom lane's centre rows; lane `i` is `i * LANE_PITCH` higher.
const SHARK_ROW_0: f32 = 140.0; // plus the bob, 0..7
const ENEMY_SUB_ROW_0: f32 = 145.0;
const DIVER_ROW_0: f32 = 143.5;
const ENEMY_MISSILE_ROW_0: f32 = 146.5;
/// Row of the oxygen bar's centre (rows 170..=174) and its first column.
const OXYGEN_ROW: f32 = 172.0;
const OXYGEN_COL_0: f32 = 49.0;

fn lane_row(bottom: f32, lane: usize) -> f32 {
    bottom - LANE_PITCH * lane as f32
}

/// True when lane `lane`'s enemies are submarines (else sharks).
fn lane_has_submarines(ram: &[u8; RAM_SIZE], lane: usize) -> bool {
    (4..=6).contains(&(ram[ENEMY_KIND + lane] % 8))
}

/// Every object of [`OBJECT_NAMES`] as (name, row, column) in frame pixels,
/// in that order; NaN row and column where the object is not on screen. A
/// sprite cut by the screen's edge is placed at the centre of its visible part.
pub fn objects(ram: &[u8; RAM_SIZE]) -> Vec<(&'static str, f32, f32)> {
    const ABSENT: (f32, f32) = (f32::NAN, f32::NAN);
    let mut at = [ABSENT; OBJECT_NAMES.len()];
    let alive = ram[PLAYER_EXPLODING] == 0;
    let y = ram[PLAYER_Y];
    if alive {
        at[0] = (player_row(y), f32::from(ram[PLAYER_X]) + 7.5);
    }
    for lane in 0..LANES {
        let subs = lane_has_submarines(ram, lane);
        let group = ram[ENEMY_GROUP + lane];
        let row = if subs {
            lane_row(ENEMY_SUB_ROW_0, lane)
        } else {
            lane_row(SHARK_ROW_0, lane) + f32::from(ram[SHARK_BOB] & 7)
        };
        for (slot, bit) in [4u8, 2, 1].into_iter().enumerate() {
            if group & bit != 0 {
                if let Some(col) = visible_column(ram[ENEMY_X + lane], 16 * slot as u8, 8) {
                    at[1 + 3 * lane + slot] = (row, col);
                }
            }
        }
        let x = ram[DIVER_X + lane];
        if x == 0 {
            continue;
        }
        if subs {
            if let Some(col) = visible_column(x, 2, 6) {
                at[1 + 12 + LANES + lane] = (lane_row(ENEMY_MISSILE_ROW_0, lane), col);
            }
        } else if let Some(col) = visible_column(x, 0, 8) {
            at[1 + 12 + lane] = (lane_row(DIVER_ROW_0, lane), col);
        }
    }
    let torpedo_row = f32::from(y) + 40.0;
    let m = ram[PLAYER_MISSILE_X];
    if alive && m > 0 && torpedo_row >= FIRST_SEA_ROW {
        if let Some(col) = visible_column(m, 0, 8) {
            at[21] = (torpedo_row, col);
        }
    }
    // The oxygen bar is always drawn; its position is the end of the filled
    // part (the bar fills `oxygen` of its 64 columns from column 49).
    let oxygen = ram[OXYGEN].min(OXYGEN_MAX);
    at[22] = (OXYGEN_ROW, OXYGEN_COL_0 + f32::from(oxygen) - 0.5);
    OBJECT_NAMES.iter().zip(at).map(|(&name, (r, c))| (name, r, c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ale::AtariEnv;
    use crate::{EnvSpec, Environment};
    use rand::{Rng, SeedableRng};
    use rand_pcg::Pcg64;

    const H: usize = 210;
    const W: usize = 160;
    const WATER: [u8; 3] = [0, 28, 136];
    /// The player's submarine and torpedo are (187, 187, 53); in a max-pooled
    /// frame a moving sprite's edges take the blue of the other frame.
    fn is_player_colour(p: [u8; 3]) -> bool {
        p[0] == 187 && p[1] == 187
    }
    const DIVER: [u8; 3] = [66, 72, 200];
    const OXYGEN_BAR: [u8; 3] = [214, 214, 214];
    /// Rows of the sea (below the surface line, above the sea floor).
    const SEA: std::ops::Range<usize> = 44..160;

    fn pixel(frame: &[u8], r: usize, c: usize) -> [u8; 3] {
        let i = (r * W + c) * 3;
        [frame[i], frame[i + 1], frame[i + 2]]
    }

    /// The pixels (row, col) of the largest 8-connected blob of pixels that
    /// `is_colour` accepts in the sea rows. Found without the RAM.
    fn largest_blob(frame: &[u8], is_colour: impl Fn([u8; 3]) -> bool) -> Vec<(usize, usize)> {
        let mut seen = vec![false; H * W];
        let mut best = Vec::new();
        for r in SEA {
            for c in 0..W {
                if seen[r * W + c] || !is_colour(pixel(frame, r, c)) {
                    continue;
                }
                let (mut blob, mut stack) = (Vec::new(), vec![(r, c)]);
                seen[r * W + c] = true;
                while let Some((y, x)) = stack.pop() {
                    blob.push((y, x));
                    for (dy, dx) in
                        [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
                    {
                        let (yy, xx) = (y as isize + dy, x as isize + dx);
                        if !SEA.contains(&(yy as usize)) || xx < 0 || xx >= W as isize {
                            continue;
                        }
                        let (yy, xx) = (yy as usize, xx as usize);
                        if !seen[yy * W + xx] && is_colour(pixel(frame, yy, xx)) {
                            seen[yy * W + xx] = true;
                            stack.push((yy, xx));
                        }
                    }
                }
                if blob.len() > best.len() {
                    best = blob;
                }
            }
        }
        best
    }

    /// Centre of a blob's bounding box.
    fn blob_centre(blob: &[(usize, usize)]) -> (f32, f32) {
        let (r0, r1) = blob.iter().fold((H, 0), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let (c0, c1) = blob.iter().fold((W, 0), |(a, b), p| (a.min(p.1), b.max(p.1)));
        ((r0 + r1) as f32 / 2.0, (c0 + c1) as f32 / 2.0)
    }

    /// Centre of the bounding box of the pixels that `is_object` accepts in
    /// the window of half-height `dr` and half-width `dc` around (row, col).
    fn centre_near(
        frame: &[u8],
        (row, col): (f32, f32),
        (dr, dc): (f32, f32),
        is_object: impl Fn([u8; 3]) -> bool,
    ) -> Option<(f32, f32)> {
        let r0 = (row - dr).max(SEA.start as f32) as usize;
        let r1 = ((row + dr) as usize).min(SEA.end - 1);
        // Columns 0..8 are the black bar the 2600 draws during HMOVE.
        let c0 = (col - dc).max(8.0) as usize;
        let c1 = ((col + dc).max(0.0) as usize).min(W - 1);
        let mut bbox: Option<(usize, usize, usize, usize)> = None;
        for r in r0..=r1 {
            for c in c0..=c1 {
                if is_object(pixel(frame, r, c)) {
                    let b = bbox.get_or_insert((r, r, c, c));
                    *b = (b.0.min(r), b.1.max(r), b.2.min(c), b.3.max(c));
                }
            }
        }
        bbox.map(|(r0, r1, c0, c1)| ((r0 + r1) as f32 / 2.0, (c0 + c1) as f32 / 2.0))
    }

    fn off(a: (f32, f32), b: (f32, f32)) -> f32 {
        (a.0 - b.0).abs().max((a.1 - b.1).abs())
    }

    /// Plays Seaquest from the virtualenv's ROM with a random policy that
    /// holds each action a few steps (so the submarine roams the sea) and
    /// compares every reported position with the recorded (max-pooled) frame:
    /// the player's submarine found by its colour without the RAM, the other
    /// objects by their colours near where the RAM puts them, and the oxygen
    /// bar's filled length.
    #[test]
    fn ram_positions_match_the_frames() {
        let mut env = AtariEnv::new(&EnvSpec::atari_default("seaquest"), 21).unwrap();
        let mut rng = Pcg64::seed_from_u64(4);
        let mut action = 0;
        let (mut player, mut player_off, mut player_far, mut absent) = (0, 0f32, 0, 0);
        // Player positions off by at most 0, 1, 2 and more than 2 pixels.
        let mut player_within = [0usize; 4];
        let mut with_torpedo = 0;
        let (mut rows, mut cols) = ((f32::MAX, f32::MIN), (f32::MAX, f32::MIN));
        let mut others: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
        // The frame is the maximum of the step's last two emulator frames, the
        // RAM is the last one's: in the step where the submarine explodes the
        // frame may still show it.
        let mut was_present = true;
        for step in 0..4000 {
            if step % 6 == 0 {
                action = rng.gen_range(0..env.num_actions());
            }
            if env.step(action).episode_over {
                env.reset();
            }
            let objects = env.objects();
            let names: Vec<&str> = objects.iter().map(|o| o.0).collect();
            assert_eq!(names, OBJECT_NAMES, "every object, in the documented order");
            let (_, _, frame) = env.render_rgb();
            let blob = Some(largest_blob(frame, is_player_colour)).filter(|b| b.len() >= 30);
            let (_, r, c) = objects[0];
            let present = !r.is_nan();
            if !present {
                assert!(c.is_nan());
                assert!(
                    was_present || blob.is_none(),
                    "step {step}: player reported absent but drawn: {:?}",
                    blob.map(|b| blob_centre(&b))
                );
                absent += 1;
            } else if !objects[21].1.is_nan() {
                // A torpedo just fired touches the submarine in its colour and
                // would widen the blob; it is checked on its own below.
                with_torpedo += 1;
            } else {
                let blob =
                    blob.unwrap_or_else(|| panic!("step {step}: player at ({r}, {c}) not drawn"));
                let d = off(blob_centre(&blob), (r, c));
                player += 1;
                player_off = player_off.max(d);
                player_far += usize::from(d > 2.0);
                player_within[(d.ceil() as usize).min(3)] += 1;
                rows = (rows.0.min(r), rows.1.max(r));
                cols = (cols.0.min(c), cols.1.max(c));
            }
            was_present = present;
            for &(name, r, c) in &objects[1..] {
                if r.is_nan() {
                    continue;
                }
                let kind = crate::ale::objects::kind(name);
                let seen = match kind {
                    "enemy" => centre_near(frame, (r, c), (8.0, 6.0), |p| {
                        p != WATER && p != DIVER && !is_player_colour(p)
                    }),
                    "diver" | "enemy_missile" => {
                        centre_near(frame, (r, c), (8.0, 6.0), |p| p == DIVER)
                    }
                    "player_missile" => centre_near(frame, (r, c), (1.0, 6.0), is_player_colour),
                    "oxygen" => {
                        let filled =
                            (49..113).filter(|&x| pixel(frame, 172, x) == OXYGEN_BAR).count();
                        Some((172.0, 49.0 + filled as f32 - 0.5))
                    }
                    other => panic!("unexpected kind {other}"),
                };
                let d = seen.map_or(f32::INFINITY, |s| off(s, (r, c)));
                let e = others.entry(kind).or_default();
                e.0 += 1;
                e.1 += usize::from(d > 3.0);
            }
        }
        println!(
            "seaquest RAM vs frames: player {player} steps (max offset {player_off} px, \
             within 0/1/2/more px: {player_within:?}; rows {rows:?}, cols {cols:?}), not \
             compared (torpedo) {with_torpedo}, absent {absent}; others (reported, not within 3 px): {others:?}"
        );
        assert!(player > 2000, "the submarine was compared in only {player} steps");
        assert!(absent > 0, "the test never saw the submarine explode");
        // Over 2 px only where the pooled frame still shows the submarine's
        // previous place across the surface (y = 15, a step or two per episode).
        assert!(
            player_far * 200 <= player,
            "{player_far} of {player} player positions over 2 px off (max {player_off})"
        );
        assert!(player_within[3] == player_far);
        assert!(
            (player_within[0] + player_within[1]) * 100 >= 95 * player,
            "player within 1 px in only {player_within:?}"
        );
        assert!(rows.1 - rows.0 > 60.0 && cols.1 - cols.0 > 80.0, "the submarine barely moved");
        // Objects not within 3 px: where a sprite was hit or a wave changed
        // between the step's last two emulator frames (the oxygen bar jumps to
        // empty or full when a life ends or the submarine surfaces).
        for kind in ["enemy", "diver", "player_missile", "oxygen"] {
            let (n, bad) = others.get(kind).copied().unwrap_or_default();
            assert!(n > 500, "{kind}: only {n} positions checked");
            assert!(bad * 100 <= n, "{kind}: {bad} of {n} not within 3 px of the frame");
        }
        // Enemy submarines are rare early in the game; their missiles are
        // checked when some appear.
        if let Some(&(n, bad)) = others.get("enemy_missile") {
            assert!(bad * 20 <= n, "enemy_missile: {bad} of {n} not within 3 px");
        }
    }

    #[test]
    fn absent_objects_are_nan_and_known_bytes_decode() {
        let mut ram = [0u8; RAM_SIZE];
        ram[PLAYER_X] = 76;
        ram[PLAYER_Y] = 13;
        ram[OXYGEN] = 64;
        // Lane 2: sharks, left and right members, bobbed down by 3.
        ram[ENEMY_X + 2] = 100;
        ram[ENEMY_GROUP + 2] = 4 | 1;
        ram[SHARK_BOB] = 3;
        // Lane 0: submarines with a missile at x = 20; the right member is off screen.
        ram[ENEMY_X] = 130;
        ram[ENEMY_GROUP] = 1;
        ram[ENEMY_KIND] = 4;
        ram[DIVER_X] = 20;
        // Lane 1: a diver.
        ram[DIVER_X + 1] = 50;
        let o = objects(&ram);
        let get = |name: &str| o.iter().find(|x| x.0 == name).map(|x| (x.1, x.2)).unwrap();
        assert_eq!(get("player"), (49.0, 83.5), "surfaced: rows 46..=52");
        assert_eq!(get("enemy_6"), (140.0 - 48.0 + 3.0, 103.5));
        assert!(get("enemy_7").0.is_nan());
        assert_eq!(get("enemy_8"), (95.0, 135.5));
        assert!(get("enemy_2").0.is_nan(), "130 + 32 is past the right edge");
        assert_eq!(visible_column(155, 0, 8), Some(157.0), "cut by the right edge");
        assert_eq!(visible_column(250, 12, 8), Some(10.5), "wrapped: columns 6..=13, 8.. visible");
        assert_eq!(visible_column(250, 0, 8), None, "under the HMOVE bar");
        assert_eq!(get("enemy_missile_0"), (146.5, 24.5));
        assert!(get("diver_0").0.is_nan(), "lane 0's byte is a missile, not a diver");
        assert_eq!(get("diver_1"), (119.5, 53.5));
        assert!(get("player_missile").0.is_nan());
        assert_eq!(get("oxygen"), (172.0, 112.5));
        ram[PLAYER_EXPLODING] = 9;
        let o = objects(&ram);
        assert!(o[0].1.is_nan() && o[0].2.is_nan(), "exploding submarine is absent");
        let present = o.iter().filter(|x| !x.1.is_nan()).count();
        assert_eq!(present, 5);
    }
}
