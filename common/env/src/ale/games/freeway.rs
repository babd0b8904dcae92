//! Freeway: the player's chicken (the left one) and the cars of the ten
//! lanes (`car_0` in the top lane). Addresses: AtariARI (`player_y` 14, the
//! cars' x 108..=117); offsets, sizes and lane colours: OCAtari
//! `ocatari/ram/freeway.py`.

use crate::ale::objects::{Coord, Game, Object, Presence};

/// A car: its lane's top row, the byte of its column, its colour.
const fn car(name: &'static str, top: f32, x: usize, colours: &'static [[u8; 3]]) -> Object {
    Object {
        name,
        top: Coord::Fixed(top),
        left: Coord::Ram(x, -3.0),
        size: (10.0, 8.0),
        present: Presence::Always,
        colours,
    }
}

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
        car("car_0", 27.0, 117, &[[167, 26, 26]]),
        car("car_1", 43.0, 116, &[[180, 231, 117]]),
        car("car_2", 59.0, 115, &[[105, 105, 15]]),
        car("car_3", 75.0, 114, &[[228, 111, 111]]),
        car("car_4", 91.0, 113, &[[24, 26, 167]]),
        car("car_5", 107.0, 112, &[[162, 98, 33]]),
        car("car_6", 123.0, 111, &[[84, 92, 214]]),
        car("car_7", 139.0, 110, &[[184, 50, 50]]),
        car("car_8", 155.0, 109, &[[135, 183, 84]]),
        car("car_9", 171.0, 108, &[[210, 210, 64]]),
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
