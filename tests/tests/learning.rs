//! The README's demo command learns catch in fp32, stated (`auto` would pick
//! bf16 on a CPU with native bfloat16). See `tests::demo`.

#[test]
fn the_demo_command_learns_catch() {
    tests::demo::the_demo_command_learns_catch("learns", &["--precision", "fp32"]);
}
