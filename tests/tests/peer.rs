//! The learning peer, `scripts/python/peer_vtrace.py` (docs/learning.md, "The
//! peer"): a plain-PyTorch V-trace loop that tells whether a demo run that
//! does not learn is the recipe's fault or the project's. These tests keep it
//! honest: it plays catch by the rules of `common/env/src/catch.rs`, its loop learns
//! catch with a board-reading MLP in seconds, and it trains the attention
//! agent and logs what the heads look at. (That it starts from the Rust
//! learner's initial weights is checked beside the model, in
//! `common/agent/src/model/tests.rs`.)

use std::path::PathBuf;
use std::process::Command;

use tests::demo::{random_policy_return, Curve};
use tests::TestRun;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the peer with `args` and returns its standard output (a warning on
/// standard error does not spoil it); panics with both if it fails.
fn peer(args: &[&str]) -> String {
    let python = tests::python();
    let out = Command::new(&python)
        .arg(root().join("scripts/python/peer_vtrace.py"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "peer_vtrace.py {args:?} failed:\n{stdout}{stderr}");
    stdout.into_owned()
}

#[test]
fn the_peer_plays_catch_by_the_rules_of_the_built_in_game() {
    let json: serde_json::Value = serde_json::from_str(peer(&["--check-game"]).trim()).unwrap();
    let (follow, random) = (json["follow"].as_f64().unwrap(), json["random"].as_f64().unwrap());
    // Following the ball catches every ball, as in common/env/src/catch.rs.
    assert_eq!(follow, 5.0, "{json}");
    // Random play scores what it scores in the Rust game (the peer plays 500
    // episodes, standard error about 0.07; the game 2000 here).
    let ours = random_policy_return(2000);
    assert!((random - ours).abs() < 0.3, "peer's random play {random:.2}, the game's {ours:.2}");
}

/// The loop itself learns: the same V-trace, loss, optimizer, discount and lag
/// as the demo, with a feed-forward net over the board's cells in place of
/// the attention agent, passes halfway (random to perfect) within 8e4 frames
/// (about 20 s; without the demo's warm-up, which is for the attention and
/// would take most of so short a run). At the demo's former discount of 0.99
/// it needed more than 1.5e5 on this seed, 1 (docs/learning.md).
#[test]
fn the_peer_loop_learns_catch_with_a_board_mlp() {
    let run = TestRun::new("peer-mlp");
    let dir = run.run_dir();
    peer(&[
        "--agent",
        "mlp",
        "--total-frames",
        "8e4",
        "--warmup-frames",
        "0",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let random = random_policy_return(2000);
    let curve = Curve::of(&run.logs(), (random + 5.0) / 2.0);
    println!("peer, board MLP: {curve:?}");
    assert!(curve.updates > 250, "{curve:?}"); // of 500; not every update ends an episode
    assert!(curve.last20 > random + 3.0, "the peer's loop did not learn catch: {curve:?}");
    assert!(curve.halfway_at.is_some(), "{curve:?}");
}

/// The attention agent trains in the peer, and the columns the diagnosis
/// reads are there: per head the attention on the ball, on the paddle and
/// the map's entropy, within their ranges.
#[test]
fn the_peer_trains_the_attention_agent_and_logs_its_heads() {
    let run = TestRun::new("peer-attention");
    let dir = run.run_dir();
    peer(&["--total-frames", "3e3", "--out", dir.to_str().unwrap()]);
    let rows = run.logs();
    assert!(rows.len() >= 15, "{} updates", rows.len());
    let heads = wire::config::ModelConfig::small(3).heads;
    for row in &rows {
        for h in 0..heads {
            for (measure, hi) in [("ball", 1.0), ("paddle", 1.0), ("entropy", 49f64.ln() + 1e-3)] {
                let v: f64 = row[&format!("head{h}_{measure}")].parse().unwrap();
                assert!((0.0..=hi).contains(&v), "head{h}_{measure} = {v}");
            }
        }
        let rho: f64 = row["mean_abs_log_rho"].parse().unwrap();
        assert!(rho.is_finite() && rho >= 0.0);
    }
    assert!(!rows[0].contains_key(&format!("head{heads}_ball")), "more heads than the preset's");
}
