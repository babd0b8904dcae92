//! Demon Attack: the player's cannon. x is byte 16 (OCAtari; AtariARI's
//! `player_x` 22 is the missile's), decoded as OCAtari
//! `ocatari/ram/demonattack.py` does: the low 4 bits count 15-pixel steps,
//! the high 4 bits a fine offset. Row, size and colour: the same file.

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

pub const GAME: Game = Game {
    name: "demon_attack",
    objects: &[Object {
        name: "player",
        top: Coord::Fixed(174.0),
        left: Coord::From(player_left),
        size: (12.0, 7.0),
        present: Presence::Always,
        colours: &[[184, 70, 162]],
    }],
};

#[cfg(test)]
mod tests {
    #[test]
    fn ram_positions_land_on_their_objects() {
        use crate::ale::objects::check::{assert_matches, EXPECT};
        assert_matches(&super::GAME, EXPECT);
    }
}
