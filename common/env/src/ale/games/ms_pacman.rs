//! Ms. Pac-Man: the player and the fruit. Addresses: AtariARI (player
//! 10/16, fruit 11/17); offsets, sizes and colours: OCAtari
//! `ocatari/ram/mspacman.py`. The ghosts (AtariARI 6..=9 / 12..=15) are not
//! reported yet: at those places a ghost of its colour was in the frame (the
//! maximum of 4 frames, as they are drawn in turns) only 57-78% of the time
//! in random play, so when they are hidden is not known from the RAM.

use crate::ale::objects::{Coord, Game, Object, Presence};

pub const GAME: Game = Game {
    name: "ms_pacman",
    objects: &[
        Object {
            name: "player",
            top: Coord::Ram(16, 1.0),
            left: Coord::Ram(10, -13.0),
            size: (10.0, 9.0),
            present: Presence::Always,
            colours: &[[210, 164, 74]],
        },
        Object {
            name: "fruit",
            top: Coord::Ram(17, 1.0),
            left: Coord::Ram(11, -13.0),
            size: (10.0, 9.0),
            present: Presence::When(|ram| ram[11] > 0 && ram[17] > 0),
            colours: &[[184, 50, 50], [162, 162, 42], [198, 108, 58], [110, 156, 66]],
        },
    ],
};

#[cfg(test)]
mod tests {
    #[test]
    fn ram_positions_land_on_their_objects() {
        use crate::ale::objects::check::{assert_matches, Expect, EXPECT};
        // The fruit comes now and then; checked when it does.
        assert_matches(&super::GAME, Expect { rare: &["fruit"], ..EXPECT });
    }
}
