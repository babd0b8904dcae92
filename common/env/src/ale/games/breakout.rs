//! Breakout: the paddle and the ball. Addresses: AtariARI (`player_x` 72,
//! `ball_x` 99, `ball_y` 101); offsets, sizes and colours: OCAtari
//! `ocatari/ram/breakout.py`. The bricks are not reported (they are the
//! playfield, not objects that move).

use crate::ale::objects::{Coord, Game, Object, Presence};

pub const GAME: Game = Game {
    name: "breakout",
    objects: &[
        Object {
            name: "player",
            top: Coord::Fixed(189.0),
            left: Coord::Ram(72, -47.0),
            size: (4.0, 16.0),
            present: Presence::Always,
            colours: &[[200, 72, 72]],
        },
        Object {
            name: "ball",
            top: Coord::Ram(101, 9.0),
            left: Coord::Ram(99, -49.0),
            size: (4.0, 2.0),
            present: Presence::When(|ram| ram[101] != 0 && u16::from(ram[101]) + 9 <= 196),
            colours: &[[200, 72, 72]],
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
