//! Yars' Revenge: the player (Yar), the Qotile and the Swirl it becomes,
//! all drawn only while byte 53 is over 159. Addresses: AtariARI (player
//! 32/31, Qotile 43/42); offsets, sizes and the Swirl (the Qotile's bytes
//! while its column is under 145): OCAtari `ocatari/ram/yarsrevenge.py`.
//! The Qotile changes colour from frame to frame, so any colour but black
//! and the shield's counts as its own (found here; OCAtari gives one colour,
//! which matched 1% of the frames). The destroyer missile (47/46) is not
//! reported: at OCAtari's place it was on its colour in 13% of the frames.

use crate::ale::objects::{Coord, Game, Object, Presence};
use crate::ale::palette::NTSC_PALETTE;
use crate::ale::RAM_SIZE;

/// The shield's colour.
const SHIELD: u32 = 0xa3_39_15;

/// The Qotile's colours: the NTSC palette's 128 (its even entries) but black
/// and the shield's.
const QOTILE: [[u8; 3]; 126] = qotile_colours();

const fn qotile_colours() -> [[u8; 3]; 126] {
    let mut out = [[0; 3]; 126];
    let (mut i, mut n) = (0, 0);
    while i < 128 {
        let c = NTSC_PALETTE[2 * i];
        if c != 0 && c != SHIELD {
            out[n] = [(c >> 16) as u8, (c >> 8) as u8, c as u8];
            n += 1;
        }
        i += 1;
    }
    assert!(n == 126, "black and the shield's colour are each in the palette once");
    out
}

/// The game's objects are drawn.
fn drawn(ram: &[u8; RAM_SIZE]) -> bool {
    ram[53] > 159
}

pub const GAME: Game = Game {
    name: "yars_revenge",
    objects: &[
        Object {
            name: "player",
            top: Coord::Ram(31, 3.0),
            left: Coord::Ram(32, 0.0),
            size: (16.0, 8.0),
            present: Presence::When(drawn),
            colours: &[[169, 128, 240]],
        },
        Object {
            name: "qotile",
            top: Coord::Ram(42, 3.0),
            left: Coord::Ram(43, 0.0),
            size: (18.0, 8.0),
            present: Presence::When(|ram| drawn(ram) && ram[43] >= 145),
            colours: &QOTILE,
        },
        Object {
            name: "swirl",
            top: Coord::Ram(42, 3.0),
            left: Coord::Ram(43, 4.0),
            size: (18.0, 8.0),
            present: Presence::When(|ram| drawn(ram) && ram[43] < 145),
            colours: &[[181, 83, 40]],
        },
    ],
};

#[cfg(test)]
mod tests {
    #[test]
    fn ram_positions_land_on_their_objects() {
        use crate::ale::objects::check::{assert_matches, Expect, EXPECT};
        // The Swirl flies now and then; checked when it does.
        assert_matches(&super::GAME, Expect { rare: &["swirl"], ..EXPECT });
    }
}
