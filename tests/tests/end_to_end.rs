//! Whole runs with real processes over ipc on the built-in game: the agent
//! learns within a fixed frame budget, and actors may die and join at any time.

use std::time::{Duration, Instant};

use common::env::{derive_seed, make_env, EnvSpec};
use rand::{Rng, SeedableRng};
use tests::{interrupt, wait_timeout, TestRun};

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

const SMALL: [&str; 6] = ["--preset", "small", "--game", "catch", "--unroll-length", "20"];

/// The README's demo command, as a user runs it (`scripts/train-local.sh
/// --demo`: learner, recorder and one actor over ipc, catch, `small` preset,
/// its fixed seeds and 1e6-frame budget), learns: the mean episode return over
/// the last 20% of updates is clearly above the random policy's, measured here.
/// And the attention means something: in the episodes recorded late in the
/// run, `recorder analyze` finds a head whose share of attention on the ball is
/// far above the same head's time-shuffled baseline (issue 10). About 10-15
/// minutes on 2 cores.
#[test]
fn the_demo_command_learns_catch() {
    let random = random_policy_return(2000);
    let run = TestRun::new("learns");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/train-local.sh");
    let log = std::fs::File::create(run.dir.path().join("train-local.log")).unwrap();
    let mut demo = tests::KillOnDrop(
        std::process::Command::new("bash")
            .arg(&script)
            .args(["--demo", "--xpid", &run.xpid])
            .env("AAA_NO_TMUX", "1")
            .env("AAA_NO_BUILD", "1")
            .env("AAA_RUNS_ROOT", run.dir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start scripts/train-local.sh"),
    );
    let status = wait_timeout(&mut demo, Duration::from_secs(2400));
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
    println!("random policy {random:.2}, learned (last 20% of updates) {learned:.2}");
    assert!(
        learned > random + 3.0,
        "mean return {learned:.2} in the last 20% of updates is not clearly above the random \
         policy's {random:.2}"
    );
    assert!(run.run_dir().join("checkpoints").read_dir().unwrap().next().is_some());

    // What the heads look at, in the last quarter of the run's params versions.
    let csv = run.dir.path().join("analyze.csv");
    let analyze = std::process::Command::new(tests::bin("recorder"))
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
        .map(|r| (r[col("share")].parse().unwrap(), r[col("share_shuffled")].parse().unwrap()))
        .collect();
    println!("attention on the ball late in the run, (share, shuffled) per head: {ball:?}");
    assert!(
        ball.iter().any(|&(share, shuffled)| share > 0.3 && share > 2.0 * shuffled),
        "no head attends to the ball late in the run: (share, shuffled) per head {ball:?}\n{text}"
    );
}

#[test]
fn killing_an_actor_does_not_stop_the_learner_and_a_new_one_joins() {
    let run = TestRun::new("actors-come-and-go");
    let mut learner_args = SMALL.to_vec();
    learner_args.extend(["--batch-size", "4", "--threads", "1", "--total-frames", "1e9"]);
    let mut learner = run.spawn("learner", "learner", &learner_args);
    let actor_args = |id: &'static str| {
        let mut a = SMALL.to_vec();
        a.extend(["--actor-id", id, "--num-envs", "2", "--threads", "1", "--record-every", "0"]);
        a
    };
    let _a0 = run.spawn("actor", "actor-0", &actor_args("0"));
    let mut a1 = run.spawn("actor", "actor-1", &actor_args("1"));
    let rows_after = |n: usize, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while run.logs().len() < n {
            assert!(Instant::now() < deadline, "{what}: logs.csv stuck\n{}", run.log("learner"));
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    rows_after(5, "before the kill");
    a1.kill().unwrap(); // SIGKILL, mid-unroll as likely as not
    a1.wait().unwrap();
    let at_kill = run.logs().len();
    rows_after(at_kill + 5, "after the kill");
    assert!(learner.try_wait().unwrap().is_none(), "learner exited after an actor died");

    // A new actor with the same id joins and gets weights.
    let _a1_again = run.spawn("actor", "actor-1-again", &actor_args("1"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !run.log("actor-1-again").contains("unrolls per env") {
        assert!(
            Instant::now() < deadline,
            "the new actor did not start acting:\n{}",
            run.log("actor-1-again")
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let at_join = run.logs().len();
    rows_after(at_join + 3, "after the join");

    interrupt(&learner);
    let status = wait_timeout(&mut learner, Duration::from_secs(60));
    assert!(
        status.is_some_and(|s| s.success()),
        "learner did not stop cleanly on Ctrl-C: {status:?}"
    );
}
