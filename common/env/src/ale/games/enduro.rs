//! Enduro: the player's car. Byte 46 is its place across the road (a signed
//! offset from column 77, in half pixels), byte 52 its row below 89:
//! OCAtari `ocatari/ram/enduro.py` (AtariARI annotates no Enduro byte). The
//! other cars' places follow the road's perspective and are not reported.

use crate::ale::objects::{Coord, Game, Object, Presence};
use crate::ale::RAM_SIZE;

fn player_left(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    let r = ram[46];
    Some(if r & 128 != 0 { 79.0 + f32::from((255 - r) >> 1) } else { 77.0 - f32::from(r >> 1) })
}

pub const GAME: Game = Game {
    name: "enduro",
    objects: &[Object {
        name: "player",
        top: Coord::Ram(52, 89.0),
        left: Coord::From(player_left),
        size: (11.0, 16.0),
        present: Presence::Always,
        colours: &[[192, 192, 192]],
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
