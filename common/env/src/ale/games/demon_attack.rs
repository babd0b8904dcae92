//! Demon Attack: the player's cannon and its shot, the three demons and the
//! demons' shots. Addresses: the cannon's x is byte 16 (OCAtari; AtariARI's
//! `player_x` 22 is the shot's), the shot's row byte 21 (AtariARI
//! `missile_y`), the demons' rows 69..=71 (AtariARI `enemy_y`) and columns
//! 13..=15, alive while bytes 29..=31 are over 3, and the demons' shots a
//! bitmap of 8-row bands (bytes 37..=46, from the bottom) under the column
//! of byte 20; columns decoded as OCAtari `ocatari/ram/demonattack.py`
//! does: the low 4 bits count 15-pixel steps, the high 4 bits a fine
//! offset. Rows, sizes and colours: the same file. A demon split in two (late
//! waves) is reported as one; the diving demon is not reported.

use crate::ale::objects::{Coord, Game, Object, Presence};
use crate::ale::RAM_SIZE;

/// A column from a horizontal-position byte (coarse steps of 15 pixels in
/// the low 4 bits, a fine offset in the high 4).
fn column(value: u8) -> f32 {
    let (coarse, fine) = (f32::from(value & 15), i32::from(value >> 4));
    let fine = if fine > 7 { 28 - fine } else { 12 - fine };
    15.0 * coarse + fine as f32
}

fn player_left(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    Some(column(ram[16]))
}

fn shot_top(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    let y = f32::from(ram[21]);
    Some(if y >= 90.0 { 176.0 - y } else { 178.0 - y })
}

fn shot_left(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    Some(2.0 + column(ram[22]))
}

/// The demons' colours change from wave to wave (their rows are striped).
const DEMON: &[[u8; 3]] = &[
    [213, 130, 74],
    [214, 92, 92],
    [84, 92, 214],
    [92, 186, 92],
    [195, 144, 61],
    [104, 72, 198],
    [214, 214, 214],
    [170, 170, 170],
    [192, 192, 192],
    [236, 236, 236],
    [74, 74, 74],
    [111, 111, 111],
    [142, 142, 142],
    [127, 92, 213],
    [181, 108, 224],
    [149, 111, 227],
    [101, 111, 228],
    [212, 108, 195],
    [228, 111, 111],
    [227, 151, 89],
    [223, 183, 85],
];

fn demon_top<const I: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    Some(175.0 - f32::from(ram[69 + I]))
}

fn demon_left<const I: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    Some(column(ram[13 + I]))
}

/// Byte 29 + i: 0 none, 1..=3 forming, more alive.
fn demon_alive<const I: usize>(ram: &[u8; RAM_SIZE]) -> bool {
    ram[29 + I] > 3
}

/// Demon `I` (0: the top one).
const fn demon<const I: usize>(name: &'static str) -> Object {
    Object {
        name,
        top: Coord::From(demon_top::<I>),
        left: Coord::From(demon_left::<I>),
        size: (7.0, 16.0),
        present: Presence::When(demon_alive::<I>),
        colours: DEMON,
    }
}

/// The demons' shots in band `K` (0: the bottom one, by the cannon): one
/// 8-pixel-wide box under the shooter's column, reported while any of the
/// band's bits is set.
const fn demon_shot<const K: usize>(name: &'static str) -> Object {
    Object {
        name,
        top: Coord::Fixed(181.0 - 8.0 * K as f32),
        left: Coord::From(|ram| Some(column(ram[20]))),
        size: (4.0, 8.0),
        present: Presence::NonZero(37 + K),
        colours: &[[252, 144, 144]],
    }
}

pub const GAME: Game = Game {
    name: "demon_attack",
    objects: &[
        Object {
            name: "player",
            top: Coord::Fixed(174.0),
            left: Coord::From(player_left),
            size: (12.0, 7.0),
            present: Presence::Always,
            colours: &[[184, 70, 162]],
        },
        Object {
            name: "player_shot",
            top: Coord::From(shot_top),
            left: Coord::From(shot_left),
            size: (8.0, 1.0),
            present: Presence::Always,
            colours: &[[212, 140, 252]],
        },
        demon::<0>("demon_0"),
        demon::<1>("demon_1"),
        demon::<2>("demon_2"),
        demon_shot::<0>("demon_shot_0"),
        demon_shot::<1>("demon_shot_1"),
        demon_shot::<2>("demon_shot_2"),
        demon_shot::<3>("demon_shot_3"),
        demon_shot::<4>("demon_shot_4"),
        demon_shot::<5>("demon_shot_5"),
        demon_shot::<6>("demon_shot_6"),
        demon_shot::<7>("demon_shot_7"),
        demon_shot::<8>("demon_shot_8"),
        demon_shot::<9>("demon_shot_9"),
    ],
};

#[cfg(test)]
mod tests {
    #[test]
    fn ram_positions_land_on_their_objects() {
        use crate::ale::objects::check::{assert_matches, EXPECT};
        assert_matches(&super::GAME, EXPECT);
    }
}
