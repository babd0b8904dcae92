//! Asteroids: the player's ship. Addresses: AtariARI (`player_x` 73,
//! `player_y` 74); the column's decoding (a coarse and a fine part, as the
//! 2600 positions sprites), the row, size, colour and presence: OCAtari
//! `ocatari/ram/asteroids.py`. Its asteroids are not reported (OCAtari
//! itself calls their x "hard to interpret").

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

pub const GAME: Game = Game {
    name: "asteroids",
    objects: &[Object {
        name: "player",
        top: Coord::From(|ram| Some(2.0 * f32::from(ram[74]) + 18.0)),
        left: Coord::From(player_left),
        size: (10.0, 6.0),
        present: Presence::When(|ram| ram[74] != 224),
        colours: &[[240, 128, 128]],
    }],
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
