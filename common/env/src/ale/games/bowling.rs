//! Bowling: the bowler, the ball and the ten pins. Addresses: AtariARI
//! (`player_x` 29, `player_y` 40, `ball_x` 30, `ball_y` 41, pins 57..=66);
//! offsets (y counts down in steps of two rows), sizes and colours: OCAtari
//! `ocatari/ram/bowling.py`.

use crate::ale::objects::{Coord, Game, Object, Presence};

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
        Object {
            name: "pin_0",
            top: Coord::From(|ram| Some(169.0 - 2.0 * f32::from(ram[47]))),
            left: Coord::From(|ram| Some(135.0 - 2.0 * f32::from(ram[57]))),
            size: (4.0, 2.0),
            present: Presence::When(|ram| ram[57] < 250),
            colours: &[[45, 50, 184]],
        },
        Object {
            name: "pin_1",
            top: Coord::From(|ram| Some(169.0 - 2.0 * f32::from(ram[48]))),
            left: Coord::From(|ram| Some(135.0 - 2.0 * f32::from(ram[58]))),
            size: (4.0, 2.0),
            present: Presence::When(|ram| ram[58] < 250),
            colours: &[[45, 50, 184]],
        },
        Object {
            name: "pin_2",
            top: Coord::From(|ram| Some(169.0 - 2.0 * f32::from(ram[49]))),
            left: Coord::From(|ram| Some(135.0 - 2.0 * f32::from(ram[59]))),
            size: (4.0, 2.0),
            present: Presence::When(|ram| ram[59] < 250),
            colours: &[[45, 50, 184]],
        },
        Object {
            name: "pin_3",
            top: Coord::From(|ram| Some(169.0 - 2.0 * f32::from(ram[50]))),
            left: Coord::From(|ram| Some(135.0 - 2.0 * f32::from(ram[60]))),
            size: (4.0, 2.0),
            present: Presence::When(|ram| ram[60] < 250),
            colours: &[[45, 50, 184]],
        },
        Object {
            name: "pin_4",
            top: Coord::From(|ram| Some(169.0 - 2.0 * f32::from(ram[51]))),
            left: Coord::From(|ram| Some(135.0 - 2.0 * f32::from(ram[61]))),
            size: (4.0, 2.0),
            present: Presence::When(|ram| ram[61] < 250),
            colours: &[[45, 50, 184]],
        },
        Object {
            name: "pin_5",
            top: Coord::From(|ram| Some(169.0 - 2.0 * f32::from(ram[52]))),
            left: Coord::From(|ram| Some(135.0 - 2.0 * f32::from(ram[62]))),
            size: (4.0, 2.0),
            present: Presence::When(|ram| ram[62] < 250),
            colours: &[[45, 50, 184]],
        },
        Object {
            name: "pin_6",
            top: Coord::From(|ram| Some(169.0 - 2.0 * f32::from(ram[53]))),
            left: Coord::From(|ram| Some(135.0 - 2.0 * f32::from(ram[63]))),
            size: (4.0, 2.0),
            present: Presence::When(|ram| ram[63] < 250),
            colours: &[[45, 50, 184]],
        },
        Object {
            name: "pin_7",
            top: Coord::From(|ram| Some(169.0 - 2.0 * f32::from(ram[54]))),
            left: Coord::From(|ram| Some(135.0 - 2.0 * f32::from(ram[64]))),
            size: (4.0, 2.0),
            present: Presence::When(|ram| ram[64] < 250),
            colours: &[[45, 50, 184]],
        },
        Object {
            name: "pin_8",
            top: Coord::From(|ram| Some(169.0 - 2.0 * f32::from(ram[55]))),
            left: Coord::From(|ram| Some(135.0 - 2.0 * f32::from(ram[65]))),
            size: (4.0, 2.0),
            present: Presence::When(|ram| ram[65] < 250),
            colours: &[[45, 50, 184]],
        },
        Object {
            name: "pin_9",
            top: Coord::From(|ram| Some(169.0 - 2.0 * f32::from(ram[56]))),
            left: Coord::From(|ram| Some(135.0 - 2.0 * f32::from(ram[66]))),
            size: (4.0, 2.0),
            present: Presence::When(|ram| ram[66] < 250),
            colours: &[[45, 50, 184]],
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
