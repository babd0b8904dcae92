//! The demo command learns catch with `--precision bf16` in the learner and the
//! actor, with the same budget as in fp32 (issue 11). On a CPU without native
//! bfloat16 this runs emulated and takes about 3x as long as the fp32 test.
//!
//! Seed 2, where the fp32 test runs the demo's default seed 1: when the demo
//! starts to learn depends on the seed, in both precisions, from 300k to past
//! 900k of its 1e6 frames (docs/performance.md, "Learning: 3 seeds"). In bf16,
//! seeds 2 and 3 learned from about 450k frames to +3.95; seed 1 was still at
//! the random policy's return at 720k frames, as fp32's seed 2 ended at -1.39.
//! A seed that learns within the budget checks what this test is for: that
//! bf16 does not stop the agent from learning.

#[test]
fn the_demo_command_learns_catch_in_bf16() {
    let run = tests::demo::the_demo_command_learns_catch(
        "learns-bf16",
        &["--precision", "bf16", "--seed", "2"],
    );
    // Both processes really ran in bf16.
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.run_dir().join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["config"]["precision_resolved"], "bf16", "learner: {}", meta["config"]);
    let actor = run.log("actor-0");
    assert!(actor.contains("precision bf16"), "the actor did not act in bf16:\n{actor}");
}
