// Shared by the build scripts of every crate that links libtorch (included with
// `include!`). Two things tch's own build script cannot do for downstream
// binaries:
//
// * an rpath to the libtorch it built against (the PyTorch wheel's `torch/lib`
//   in the project virtualenv, or `$LIBTORCH/lib`), so the binaries run straight
//   from `target/release` with no LD_LIBRARY_PATH;
// * `libtorch_cuda.so` kept as NEEDED even though no symbol of it is used
//   directly: without `--no-as-needed` the linker drops it and CUDA is silently
//   unavailable on GPU hosts.
fn link_torch() {
    // torch-sys declares `links = "tch"` and prints `cargo:libtorch_lib=...`.
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    let lib = std::path::Path::new(&lib);
    for cuda in ["torch_cuda", "c10_cuda"] {
        if lib.join(format!("lib{cuda}.so")).exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-l{cuda},--as-needed");
        }
    }
}
