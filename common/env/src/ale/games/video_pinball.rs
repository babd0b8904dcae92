//! Video Pinball: the ball. Addresses: AtariARI (`ball_x` 67, `ball_y`
//! 68); offsets, size and colour: OCAtari `ocatari/ram/videopinball.py`. The
//! flippers and the table's targets stay in their places (not reported).

use crate::ale::objects::{Coord, Game, Object, Presence};

pub const GAME: Game = Game {
    name: "video_pinball",
    objects: &[Object {
        name: "ball",
        top: Coord::Ram(68, -3.0),
        left: Coord::Ram(67, 0.0),
        size: (4.0, 2.0),
        present: Presence::Always,
        colours: &[[104, 72, 198]],
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
