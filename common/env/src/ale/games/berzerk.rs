//! Berzerk: the player. Addresses: AtariARI (`player_x` 19, `player_y` 11);
//! offset, size, colour and presence: OCAtari `ocatari/ram/berzerk.py`. The
//! robots (AtariARI x 65..=72, y 56..=63) are not reported yet: at OCAtari's
//! places and colours (the maximum of 4 frames) they were found in 85% of
//! the frames of random play, under this project's 90%.

use crate::ale::objects::{Coord, Game, Object, Presence};

pub const GAME: Game = Game {
    name: "berzerk",
    objects: &[Object {
        name: "player",
        top: Coord::Ram(11, 5.0),
        left: Coord::Ram(19, 4.0),
        size: (20.0, 8.0),
        present: Presence::When(|ram| ram[80] < 44 && ram[19] != 0),
        colours: &[[240, 170, 103]],
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
