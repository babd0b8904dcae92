//! Frostbite: the player and the bear. Addresses: AtariARI (`player_x` 102,
//! `player_y` 100, `bear_x` 104); offsets, sizes, colours and presence:
//! OCAtari `ocatari/ram/frostbite.py`.

use crate::ale::objects::{Coord, Game, Object, Presence};

pub const GAME: Game = Game {
    name: "frostbite",
    objects: &[
        Object {
            name: "player",
            top: Coord::Ram(100, 29.0),
            left: Coord::Ram(102, 0.0),
            size: (18.0, 8.0),
            present: Presence::When(|ram| ram[106] != 26 && ram[107] < 18),
            colours: &[[198, 108, 58], [162, 98, 33], [142, 142, 142], [162, 162, 42]],
        },
        Object {
            name: "bear",
            top: Coord::Fixed(58.0),
            left: Coord::Ram(104, 3.0),
            size: (16.0, 14.0),
            present: Presence::When(|ram| ram[104] != 140),
            colours: &[[111, 111, 111]],
        },
    ],
};

#[cfg(test)]
mod tests {
    #[test]
    fn ram_positions_land_on_their_objects() {
        use crate::ale::objects::check::{assert_matches, Expect, EXPECT};
        // The bear comes in later levels only; checked when it does.
        assert_matches(&super::GAME, Expect { rare: &["bear"], ..EXPECT });
    }
}
