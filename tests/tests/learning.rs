//! The README's demo command learns catch, at the default precision (`auto`:
//! fp32 on a CPU without native bfloat16). See `tests::demo`.

#[test]
fn the_demo_command_learns_catch() {
    tests::demo::the_demo_command_learns_catch("learns", &[]);
}
