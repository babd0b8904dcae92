//! Bowling: the bowler, the ball and the ten pins. Addresses: AtariARI
//! (`player_x` 29, `player_y` 40, `ball_x` 30, `ball_y` 41, pins 57..=66);
//! offsets (y counts down in steps of two rows), sizes and colours: OCAtari
//! `ocatari/ram/bowling.py`.

use crate::ale::objects::{Coord, Game, Object, Presence};
use crate::ale::RAM_SIZE;

fn pin_top<const P: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    Some(169.0 - 2.0 * f32::from(ram[47 + P]))
}

fn pin_left<const P: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    Some(135.0 - 2.0 * f32::from(ram[57 + P]))
}

fn pin_standing<const P: usize>(ram: &[u8; RAM_SIZE]) -> bool {
    ram[57 + P] < 250
}

/// Pin `P` (bytes 47 + P and 57 + P).
const fn pin<const P: usize>(name: &'static str) -> Object {
    Object {
        name,
        top: Coord::From(pin_top::<P>),
        left: Coord::From(pin_left::<P>),
        size: (4.0, 2.0),
        present: Presence::When(pin_standing::<P>),
        colours: &[[45, 50, 184]],
    }
}

pub const GAME: Game = Game {
    name: "bowling",
    objects: &[
        Object {
            name: "player",
            top: Coord::From(|ram| Some(141.0 - 2.0 * f32::from(ram[40]))),
            left: Coord::Ram(29, 8.0),
            size: (32.0, 8.0),
            present: Presence::Always,
            colours: &[[84, 92, 214]],
        },
        Object {
            name: "ball",
            top: Coord::From(|ram| Some(163.0 - 2.0 * f32::from(ram[41]))),
            left: Coord::Ram(30, 7.0),
            size: (10.0, 4.0),
            present: Presence::Always,
            colours: &[[45, 50, 184]],
        },
        pin::<0>("pin_0"),
        pin::<1>("pin_1"),
        pin::<2>("pin_2"),
        pin::<3>("pin_3"),
        pin::<4>("pin_4"),
        pin::<5>("pin_5"),
        pin::<6>("pin_6"),
        pin::<7>("pin_7"),
        pin::<8>("pin_8"),
        pin::<9>("pin_9"),
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
