//! Environments the actor drives: Atari through ALE and the built-in game.
