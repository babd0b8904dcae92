//! Asteroids: the player's ship and its two shots. Addresses: AtariARI
//! (`player_x` 73, `player_y` 74, missiles' x 83, 84 and y 86, 87); the
//! column's decoding (a coarse and a fine part, as the 2600 positions
//! sprites), rows, sizes, colours and presence: OCAtari
//! `ocatari/ram/asteroids.py`. The rocks are not reported: their box
//! changes with their size, which a table's fixed box does not follow.

use crate::ale::objects::{Coord, Game, Object, Presence};
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
