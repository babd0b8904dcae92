//! Asteroids: the player's ship and its two shots. Addresses: AtariARI
//! (`player_x` 73, `player_y` 74, missiles' x 83, 84 and y 86, 87); the
//! column's decoding (a coarse and a fine part, as the 2600 positions
//! sprites), rows, sizes, colours and presence: OCAtari
//! `ocatari/ram/asteroids.py`. The rocks: 15 slots (AtariARI's y 3..=9 and
//! 12..=19, x 18 bytes on), each reported under its size (byte 36 bytes on
//! from its y: large, medium or small, OCAtari's boxes) as
//! `asteroid_<size>_<slot>`, while wholly inside the playfield (rows
//! 18..195; the field wraps at its bottom).

use crate::ale::objects::{within_rows, Coord, Game, Object, Presence};
use crate::ale::RAM_SIZE;

/// A column from a horizontal-position byte (OCAtari's decoding).
fn column(v: u8) -> f32 {
    match v {
        0 => 64.0,
        1 => 4.0,
        _ => {
            let (lo, add, sub) =
                (i32::from(v & 15), if v & 128 != 0 { 8 } else { 0 }, i32::from((v >> 4) & 7));
            let x = if lo % 2 == 0 { 97 + 15 * (lo / 2 - 1) } else { 10 + 15 * ((lo - 1) / 2 - 1) };
            (x + add - sub) as f32
        }
    }
}

fn player_left(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    let nudge = match ram[60] % 16 {
        4 => -1.0,
        12 => 1.0,
        _ => 0.0,
    };
    Some(column(ram[73]) + nudge)
}

fn missile_left<const K: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    Some(column(ram[83 + K]) + 1.0)
}

fn missile_top<const K: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    Some(2.0 * f32::from(ram[86 + K]) + 17.0)
}

fn missile_flying<const K: usize>(ram: &[u8; RAM_SIZE]) -> bool {
    ram[83 + K] != 0 && ram[86 + K] & 128 == 0
}

/// The ship's shot `K` (of 2).
const fn missile<const K: usize>(name: &'static str) -> Object {
    Object {
        name,
        top: Coord::From(missile_top::<K>),
        left: Coord::From(missile_left::<K>),
        size: (2.0, 1.0),
        present: Presence::When(missile_flying::<K>),
        colours: &[[117, 181, 239], [240, 128, 128]],
    }
}

const ROCK: &[[u8; 3]] = &[
    [180, 122, 48],
    [104, 72, 198],
    [136, 146, 62],
    [187, 187, 53],
    [214, 214, 214],
    [117, 181, 239],
    [184, 70, 162],
    [184, 50, 50],
];

/// A rock's size from its byte: 0 large (16x28), 1 medium (8x15), 2 small
/// (4x8).
fn rock_size(value: u8) -> usize {
    match value & 127 {
        0..=31 => 0,
        32..=47 => 1,
        _ => 2,
    }
}

/// The rows rocks are drawn on (the field wraps at its bottom).
const PLAYFIELD: std::ops::Range<f32> = 18.0..195.0;

const ROCK_SIZES: [(f32, f32); 3] = [(28.0, 16.0), (15.0, 8.0), (8.0, 4.0)];

fn rock_top<const A: usize, const SIZE: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    let top = 2.0 * f32::from(ram[A]) + 24.0;
    within_rows(top, ROCK_SIZES[SIZE].0, PLAYFIELD).then_some(top)
}

fn rock_left<const A: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    Some(column(ram[A + 18]))
}

fn rock_present<const A: usize, const SIZE: usize>(ram: &[u8; RAM_SIZE]) -> bool {
    ram[A + 18] != 0 && ram[A] & 128 == 0 && rock_size(ram[A + 36]) == SIZE
}

/// The rock whose row is byte `A` (3..=9 or 12..=19; its column is byte
/// A + 18, its size A + 36) while it has size `SIZE`.
const fn rock<const A: usize, const SIZE: usize>(name: &'static str) -> Object {
    Object {
        name,
        top: Coord::From(rock_top::<A, SIZE>),
        left: Coord::From(rock_left::<A>),
        size: ROCK_SIZES[SIZE],
        present: Presence::When(rock_present::<A, SIZE>),
        colours: ROCK,
    }
}

pub const GAME: Game = Game {
    name: "asteroids",
    objects: &[
        Object {
            name: "player",
            top: Coord::From(|ram| Some(2.0 * f32::from(ram[74]) + 18.0)),
            left: Coord::From(player_left),
            size: (10.0, 6.0),
            present: Presence::When(|ram| ram[74] != 224),
            colours: &[[240, 128, 128]],
        },
        missile::<0>("player_missile_0"),
        missile::<1>("player_missile_1"),
        rock::<3, 0>("asteroid_large_0"),
        rock::<4, 0>("asteroid_large_1"),
        rock::<5, 0>("asteroid_large_2"),
        rock::<6, 0>("asteroid_large_3"),
        rock::<7, 0>("asteroid_large_4"),
        rock::<8, 0>("asteroid_large_5"),
        rock::<9, 0>("asteroid_large_6"),
        rock::<12, 0>("asteroid_large_7"),
        rock::<13, 0>("asteroid_large_8"),
        rock::<14, 0>("asteroid_large_9"),
        rock::<15, 0>("asteroid_large_10"),
        rock::<16, 0>("asteroid_large_11"),
        rock::<17, 0>("asteroid_large_12"),
        rock::<18, 0>("asteroid_large_13"),
        rock::<19, 0>("asteroid_large_14"),
        rock::<3, 1>("asteroid_medium_0"),
        rock::<4, 1>("asteroid_medium_1"),
        rock::<5, 1>("asteroid_medium_2"),
        rock::<6, 1>("asteroid_medium_3"),
        rock::<7, 1>("asteroid_medium_4"),
        rock::<8, 1>("asteroid_medium_5"),
        rock::<9, 1>("asteroid_medium_6"),
        rock::<12, 1>("asteroid_medium_7"),
        rock::<13, 1>("asteroid_medium_8"),
        rock::<14, 1>("asteroid_medium_9"),
        rock::<15, 1>("asteroid_medium_10"),
        rock::<16, 1>("asteroid_medium_11"),
        rock::<17, 1>("asteroid_medium_12"),
        rock::<18, 1>("asteroid_medium_13"),
        rock::<19, 1>("asteroid_medium_14"),
        rock::<3, 2>("asteroid_small_0"),
        rock::<4, 2>("asteroid_small_1"),
        rock::<5, 2>("asteroid_small_2"),
        rock::<6, 2>("asteroid_small_3"),
        rock::<7, 2>("asteroid_small_4"),
        rock::<8, 2>("asteroid_small_5"),
        rock::<9, 2>("asteroid_small_6"),
        rock::<12, 2>("asteroid_small_7"),
        rock::<13, 2>("asteroid_small_8"),
        rock::<14, 2>("asteroid_small_9"),
        rock::<15, 2>("asteroid_small_10"),
        rock::<16, 2>("asteroid_small_11"),
        rock::<17, 2>("asteroid_small_12"),
        rock::<18, 2>("asteroid_small_13"),
        rock::<19, 2>("asteroid_small_14"),
    ],
};

#[cfg(test)]
mod tests {
    #[test]
    fn ram_positions_land_on_their_objects() {
        use crate::ale::objects::check::{assert_matches, Expect, EXPECT};
        // Asteroids draws its objects every other frame.
        assert_matches(&super::GAME, Expect { pool: 4, ..EXPECT });
    }
}
