//! H.E.R.O.: the player. Addresses: AtariARI (`player_x` 27, `player_y`
//! 31); offsets, size and colour: OCAtari `ocatari/ram/hero.py` (its enemies
//! depend on per-level tables: not reported).

use crate::ale::objects::{Coord, Game, Object, Presence};

pub const GAME: Game = Game {
    name: "hero",
    objects: &[Object {
        name: "player",
        top: Coord::From(|ram| Some(135.0 - f32::from(ram[31]))),
        left: Coord::Ram(27, 1.0),
        size: (25.0, 6.0),
        present: Presence::Always,
        colours: &[[84, 138, 210]],
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
