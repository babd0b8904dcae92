//! Freeway: the player's chicken (the left one) and the cars of the ten
//! lanes (`car_0` in the top lane). Addresses: AtariARI (`player_y` 14, the
//! cars' x 108..=117); offsets, sizes and lane colours: OCAtari
//! `ocatari/ram/freeway.py`.

use crate::ale::objects::{Coord, Game, Object, Presence};

pub const GAME: Game = Game {
    name: "freeway",
    objects: &[
        Object {
            name: "player",
            top: Coord::From(|ram| Some(193.0 - f32::from(ram[14]))),
            left: Coord::Fixed(44.0),
            size: (8.0, 6.0),
            present: Presence::Always,
            colours: &[[252, 252, 84]],
        },
        Object {
            name: "car_0",
            top: Coord::Fixed(27.0),
            left: Coord::Ram(117, -3.0),
            size: (10.0, 8.0),
            present: Presence::Always,
            colours: &[[167, 26, 26]],
        },
        Object {
            name: "car_1",
            top: Coord::Fixed(43.0),
            left: Coord::Ram(116, -3.0),
            size: (10.0, 8.0),
            present: Presence::Always,
            colours: &[[180, 231, 117]],
        },
        Object {
            name: "car_2",
            top: Coord::Fixed(59.0),
            left: Coord::Ram(115, -3.0),
            size: (10.0, 8.0),
            present: Presence::Always,
            colours: &[[105, 105, 15]],
        },
        Object {
            name: "car_3",
            top: Coord::Fixed(75.0),
            left: Coord::Ram(114, -3.0),
            size: (10.0, 8.0),
            present: Presence::Always,
            colours: &[[228, 111, 111]],
        },
        Object {
            name: "car_4",
            top: Coord::Fixed(91.0),
            left: Coord::Ram(113, -3.0),
            size: (10.0, 8.0),
            present: Presence::Always,
            colours: &[[24, 26, 167]],
        },
        Object {
            name: "car_5",
            top: Coord::Fixed(107.0),
            left: Coord::Ram(112, -3.0),
            size: (10.0, 8.0),
            present: Presence::Always,
            colours: &[[162, 98, 33]],
        },
        Object {
            name: "car_6",
            top: Coord::Fixed(123.0),
            left: Coord::Ram(111, -3.0),
            size: (10.0, 8.0),
            present: Presence::Always,
            colours: &[[84, 92, 214]],
        },
        Object {
            name: "car_7",
            top: Coord::Fixed(139.0),
            left: Coord::Ram(110, -3.0),
            size: (10.0, 8.0),
            present: Presence::Always,
            colours: &[[184, 50, 50]],
        },
        Object {
            name: "car_8",
            top: Coord::Fixed(155.0),
            left: Coord::Ram(109, -3.0),
            size: (10.0, 8.0),
            present: Presence::Always,
            colours: &[[135, 183, 84]],
        },
        Object {
            name: "car_9",
            top: Coord::Fixed(171.0),
            left: Coord::Ram(108, -3.0),
            size: (10.0, 8.0),
            present: Presence::Always,
            colours: &[[210, 210, 64]],
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
