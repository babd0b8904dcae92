//! `AAA_ROM_DIR`, the second place ROMs are looked for (after `--rom-dir`,
//! before the virtualenv). Its own test binary: it sets the process's
//! environment, which would race with tests that read it in parallel.

use env::{find_rom, make_env, rom_dirs, EnvError, EnvSpec};

#[test]
fn aaa_rom_dir_is_searched_alone_and_rom_dir_overrides_it() {
    // The virtualenv's copy, found before the variable is set.
    let venv_rom =
        find_rom("seaquest", None).expect("seaquest.bin in the venv: run scripts/bootstrap.sh");

    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("seaquest.bin");
    std::fs::copy(&venv_rom, &copy).unwrap();
    std::env::set_var("AAA_ROM_DIR", dir.path());
    assert_eq!(rom_dirs(None), vec![dir.path().to_path_buf()]);
    assert_eq!(find_rom("seaquest", None).unwrap(), copy);
    let mut env =
        make_env(&EnvSpec::atari_default("seaquest"), 1).expect("Seaquest from AAA_ROM_DIR");
    assert_eq!(env.num_actions(), 18);
    let _ = env.step(0);

    // A game the variable's directory lacks is an error naming that directory,
    // never a silent fall-back to the virtualenv's copy.
    match make_env(&EnvSpec::atari_default("pong"), 1).err().expect("pong.bin is not there") {
        EnvError::RomNotFound { looked_in, .. } => {
            assert_eq!(looked_in, vec![dir.path().to_path_buf()])
        }
        other => panic!("wrong error: {other}"),
    }

    // --rom-dir wins over the variable.
    let other = tempfile::tempdir().unwrap();
    assert_eq!(rom_dirs(Some(other.path())), vec![other.path().to_path_buf()]);
    std::env::remove_var("AAA_ROM_DIR");
}
