//! Pitfall!: the player. Addresses: AtariARI (`player_x` 97, `player_y`
//! 105); offsets, size and colours: OCAtari `ocatari/ram/pitfall.py` (its
//! other objects depend on the scene: not reported).

use crate::ale::objects::{Coord, Game, Object, Presence};

pub const GAME: Game = Game {
    name: "pitfall",
    objects: &[Object {
        name: "player",
        top: Coord::Ram(105, 72.0),
        left: Coord::Ram(97, 0.0),
        size: (21.0, 8.0),
        present: Presence::Always,
        colours: &[[53, 95, 24], [105, 105, 15], [228, 111, 111], [92, 186, 92]],
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
