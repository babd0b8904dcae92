//! Boxing. Addresses: AtariARI (`player_x` 32, `player_y` 34, `enemy_x` 33,
//! `enemy_y` 35); offsets, sizes and colours: OCAtari `ocatari/ram/boxing.py`
//! (the box is the boxer's body, arms not extended).

use crate::ale::objects::{Coord, Game, Object, Presence};

pub const GAME: Game = Game {
    name: "boxing",
    objects: &[
        Object {
            name: "player",
            top: Coord::Ram(34, 38.0),
            left: Coord::Ram(32, 5.0),
            size: (46.0, 14.0),
            present: Presence::Always,
            colours: &[[214, 214, 214]],
        },
        Object {
            name: "enemy",
            top: Coord::Ram(35, 38.0),
            left: Coord::Ram(33, 4.0),
            size: (46.0, 14.0),
            present: Presence::Always,
            colours: &[[0, 0, 0]],
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
