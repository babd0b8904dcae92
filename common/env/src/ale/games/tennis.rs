//! Tennis: the player (orange), the opponent (blue), the ball and its
//! shadow. The players swap ends between sets: byte 80 says which RAM slot is
//! the player's. Addresses: AtariARI (player 26/24, enemy 27/25, `ball_x`
//! 16; its `ball_y` 17 is not the drawn ball's row, OCAtari's 54 is);
//! offsets, sizes and colours: OCAtari `ocatari/ram/tennis.py`.

use crate::ale::objects::{Coord, Game, Object, Presence};

/// The RAM slot (0 or 1) of the player; the opponent has the other.
fn slot(ram: &[u8; crate::ale::RAM_SIZE], player: bool) -> usize {
    usize::from((ram[80] == 0) != player)
}

fn ball_top(ram: &[u8; crate::ale::RAM_SIZE]) -> f32 {
    189.0 - f32::from(ram[54])
}

pub const GAME: Game = Game {
    name: "tennis",
    objects: &[
        Object {
            name: "player",
            top: Coord::From(|ram| Some(166.0 - f32::from(ram[24 + slot(ram, true)]))),
            left: Coord::From(|ram| Some(f32::from(ram[26 + slot(ram, true)]) - 1.0)),
            size: (23.0, 13.0),
            present: Presence::Always,
            colours: &[[240, 128, 128]],
        },
        Object {
            name: "enemy",
            top: Coord::From(|ram| Some(166.0 - f32::from(ram[24 + slot(ram, false)]))),
            left: Coord::From(|ram| Some(f32::from(ram[26 + slot(ram, false)]) - 1.0)),
            size: (23.0, 13.0),
            present: Presence::Always,
            colours: &[[117, 128, 240]],
        },
        Object {
            name: "ball",
            top: Coord::From(|ram| Some(ball_top(ram))),
            left: Coord::Ram(16, -2.0),
            size: (2.0, 2.0),
            present: Presence::When(|ram| ram[16] > 2 && !(98.0..113.0).contains(&ball_top(ram))),
            colours: &[[236, 236, 236]],
        },
        Object {
            name: "ball_shadow",
            top: Coord::From(|ram| Some(189.0 - f32::from(ram[55]))),
            left: Coord::Ram(16, -2.0),
            size: (2.0, 2.0),
            present: Presence::When(|ram| {
                let top = 189.0 - f32::from(ram[55]);
                ram[16] > 2 && ram[55] != ram[54] && !(100.0..113.0).contains(&top)
            }),
            colours: &[[74, 74, 74]],
        },
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
