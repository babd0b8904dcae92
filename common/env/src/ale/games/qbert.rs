//! Q*bert: the player. Addresses: AtariARI (`player_x` 43, `player_y` 67);
//! offsets (by how far down the pyramid), size and colour: OCAtari
//! `ocatari/ram/qbert.py` (its other creatures are tracked from frame to
//! frame: not reported).

use crate::ale::objects::{Coord, Game, Object, Presence};

pub const GAME: Game = Game {
    name: "qbert",
    objects: &[Object {
        name: "player",
        top: Coord::From(|ram| {
            let y = f32::from(ram[67]);
            Some(if y < 70.0 {
                y - 8.0
            } else if y < 100.0 {
                y - 7.0
            } else {
                y - 6.0
            })
        }),
        left: Coord::Ram(43, -3.0),
        size: (20.0, 8.0),
        present: Presence::When(|ram| ram[67] > 16 && ram[67] < 210 && ram[59] != 255),
        colours: &[[181, 83, 40]],
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
