//! Pitfall!: the player, the logs, the crocodiles, and underground the
//! scorpion or the wall. Addresses: AtariARI (`player_x` 97, `player_y`
//! 105, `logs_x` 98, `scorpion_x` 99); the player's offsets, size and
//! colours, the scene's logs (byte 19: 0 one rolling log, 1 two 16 pixels
//! apart, 2 two 32 apart, 3 three 32 apart), the crocodiles' scene (byte 20
//! = 4) and places, and the scorpion or wall (byte 29): OCAtari
//! `ocatari/ram/pitfall.py`. Found here: byte 19 = 4 is one log lying still
//! (the first scene's), a crocodiles' scene has no logs whatever byte 19
//! says, a log's left column is byte 98 + 1, and byte 29 = 255 is a wall
//! too. The fire, the snake and the treasures (one scene in 16,000 frames of
//! random play) are not reported.

use crate::ale::objects::{Coord, Game, Object, Presence};
use crate::ale::RAM_SIZE;

/// Log `N` of the scene (0: the first), or None where the scene has fewer.
fn log_offset<const N: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    if crocodiles(ram) {
        return None;
    }
    match (ram[19], N) {
        (0..=4, 0) => Some(0.0),
        (1, 1) => Some(16.0),
        (2..=3, 1) => Some(32.0),
        (3, 2) => Some(64.0),
        _ => None,
    }
}

fn log_left<const N: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    let left = (f32::from(ram[98]) + 1.0 + log_offset::<N>(ram)?) % 160.0;
    (left + 6.0 <= 160.0).then_some(left)
}

/// The scene is a pond with three crocodiles.
fn crocodiles(ram: &[u8; RAM_SIZE]) -> bool {
    ram[20] == 4
}

const fn crocodile(name: &'static str, left: f32) -> Object {
    Object {
        name,
        top: Coord::Fixed(122.0),
        left: Coord::Fixed(left),
        size: (8.0, 8.0),
        present: Presence::When(crocodiles),
        colours: &[[20, 60, 0]],
    }
}

const fn log<const N: usize>(name: &'static str) -> Object {
    Object {
        name,
        top: Coord::Fixed(118.0),
        left: Coord::From(log_left::<N>),
        size: (14.0, 6.0),
        present: Presence::When(|ram| log_offset::<N>(ram).is_some()),
        colours: &[[105, 105, 15]],
    }
}

pub const GAME: Game = Game {
    name: "pitfall",
    objects: &[
        Object {
            name: "player",
            top: Coord::Ram(105, 72.0),
            left: Coord::Ram(97, 0.0),
            size: (21.0, 8.0),
            present: Presence::Always,
            colours: &[[53, 95, 24], [105, 105, 15], [228, 111, 111], [92, 186, 92]],
        },
        log::<0>("log_0"),
        log::<1>("log_1"),
        log::<2>("log_2"),
        crocodile("crocodile_0", 60.0),
        crocodile("crocodile_1", 76.0),
        crocodile("crocodile_2", 92.0),
        Object {
            name: "scorpion",
            top: Coord::Fixed(170.0),
            left: Coord::Ram(99, 0.0),
            size: (8.0, 7.0),
            present: Presence::When(|ram| ram[29] == 0),
            colours: &[[236, 236, 236]],
        },
        Object {
            name: "wall",
            top: Coord::Fixed(148.0),
            left: Coord::Ram(99, 0.0),
            size: (31.0, 7.0),
            present: Presence::When(|ram| ram[29] == 1 || ram[29] == 255),
            colours: &[[167, 26, 26]],
        },
    ],
};

#[cfg(test)]
mod tests {
    #[test]
    fn ram_positions_land_on_their_objects() {
        use crate::ale::objects::check::{assert_matches, Expect, EXPECT};
        // Random play leaves the first scene after about 4,000 frames.
        assert_matches(&super::GAME, Expect { frames: 16000, ..EXPECT });
    }
}
