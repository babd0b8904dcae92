//! The demo learns: the README's `scripts/train-local.sh --demo` run as a user
//! runs it, checked for a rising return and for attention on the ball. Used
//! by the test binaries `learning` (fp32) and `learning_bf16`,
//! each alone in its binary so that no other test shares the cores with it.

use std::time::Duration;

use crate::{bin, interrupt, wait_timeout, KillOnDrop, TestRun};
use common::env::{derive_seed, make_env, EnvSpec};
use rand::{Rng, SeedableRng};

/// Mean return of the uniformly random policy on catch, measured here.
fn random_policy_return(episodes: usize) -> f64 {
    let spec = EnvSpec::catch_default();
    let mut env = make_env(&spec, derive_seed(99, 0, 0)).unwrap();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
    let mut total = 0.0;
    for _ in 0..episodes {
        loop {
            let step = env.step(rng.gen_range(0..env.num_actions()));
            total += f64::from(step.reward);
            if step.episode_over {
                env.reset();
                break;
            }
        }
    }
    total / episodes as f64
}

fn column(rows: &[std::collections::HashMap<String, String>], name: &str) -> Vec<f64> {
    rows.iter().filter_map(|r| r.get(name)?.parse::<f64>().ok()).filter(|v| v.is_finite()).collect()
}

/// Appends a line to `target/tmp/learning-results.txt`: cargo shows a passing
/// test's output only with --nocapture, and the run directory is temporary, so
/// this is where a CI log reader finds what the demo reached.
fn record_result(line: &str) {
    use std::io::Write;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tmp");
    let _ = std::fs::create_dir_all(&path);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path.join("learning-results.txt"))
    {
        let _ = writeln!(f, "{line}");
    }
}

/// The README's demo command, as a user runs it (`scripts/train-local.sh
/// --demo`: learner, recorder and one actor over ipc, catch, `small` preset,
/// its fixed seeds and 1e6-frame budget), learns: the mean episode return over
/// the last 20% of updates is clearly above the random policy's, measured here.
/// And the attention means something: in the episodes recorded late in the
/// run, `recorder analyze` finds a head whose share of attention on the ball is
/// far above the same head's time-shuffled baseline (issue 10).
///
/// `extra` flags go to the script (e.g. `--precision bf16`); returns the run,
/// for checks of its own.
pub fn the_demo_command_learns_catch(xpid: &str, extra: &[&str]) -> TestRun {
    let random = random_policy_return(2000);
    let run = TestRun::new(xpid);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/train-local.sh");
    let log = std::fs::File::create(run.dir.path().join("train-local.log")).unwrap();
    let bin_dir = bin("learner").parent().unwrap().to_path_buf();
    let mut demo = KillOnDrop(
        std::process::Command::new("bash")
            .arg(&script)
            .args(["--demo", "--xpid", &run.xpid, "--device", "cpu"])
            .args(extra)
            .env("AAA_NO_TMUX", "1")
            .env("AAA_NO_BUILD", "1")
            .env("AAA_BIN_DIR", &bin_dir)
            .env("AAA_RUNS_ROOT", run.dir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start scripts/train-local.sh"),
    );
    let status = wait_timeout(&mut demo, Duration::from_secs(2400));
    if status.is_none() {
        // Ctrl-C, as a user would: the script stops its processes (started with
        // setsid, so killing the script alone would leave them running).
        interrupt(&demo);
        let _ = wait_timeout(&mut demo, Duration::from_secs(120));
    }
    let output = std::fs::read_to_string(run.dir.path().join("train-local.log")).unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "the demo did not finish its budget: {status:?}\n{output}\n{}",
        run.log("learner")
    );
    let rows = run.logs();
    let returns = column(&rows, "mean_episode_return");
    assert!(returns.len() > 100, "too few updates with finished episodes: {}", returns.len());
    let tail = &returns[returns.len() * 4 / 5..];
    let learned = tail.iter().sum::<f64>() / tail.len() as f64;
    let frames = column(&rows, "frames").last().copied().unwrap_or(0.0);
    let summary = format!(
        "{}: random policy {random:.2}, learned (last 20% of updates) {learned:.2}, {frames} frames",
        run.xpid
    );
    println!("{summary}");
    record_result(&summary);
    assert!(
        learned > random + 3.0,
        "mean return {learned:.2} in the last 20% of updates is not clearly above the random \
         policy's {random:.2}"
    );
    assert!(run.run_dir().join("checkpoints").read_dir().unwrap().next().is_some());

    // What the heads look at, in the last quarter of the run's params versions.
    let csv = run.dir.path().join("analyze.csv");
    let analyze = std::process::Command::new(bin("recorder"))
        .arg("analyze")
        .arg(run.run_dir())
        .args(["--buckets", "4", "--csv"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(analyze.status.success(), "{}", String::from_utf8_lossy(&analyze.stderr));
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|c| *c == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let last_bucket = rows
        .iter()
        .map(|r| r[col("params_first")])
        .max_by_key(|v| v.parse::<u64>().unwrap())
        .unwrap();
    let ball: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r[col("params_first")] == last_bucket && r[col("kind")] == "ball")
        // An empty field (no defined mean) reads as NaN and fails the check below.
        .map(|r| {
            let value = |name: &str| r[col(name)].parse::<f64>().unwrap_or(f64::NAN);
            (value("share"), value("share_shuffled"))
        })
        .collect();
    let summary = format!("{}: ball (share, shuffled) per head, last quarter: {ball:?}", run.xpid);
    println!("{summary}");
    record_result(&summary);
    assert!(
        ball.iter().any(|&(share, shuffled)| share > 0.3 && share > 2.0 * shuffled),
        "no head attends to the ball late in the run: (share, shuffled) per head {ball:?}\n{text}"
    );
    run
}
