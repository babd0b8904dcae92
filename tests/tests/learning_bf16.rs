//! The demo command learns catch with `--precision bf16` in the learner and the
//! actor, with the same budget as in fp32 (issue 11). On a CPU without native
//! bfloat16 this runs emulated and takes 2-3x as long as the fp32 test.

#[test]
fn the_demo_command_learns_catch_in_bf16() {
    let run = tests::demo::the_demo_command_learns_catch("learns-bf16", &["--precision", "bf16"]);
    // Both processes really ran in bf16.
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.run_dir().join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["config"]["precision_resolved"], "bf16", "learner: {}", meta["config"]);
    let actor = run.log("actor-0");
    assert!(actor.contains("precision bf16"), "the actor did not act in bf16:\n{actor}");
}
