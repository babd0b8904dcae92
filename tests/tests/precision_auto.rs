//! `--precision auto` in the real binaries, both of its resolutions on every
//! CPU: the CPU's bfloat16 features are stated with `AAA_CPU_BF16`
//! (`agent::machine`), so a CPU without bfloat16 tests the bf16 choice and one
//! with it tests the fp32 choice. And the guard that keeps every other test
//! off the machine's own features: under `AAA_NO_AUTODETECT=1` (which
//! scripts/test.sh sets) an actor or learner whose precision or device would
//! come from the machine refuses to start and says which flag to state.

use std::process::Command;
use std::time::{Duration, Instant};

use agent::machine::{CPU_BF16_VAR, NO_AUTODETECT_VAR};
use tests::{bin, KillOnDrop, TestRun};

const SMALL: [&str; 4] = ["--preset", "small", "--game", "catch"];

/// Waits until `log` contains `text`; the log's text either way.
fn wait_for_log(run: &TestRun, log: &str, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let content = run.log(log);
        if content.contains(text) || Instant::now() > deadline {
            return content;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `name` with `args` in a fresh run directory, the environment variables of
/// `agent::machine` set as given (None: removed).
fn start(run: &TestRun, name: &str, args: &[&str], cpu_bf16: Option<&str>) -> KillOnDrop {
    std::fs::create_dir_all(run.run_dir()).unwrap();
    let out = std::fs::File::create(run.run_dir().join(format!("{name}.log"))).unwrap();
    let mut command = Command::new(bin(name));
    command
        .args(args)
        .args(["--runs-root", run.dir.path().to_str().unwrap(), "--xpid", &run.xpid])
        .env(NO_AUTODETECT_VAR, "1")
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    match cpu_bf16 {
        Some(v) => command.env(CPU_BF16_VAR, v),
        None => command.env_remove(CPU_BF16_VAR),
    };
    KillOnDrop(command.spawn().unwrap())
}

/// The actor prints its resolved precision before it waits for a learner.
#[test]
fn auto_in_the_actor_follows_the_stated_cpu_features() {
    for (stated, expected, reason) in [
        ("none", "precision fp32", "neither AVX-512 BF16 nor AMX (stated by AAA_CPU_BF16)"),
        ("avx512_bf16", "precision bf16", "natively (avx512_bf16) (stated by AAA_CPU_BF16)"),
        ("amx_bf16", "precision bf16", "natively (amx_bf16) (stated by AAA_CPU_BF16)"),
    ] {
        let run = TestRun::new("auto-actor");
        let args = [&SMALL[..], &["--precision", "auto", "--num-envs", "1", "--threads", "1"]];
        let _actor = start(&run, "actor", &args.concat(), Some(stated));
        let log = wait_for_log(&run, "actor", "waiting for the learner");
        assert!(log.contains(expected), "AAA_CPU_BF16={stated}: expected {expected:?}:\n{log}");
        assert!(log.contains(reason), "AAA_CPU_BF16={stated}: expected {reason:?}:\n{log}");
    }
}

/// The learner writes what `auto` resolved to, and why, to meta.json.
#[test]
fn auto_in_the_learner_follows_the_stated_cpu_features() {
    for (stated, expected) in [("none", "fp32"), ("avx512_bf16,amx_bf16", "bf16")] {
        let run = TestRun::new("auto-learner");
        let args = [&SMALL[..], &["--precision", "auto", "--device", "cpu", "--threads", "1"]];
        let _learner = start(&run, "learner", &args.concat(), Some(stated));
        let meta = run.run_dir().join("meta.json");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !meta.is_file() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let meta: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&meta).unwrap_or_else(|e| panic!("{e}:\n{}", run.log("learner"))),
        )
        .unwrap();
        assert_eq!(meta["config"]["precision_resolved"], expected, "AAA_CPU_BF16={stated}");
        let reason = meta["config"]["precision_reason"].as_str().unwrap();
        assert!(reason.contains("stated by AAA_CPU_BF16"), "{reason}");
    }
}

fn refused(name: &str, args: &[&str], cpu_bf16: Option<&str>) -> String {
    let run = TestRun::new("refused");
    let mut child = start(&run, name, args, cpu_bf16);
    let status = tests::wait_timeout(&mut child, Duration::from_secs(60));
    let log = run.log(name);
    assert!(status.is_some_and(|s| s.code() == Some(1)), "{name} {args:?} did not refuse:\n{log}");
    log
}

/// The guard: without a stated precision or device, a binary started under
/// `AAA_NO_AUTODETECT=1` stops at once with a message naming the flag. This is
/// what fails a future test that forgets `--precision`, on any CPU.
#[test]
fn under_no_autodetect_the_machine_is_never_asked() {
    let actor = [&SMALL[..], &["--num-envs", "1", "--threads", "1"]].concat();
    for args in [actor.clone(), [&actor[..], &["--precision", "auto"]].concat()] {
        let log = refused("actor", &args, None);
        assert!(log.contains("--precision auto on the CPU would depend on this machine"), "{log}");
        assert!(log.contains("pass --precision fp32 or bf16"), "{log}");
    }
    let learner = [&SMALL[..], &["--precision", "fp32", "--threads", "1"]].concat();
    let log = refused("learner", &learner, None);
    assert!(log.contains("--device auto would depend on this machine"), "{log}");
    assert!(log.contains("pass --device cpu"), "{log}");

    // A stated value that is not a feature is an error, not a silent fp32.
    let args = [&actor[..], &["--precision", "auto"]].concat();
    let log = refused("actor", &args, Some("avx512bf16"));
    assert!(log.contains("AAA_CPU_BF16=\"avx512bf16\": expected `none`"), "{log}");
}

/// Stating the precision is all a test needs: fp32 and bf16 start under the
/// guard with no CPU features stated.
#[test]
fn stated_precisions_need_no_cpu_features() {
    for precision in ["fp32", "bf16"] {
        let run = TestRun::new("stated");
        let args = [&SMALL[..], &["--precision", precision, "--num-envs", "1", "--threads", "1"]];
        let _actor = start(&run, "actor", &args.concat(), None);
        let log = wait_for_log(&run, "actor", "waiting for the learner");
        assert!(log.contains(&format!("precision {precision} (--precision {precision})")), "{log}");
    }
}
