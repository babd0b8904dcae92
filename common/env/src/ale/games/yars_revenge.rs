//! Yars' Revenge: the player (Yar), drawn only while byte 53 is over 159.
//! Addresses: AtariARI (player 32/31); offset, size and colour: OCAtari
//! `ocatari/ram/yarsrevenge.py`. The Qotile (AtariARI 43/42) and the
//! destroyer missile (47/46) are not reported: at OCAtari's places and
//! colours they were found in 1% and 3% of the frames of random play.

use crate::ale::objects::{Coord, Game, Object, Presence};

pub const GAME: Game = Game {
    name: "yars_revenge",
    objects: &[Object {
        name: "player",
        top: Coord::Ram(31, 3.0),
        left: Coord::Ram(32, 0.0),
        size: (16.0, 8.0),
        present: Presence::When(|ram| ram[53] > 159),
        colours: &[[169, 128, 240]],
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
