//! Space Invaders: the player's cannon, the 36 aliens (`alien_{6 i + b}`:
//! row i from the bottom, column b from the left), the shots and the
//! satellite. Addresses: AtariARI (`player_x` 28, `enemies_x` 26); the
//! aliens' rows (byte 16, not AtariARI's 24), the bitmaps of live aliens
//! (bytes 18..=23, bit b of byte 18 + i), the shots and the satellite, with
//! offsets, sizes and colours: OCAtari `ocatari/ram/spaceinvaders.py`.

use crate::ale::objects::{Coord, Game, Object, Presence};
use crate::ale::RAM_SIZE;

const ALIEN: [u8; 3] = [134, 134, 29];
const SHOT: [u8; 3] = [142, 142, 142];

fn alien_top<const I: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    Some(31.0 + 2.0 * f32::from(ram[16]) + 18.0 * (5 - I) as f32)
}

fn alien_left<const B: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    Some(f32::from(ram[26]) - 1.0 + 16.0 * B as f32)
}

fn alien_alive<const I: usize, const B: usize>(ram: &[u8; RAM_SIZE]) -> bool {
    ram[18 + I] >> B & 1 == 1
}

/// Alien `b` of row `i` (from the bottom; `b` from the left).
const fn alien<const I: usize, const B: usize>(name: &'static str) -> Object {
    Object {
        name,
        top: Coord::From(alien_top::<I>),
        left: Coord::From(alien_left::<B>),
        size: (10.0, 8.0),
        present: Presence::When(alien_alive::<I, B>),
        colours: &[ALIEN],
    }
}

/// A shot's top row: twice its RAM byte `Y`, plus 3.
fn shot_top<const Y: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    Some(2.0 * f32::from(ram[Y]) + 3.0)
}

/// A shot is drawn between rows 20 and 195.
fn shot_in_flight<const Y: usize>(ram: &[u8; RAM_SIZE]) -> bool {
    shot_top::<Y>(ram).is_some_and(|top| top > 20.0 && top < 195.0)
}

/// A shot whose row is byte `Y` and column byte `X`.
const fn shot<const Y: usize, const X: usize>(name: &'static str) -> Object {
    Object {
        name,
        top: Coord::From(shot_top::<Y>),
        left: Coord::Ram(X, -2.0),
        size: (10.0, 1.0),
        present: Presence::When(shot_in_flight::<Y>),
        colours: &[SHOT],
    }
}

pub const GAME: Game = Game {
    name: "space_invaders",
    objects: &[
        Object {
            name: "player",
            top: Coord::Fixed(185.0),
            left: Coord::Ram(28, -1.0),
            size: (10.0, 7.0),
            present: Presence::Always,
            colours: &[[92, 186, 92], [50, 132, 50]],
        },
        alien::<0, 0>("alien_0"),
        alien::<0, 1>("alien_1"),
        alien::<0, 2>("alien_2"),
        alien::<0, 3>("alien_3"),
        alien::<0, 4>("alien_4"),
        alien::<0, 5>("alien_5"),
        alien::<1, 0>("alien_6"),
        alien::<1, 1>("alien_7"),
        alien::<1, 2>("alien_8"),
        alien::<1, 3>("alien_9"),
        alien::<1, 4>("alien_10"),
        alien::<1, 5>("alien_11"),
        alien::<2, 0>("alien_12"),
        alien::<2, 1>("alien_13"),
        alien::<2, 2>("alien_14"),
        alien::<2, 3>("alien_15"),
        alien::<2, 4>("alien_16"),
        alien::<2, 5>("alien_17"),
        alien::<3, 0>("alien_18"),
        alien::<3, 1>("alien_19"),
        alien::<3, 2>("alien_20"),
        alien::<3, 3>("alien_21"),
        alien::<3, 4>("alien_22"),
        alien::<3, 5>("alien_23"),
        alien::<4, 0>("alien_24"),
        alien::<4, 1>("alien_25"),
        alien::<4, 2>("alien_26"),
        alien::<4, 3>("alien_27"),
        alien::<4, 4>("alien_28"),
        alien::<4, 5>("alien_29"),
        alien::<5, 0>("alien_30"),
        alien::<5, 1>("alien_31"),
        alien::<5, 2>("alien_32"),
        alien::<5, 3>("alien_33"),
        alien::<5, 4>("alien_34"),
        alien::<5, 5>("alien_35"),
        shot::<81, 83>("enemy_shot_0"),
        shot::<82, 84>("enemy_shot_1"),
        shot::<85, 87>("player_shot"),
        Object {
            name: "satellite",
            top: Coord::Fixed(12.0),
            left: Coord::Ram(30, -1.0),
            size: (8.0, 7.0),
            present: Presence::When(|ram| ram[30] != 0 && ram[30] != 180),
            colours: &[[151, 25, 122]],
        },
    ],
};

#[cfg(test)]
mod tests {
    #[test]
    fn ram_positions_land_on_their_objects() {
        use crate::ale::objects::check::{assert_matches, Expect, EXPECT};
        // The satellite crosses the top now and then; checked when it does.
        assert_matches(&super::GAME, Expect { rare: &["satellite"], ..EXPECT });
    }
}
