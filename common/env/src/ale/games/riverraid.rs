//! River Raid: the player's jet and its missile. Addresses: AtariARI
//! (`player_x` 51, missile 117/50); offsets, sizes and colours: OCAtari
//! `ocatari/ram/riverraid.py` (whose enemies are tracked from frame to
//! frame, not read from the RAM alone: not reported).

use crate::ale::objects::{Coord, Game, Object, Presence};

pub const GAME: Game = Game {
    name: "riverraid",
    objects: &[
        Object {
            name: "player",
            top: Coord::Fixed(145.0),
            left: Coord::Ram(51, 1.0),
            size: (13.0, 7.0),
            present: Presence::NonZero(58),
            colours: &[[232, 232, 74]],
        },
        Object {
            name: "player_missile",
            top: Coord::From(|ram| Some(162.0 - f32::from(ram[50]))),
            left: Coord::Ram(117, -1.0),
            size: (8.0, 1.0),
            present: Presence::When(|ram| ram[117] != 0 && ram[50] <= 162),
            colours: &[[232, 232, 74]],
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
