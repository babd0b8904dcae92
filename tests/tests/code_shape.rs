//! scripts/checks/code_shape.py (run by scripts/test.sh) can fail: on a
//! small tree with a 101-line function, a 601-line file and two files that
//! import each other, it names each breach and exits 1; the same tree within
//! bounds passes.

use std::path::Path;
use std::process::Command;

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn check(root: &Path) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/checks/code_shape.py");
    let out =
        Command::new(testkit::python()).arg(script).arg(root).output().expect("run the check");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `fn name() { ... }` of `lines` lines in all.
fn function(name: &str, lines: usize) -> String {
    let body: String = (0..lines - 2).map(|i| format!("    let _x{i} = {i};\n")).collect();
    format!("pub fn {name}() {{\n{body}}}\n")
}

#[test]
fn the_code_shape_check_names_each_breach() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "actor/src/main.rs", "mod a;\nmod b;\nfn main() {}\n");
    write(root, "actor/src/a.rs", &format!("use crate::b::g;\n{}", function("f", 101)));
    write(root, "actor/src/b.rs", &format!("use crate::a::f;\n{}", function("g", 10)));
    let long_file: String = (0..601).map(|i| format!("// line {i}\n")).collect();
    // Its tests do not count: 601 lines of code, then a test module.
    write(
        root,
        "learner/src/long.rs",
        &format!("{long_file}#[cfg(test)]\nmod tests {{\n{}}}\n", function("t", 200)),
    );
    let (ok, out) = check(root);
    assert!(!ok, "breaches pass:\n{out}");
    assert!(out.contains("actor/src/a.rs:2: fn f is 101 lines"), "{out}");
    assert!(out.contains("learner/src/long.rs: 601 lines without its tests"), "{out}");
    assert!(out.contains("import each other in a circle: a -> b -> a"), "{out}");
    assert!(!out.contains("fn t "), "a test's length is its own business:\n{out}");

    write(root, "actor/src/a.rs", &function("f", 100));
    write(root, "learner/src/long.rs", &long_file[..long_file.len() - "// line 600\n".len()]);
    let (ok, out) = check(root);
    assert!(ok, "a tree within bounds fails:\n{out}");
}
