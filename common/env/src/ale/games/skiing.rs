//! Skiing: the skier. Addresses: AtariARI (`player_x` 25); y (byte 26),
//! offsets, size and colour: OCAtari `ocatari/ram/skiing.py` (its trees,
//! moguls and flags are tracked from frame to frame: not reported).

use crate::ale::objects::{Coord, Game, Object, Presence};

pub const GAME: Game = Game {
    name: "skiing",
    objects: &[Object {
        name: "player",
        top: Coord::Ram(26, -80.0),
        left: Coord::Ram(25, 0.0),
        size: (18.0, 10.0),
        present: Presence::Always,
        colours: &[[214, 92, 92]],
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
