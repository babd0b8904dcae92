//! Berzerk: the player and the room's eight robots. Addresses: AtariARI
//! (`player_x` 19, `player_y` 11, robots' x 65..=72 and y 56..=63);
//! offsets, sizes, colours and presence: OCAtari `ocatari/ram/berzerk.py`.
//! Nothing is drawn while byte 80 is 44 or more (the player dying, or the
//! room changing): found here, where OCAtari's robots were missing from
//! 11% of the frames of random play.

use crate::ale::objects::{Coord, Game, Object, Presence};
use crate::ale::RAM_SIZE;

/// The robots' colour changes from room to room (byte 92).
const ROBOT: &[[u8; 3]] = &[
    [210, 210, 64],
    [198, 108, 58],
    [214, 214, 214],
    [111, 210, 111],
    [240, 128, 128],
    [84, 160, 197],
    [232, 204, 99],
    [198, 89, 179],
];

/// The room is drawn (not the death or the change of rooms).
fn room_shown(ram: &[u8; RAM_SIZE]) -> bool {
    ram[80] < 44
}

fn robot_present<const K: usize>(ram: &[u8; RAM_SIZE]) -> bool {
    room_shown(ram) && ram[65 + K] != 0 && ram[56 + K] != 127
}

fn robot_top<const K: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    Some(2.0 * f32::from(ram[56 + K]) + 4.0)
}

const fn robot<const K: usize>(name: &'static str) -> Object {
    Object {
        name,
        top: Coord::From(robot_top::<K>),
        left: Coord::Ram(65 + K, 6.0),
        size: (16.0, 8.0),
        present: Presence::When(robot_present::<K>),
        colours: ROBOT,
    }
}

pub const GAME: Game = Game {
    name: "berzerk",
    objects: &[
        Object {
            name: "player",
            top: Coord::Ram(11, 5.0),
            left: Coord::Ram(19, 4.0),
            size: (20.0, 8.0),
            present: Presence::When(|ram| room_shown(ram) && ram[19] != 0),
            colours: &[[240, 170, 103]],
        },
        robot::<0>("robot_0"),
        robot::<1>("robot_1"),
        robot::<2>("robot_2"),
        robot::<3>("robot_3"),
        robot::<4>("robot_4"),
        robot::<5>("robot_5"),
        robot::<6>("robot_6"),
        robot::<7>("robot_7"),
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
