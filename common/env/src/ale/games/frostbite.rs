//! Frostbite: the player and the bear. Addresses: AtariARI (`player_x` 102,
//! `player_y` 100, `bear_x` 104); offsets, sizes, colours and presence:
//! OCAtari `ocatari/ram/frostbite.py`. The creatures of the four lanes
//! (birds, crabs, clams, fish; AtariARI `enemy_x` 84..=87, 84 the bottom
//! lane) at OCAtari's rows, sizes and colours, while they are wholly on
//! screen (columns 8..152: a creature at the edge is cut by the frame).

use crate::ale::objects::{Coord, Game, Object, Presence};
use crate::ale::RAM_SIZE;

/// Creature in lane `K` (0: the bottom lane).
fn creature_on_screen<const K: usize>(ram: &[u8; RAM_SIZE]) -> bool {
    (8..=152).contains(&ram[84 + K])
}

const fn creature<const K: usize>(name: &'static str) -> Object {
    Object {
        name,
        top: Coord::Fixed(160.0 - 26.0 * K as f32),
        left: Coord::Ram(84 + K, 0.0),
        size: (7.0, 8.0),
        present: Presence::When(creature_on_screen::<K>),
        colours: &[[132, 144, 252], [213, 130, 74], [210, 210, 64], [111, 210, 111]],
    }
}

pub const GAME: Game = Game {
    name: "frostbite",
    objects: &[
        Object {
            name: "player",
            top: Coord::Ram(100, 29.0),
            left: Coord::Ram(102, 0.0),
            size: (18.0, 8.0),
            present: Presence::When(|ram| ram[106] != 26 && ram[107] < 18),
            colours: &[[198, 108, 58], [162, 98, 33], [142, 142, 142], [162, 162, 42]],
        },
        Object {
            name: "bear",
            top: Coord::Fixed(58.0),
            left: Coord::Ram(104, 3.0),
            size: (16.0, 14.0),
            present: Presence::When(|ram| ram[104] != 140),
            colours: &[[111, 111, 111]],
        },
        creature::<0>("creature_0"),
        creature::<1>("creature_1"),
        creature::<2>("creature_2"),
        creature::<3>("creature_3"),
    ],
};

#[cfg(test)]
mod tests {
    #[test]
    fn ram_positions_land_on_their_objects() {
        use crate::ale::objects::check::{assert_matches, Expect, EXPECT};
        // The bear comes in later levels only; checked when it does.
        assert_matches(&super::GAME, Expect { rare: &["bear"], ..EXPECT });
    }
}
