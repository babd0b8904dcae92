//! Enduro: the player's car and the seven slots of the other cars. Byte 46
//! is the player's place across the road (a signed offset from column 77, in
//! half pixels), byte 52 its row below 89: OCAtari `ocatari/ram/enduro.py`
//! (AtariARI annotates no Enduro byte). A car is in slot k while byte 27 + k
//! is not 0 (OCAtari), bit 0 of it choosing the right lane.
//!
//! Where a car is drawn was measured here (OCAtari's formula for it is an
//! approximation, to within about 8 pixels): the slots are bands of the
//! road's depth, 0 the nearest, and byte 59 / 8 (0..=15) says how far into
//! its band a car is, so its depth is d = k + (byte 59 / 8) / 16. Its top
//! row and its lane's centre column at that depth are read off the
//! piecewise-linear tables below; the column then moves with the player's
//! place (signed byte 46, one column per unit) and with the road's bend
//! (signed byte 34, by a factor that grows with depth). Fitted on 16,000
//! frames of random play (16,150 cars seen), the centre columns are off by
//! 0.6 pixels on average (95% within 1.7) and the top rows by 0.4 (95%
//! within 1); the sprite's size is the slot's. In fog (the background colour, byte 2,
//! is 2) nothing above row 85 is drawn, so those cars are not reported;
//! a car below row 157 is under the dashboard.

use crate::ale::objects::{Coord, Game, Object, Presence};
use crate::ale::RAM_SIZE;

/// Per depth 0, 1, ..., 7 (the bands' edges): a car's top row, the centre
/// column of the left and of the right lane with the player in the middle
/// and the road straight, and how far a unit of the road's bend moves a
/// car's column.
const TOP: [f32; 8] = [160.0, 135.8, 114.5, 97.3, 85.2, 74.5, 68.3, 62.9];
const LEFT_LANE: [f32; 8] = [57.7, 63.8, 69.4, 74.5, 78.4, 81.5, 83.5, 85.7];
const RIGHT_LANE: [f32; 8] = [117.8, 111.1, 104.1, 98.7, 94.6, 91.4, 89.6, 88.4];
const BEND: [f32; 8] = [0.0, 0.023, 0.124, 0.273, 0.414, 0.569, 0.685, 0.78];

/// Each slot's sprite (height, width): smaller with depth.
const SIZES: [(f32, f32); 7] =
    [(11.0, 16.0), (8.0, 12.0), (6.0, 8.0), (4.0, 6.0), (3.0, 4.0), (2.0, 4.0), (1.0, 2.0)];

/// The other cars' colours by day, at dusk and by night (their tail lights).
const CAR: &[[u8; 3]] = &[
    [66, 114, 194],
    [162, 162, 42],
    [66, 158, 130],
    [162, 134, 56],
    [110, 156, 66],
    [198, 108, 58],
    [184, 70, 162],
];

/// Background colour index of the fog.
const FOG: u8 = 2;
/// The fog hides what is above this row.
const FOG_LINE: f32 = 85.0;
/// The dashboard starts at this row.
const DASHBOARD: f32 = 157.0;

fn signed(byte: u8) -> f32 {
    f32::from(byte as i8)
}

/// `table` at depth `d` in [0, 7], linearly between its entries.
fn at_depth(table: &[f32; 8], d: f32) -> f32 {
    let i = (d as usize).min(6);
    table[i] + (table[i + 1] - table[i]) * (d - i as f32)
}

fn depth<const K: usize>(ram: &[u8; RAM_SIZE]) -> f32 {
    K as f32 + f32::from(ram[59] >> 3) / 16.0
}

fn car_top<const K: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    let top = at_depth(&TOP, depth::<K>(ram));
    let hidden = top + SIZES[K].0 > DASHBOARD || (ram[2] == FOG && top < FOG_LINE);
    (!hidden).then_some(top)
}

fn car_left<const K: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    let d = depth::<K>(ram);
    let lane = if ram[27 + K] & 1 == 1 { &RIGHT_LANE } else { &LEFT_LANE };
    let centre = at_depth(lane, d) + signed(ram[46]) + at_depth(&BEND, d) * signed(ram[34]);
    Some(centre - (SIZES[K].1 - 1.0) / 2.0)
}

const fn car<const K: usize>(name: &'static str) -> Object {
    Object {
        name,
        top: Coord::From(car_top::<K>),
        left: Coord::From(car_left::<K>),
        size: SIZES[K],
        present: Presence::NonZero(27 + K),
        colours: CAR,
    }
}

fn player_left(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    let r = ram[46];
    Some(if r & 128 != 0 { 79.0 + f32::from((255 - r) >> 1) } else { 77.0 - f32::from(r >> 1) })
}

pub const GAME: Game = Game {
    name: "enduro",
    objects: &[
        Object {
            name: "player",
            top: Coord::Ram(52, 89.0),
            left: Coord::From(player_left),
            size: (11.0, 16.0),
            present: Presence::Always,
            colours: &[[192, 192, 192]],
        },
        car::<0>("car_0"),
        car::<1>("car_1"),
        car::<2>("car_2"),
        car::<3>("car_3"),
        car::<4>("car_4"),
        car::<5>("car_5"),
        car::<6>("car_6"),
    ],
};

#[cfg(test)]
mod tests {
    #[test]
    fn ram_positions_land_on_their_objects() {
        use crate::ale::objects::check::{assert_matches, Expect, EXPECT};
        // Day, dusk, night and fog come in turn over 16,000 frames.
        assert_matches(&super::GAME, Expect { frames: 16000, ..EXPECT });
    }
}
