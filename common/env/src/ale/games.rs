//! The games whose objects are declared as tables ([`super::objects`]), one
//! file each. Each file names where its addresses and offsets come from and
//! holds the test that checks them against the frames. Looked at and left
//! out because the check failed: Montezuma's Revenge's player (AtariARI
//! 42/43 with OCAtari's offsets: 75% of positions on its colour) and Private
//! Eye's (88%, its size changes when it jumps).

mod asteroids;
mod berzerk;
mod bowling;
mod boxing;
mod breakout;
mod demon_attack;
mod enduro;
mod freeway;
mod frostbite;
mod hero;
mod ms_pacman;
mod pitfall;
mod pong;
mod qbert;
mod riverraid;
mod skiing;
mod space_invaders;
mod tennis;
mod video_pinball;
mod yars_revenge;

use super::objects::Game;

/// Every declared game.
pub const TABLES: &[&Game] = &[
    &asteroids::GAME,
    &berzerk::GAME,
    &bowling::GAME,
    &boxing::GAME,
    &breakout::GAME,
    &demon_attack::GAME,
    &enduro::GAME,
    &freeway::GAME,
    &frostbite::GAME,
    &hero::GAME,
    &ms_pacman::GAME,
    &pitfall::GAME,
    &pong::GAME,
    &qbert::GAME,
    &riverraid::GAME,
    &skiing::GAME,
    &space_invaders::GAME,
    &tennis::GAME,
    &video_pinball::GAME,
    &yars_revenge::GAME,
];

/// The table of the game whose ROM is `name`, if one is declared.
pub fn table(name: &str) -> Option<&'static Game> {
    TABLES.iter().copied().find(|g| g.name == name)
}
