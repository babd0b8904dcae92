//! Pong. Addresses: AtariARI (`player_y` 51, `enemy_y` 50, `ball_x` 49,
//! `ball_y` 54); offsets, sizes and colours: OCAtari `ocatari/ram/pong.py`
//! (the paddles stay in their columns, 140 and 16).

use crate::ale::objects::{Coord, Game, Object, Presence};

pub const GAME: Game = Game {
    name: "pong",
    objects: &[
        Object {
            name: "player",
            top: Coord::Ram(51, -13.0),
            left: Coord::Fixed(140.0),
            size: (15.0, 4.0),
            present: Presence::When(|ram| ram[51] > 13),
            colours: &[[92, 186, 92]],
        },
        Object {
            name: "enemy",
            top: Coord::Ram(50, -15.0),
            left: Coord::Fixed(16.0),
            size: (15.0, 4.0),
            present: Presence::When(|ram| ram[50] > 33),
            colours: &[[213, 130, 74]],
        },
        Object {
            name: "ball",
            top: Coord::Ram(54, -14.0),
            left: Coord::Ram(49, -49.0),
            size: (4.0, 2.0),
            present: Presence::When(|ram| ram[54] != 0 && ram[49] > 49),
            colours: &[[236, 236, 236]],
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
