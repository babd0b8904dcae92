//! Skiing: the skier, and the eight slots of the slope's objects, each a
//! tree, a mogul or a gate's two flags. Addresses: AtariARI (`player_x`
//! 25); the skier's row (byte 26), and per slot s its kind (byte 70 + s:
//! 85 tree, 5 mogul, 2 gate), column (62 + s), row (86 + s) and a tree's
//! drawn height (54 + s), with offsets, sizes and colours: OCAtari
//! `ocatari/ram/skiing.py`. OCAtari follows the slots from frame to frame;
//! here each slot is read as it stands, and an object is reported while it
//! is inside the slope's window (rows 32..178; a tree that would wrap past
//! the right edge is not reported).

use crate::ale::objects::{within_rows, Coord, Game, Object, Presence};
use crate::ale::RAM_SIZE;

const TREE: &[[u8; 3]] = &[[110, 156, 66], [82, 126, 45], [158, 208, 101], [72, 160, 72]];
const FLAG: &[[u8; 3]] = &[[66, 72, 200], [184, 50, 50]];
const MOGUL: &[[u8; 3]] = &[[192, 192, 192], [214, 214, 214]];

/// The slot kinds (byte 70 + s).
const KIND_TREE: u8 = 85;
const KIND_MOGUL: u8 = 5;
const KIND_GATE: u8 = 2;

/// The rows the slope is drawn on.
const SLOPE: std::ops::Range<f32> = 32.0..178.0;

/// A slot's top row before clipping: rows count up the slope in byte 86 + s.
fn slot_top<const S: usize>(ram: &[u8; RAM_SIZE], offset: f32) -> f32 {
    SLOPE.end - f32::from(ram[86 + S]) + offset
}

/// A tree's drawn height: byte 54 + s, at most the sprite's 30 rows (it is
/// cut short as it enters the slope's window).
fn tree_height<const S: usize>(ram: &[u8; RAM_SIZE]) -> f32 {
    f32::from(ram[54 + S]).min(TREE_SIZE.0)
}

const TREE_SIZE: (f32, f32) = (30.0, 16.0);

/// The top of a 30-row box centred on the drawn part of the tree.
fn tree_top<const S: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    let (top, drawn) = (slot_top::<S>(ram, 4.0), tree_height::<S>(ram));
    within_rows(top, drawn, SLOPE).then_some(top + (drawn - TREE_SIZE.0) / 2.0)
}

fn tree_left<const S: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    let left = f32::from(ram[62 + S]) - 3.0;
    (left + TREE_SIZE.1 <= 160.0).then_some(left)
}

fn is_kind<const S: usize, const KIND: u8>(ram: &[u8; RAM_SIZE]) -> bool {
    ram[70 + S] == KIND
}

fn is_tree<const S: usize>(ram: &[u8; RAM_SIZE]) -> bool {
    is_kind::<S, KIND_TREE>(ram) && ram[54 + S] != 0 && ram[54 + S] != 255
}

fn mogul_top<const S: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    let top = slot_top::<S>(ram, 3.0);
    within_rows(top, 7.0, SLOPE).then_some(top)
}

fn flag_top<const S: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    let top = slot_top::<S>(ram, 4.0);
    within_rows(top, 14.0, SLOPE).then_some(top)
}

/// A gate's flags: the left one at the slot's column + 1, the right one 32
/// pixels further.
fn flag_left<const S: usize, const RIGHT: usize>(ram: &[u8; RAM_SIZE]) -> Option<f32> {
    Some(f32::from(ram[62 + S]) + 1.0 + 32.0 * RIGHT as f32)
}

/// Slot `S`'s three possible objects: a tree, a mogul, a gate's two flags.
const fn slot<const S: usize>(names: [&'static str; 4]) -> [Object; 4] {
    [
        Object {
            name: names[0],
            top: Coord::From(tree_top::<S>),
            left: Coord::From(tree_left::<S>),
            size: TREE_SIZE,
            present: Presence::When(is_tree::<S>),
            colours: TREE,
        },
        Object {
            name: names[1],
            top: Coord::From(mogul_top::<S>),
            left: Coord::Ram(62 + S, 2.0),
            size: (7.0, 16.0),
            present: Presence::When(is_kind::<S, KIND_MOGUL>),
            colours: MOGUL,
        },
        Object {
            name: names[2],
            top: Coord::From(flag_top::<S>),
            left: Coord::From(flag_left::<S, 0>),
            size: (14.0, 5.0),
            present: Presence::When(is_kind::<S, KIND_GATE>),
            colours: FLAG,
        },
        Object {
            name: names[3],
            top: Coord::From(flag_top::<S>),
            left: Coord::From(flag_left::<S, 1>),
            size: (14.0, 5.0),
            present: Presence::When(is_kind::<S, KIND_GATE>),
            colours: FLAG,
        },
    ]
}

const S0: [Object; 4] = slot::<0>(["tree_0", "mogul_0", "flag_0", "flag_1"]);
const S1: [Object; 4] = slot::<1>(["tree_1", "mogul_1", "flag_2", "flag_3"]);
const S2: [Object; 4] = slot::<2>(["tree_2", "mogul_2", "flag_4", "flag_5"]);
const S3: [Object; 4] = slot::<3>(["tree_3", "mogul_3", "flag_6", "flag_7"]);
const S4: [Object; 4] = slot::<4>(["tree_4", "mogul_4", "flag_8", "flag_9"]);
const S5: [Object; 4] = slot::<5>(["tree_5", "mogul_5", "flag_10", "flag_11"]);
const S6: [Object; 4] = slot::<6>(["tree_6", "mogul_6", "flag_12", "flag_13"]);
const S7: [Object; 4] = slot::<7>(["tree_7", "mogul_7", "flag_14", "flag_15"]);

pub const GAME: Game = Game {
    name: "skiing",
    objects: &[
        Object {
            name: "player",
            top: Coord::Ram(26, -80.0),
            left: Coord::Ram(25, 0.0),
            size: (18.0, 10.0),
            present: Presence::Always,
            colours: &[[214, 92, 92]],
        },
        S0[0],
        S0[1],
        S0[2],
        S0[3],
        S1[0],
        S1[1],
        S1[2],
        S1[3],
        S2[0],
        S2[1],
        S2[2],
        S2[3],
        S3[0],
        S3[1],
        S3[2],
        S3[3],
        S4[0],
        S4[1],
        S4[2],
        S4[3],
        S5[0],
        S5[1],
        S5[2],
        S5[3],
        S6[0],
        S6[1],
        S6[2],
        S6[3],
        S7[0],
        S7[1],
        S7[2],
        S7[3],
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
