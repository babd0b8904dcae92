//! Ms. Pac-Man: the player, the four ghosts and the fruit. Addresses:
//! AtariARI (player 10/16, ghosts 6..=9 / 12..=15, fruit 11/17); offsets,
//! sizes and colours: OCAtari `ocatari/ram/mspacman.py`. The ghosts are
//! drawn in turns, one frame in four each, so their check looks at the last
//! 4 frames. None is drawn while Ms. Pac-Man dies (byte 33 is 255 for those
//! 40 frames; found here, not in either table).

use crate::ale::objects::{Coord, Game, Object, Presence};
use crate::ale::RAM_SIZE;

/// A ghost while frightened, and while it flashes before it recovers.
const FRIGHTENED: [u8; 3] = [66, 114, 194];
const FLASHING: [u8; 3] = [214, 214, 214];

fn ghost_shown(ram: &[u8; RAM_SIZE]) -> bool {
    ram[33] != 255
}

/// Ghost `K` (0 Sue, orange; 1 Inky, cyan; 2 Pinky, pink; 3 Blinky, red).
const fn ghost<const K: usize>(name: &'static str, colours: &'static [[u8; 3]]) -> Object {
    Object {
        name,
        top: Coord::Ram(12 + K, 1.0),
        left: Coord::Ram(6 + K, -13.0),
        size: (10.0, 9.0),
        present: Presence::When(ghost_shown),
        colours,
    }
}

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
        ghost::<0>("ghost_0", &[[180, 122, 48], FRIGHTENED, FLASHING]),
        ghost::<1>("ghost_1", &[[84, 184, 153], FRIGHTENED, FLASHING]),
        ghost::<2>("ghost_2", &[[198, 89, 179], FRIGHTENED, FLASHING]),
        ghost::<3>("ghost_3", &[[200, 72, 72], FRIGHTENED, FLASHING]),
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
        // The fruit comes now and then; checked when it does. The ghosts
        // take turns: one frame in four each.
        assert_matches(&super::GAME, Expect { pool: 4, rare: &["fruit"], ..EXPECT });
    }
}
