//! Whole runs with real processes over ipc on the built-in game: actors may
//! die and join at any time (the learning run is in `learning.rs`).

use std::time::{Duration, Instant};

use tests::{interrupt, wait_timeout, TestRun};

const SMALL: [&str; 6] = ["--preset", "small", "--game", "catch", "--unroll-length", "20"];

#[test]
fn killing_an_actor_does_not_stop_the_learner_and_a_new_one_joins() {
    let run = TestRun::new("actors-come-and-go");
    let mut learner_args = SMALL.to_vec();
    learner_args.extend(["--batch-size", "4", "--threads", "1", "--total-frames", "1e9"]);
    learner_args.extend(["--device", "cpu", "--precision", "fp32"]);
    let mut learner = run.spawn("learner", "learner", &learner_args);
    let actor_args = |id: &'static str| {
        let mut a = SMALL.to_vec();
        a.extend(["--actor-id", id, "--num-envs", "2", "--threads", "1", "--record-every", "0"]);
        a.extend(["--precision", "fp32"]);
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
