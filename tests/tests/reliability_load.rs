//! Load (docs/reliability.md): 16 actor processes (small preset, catch, one
//! environment and one thread each) against one learner for a bounded time,
//! in both inference modes. The learner's memory stays flat (its queues are
//! bounded), and its counts account for every trajectory: each actor's
//! received = used + dropped + the few still queued at exit, and no actor is
//! counted for more unrolls than it played. Under central inference the
//! learner assembles the unrolls (two groups of one environment per actor)
//! and no request is dropped or told to start over.

use std::time::{Duration, Instant};

use tests::{interrupt, wait_timeout, KillOnDrop, TestRun};

const ACTORS: usize = 16;
const SECONDS: u64 = 60;
const B: u64 = 4;
const QUEUE_BATCHES: u64 = 2;
const DECODE_THREADS: u64 = 2;

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn sixteen_actors_against_one_learner_memory_flat_and_every_trajectory_counted() {
    load("actors");
}

#[test]
fn sixteen_actors_under_central_inference_memory_flat_and_every_unroll_counted() {
    load("central");
}

/// The two loads run one after the other: 32 actors at once would measure the
/// machine, not the learner.
static ONE_LOAD_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn load(inference: &str) {
    let _alone = ONE_LOAD_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let central = inference == "central";
    // Environments per actor: one, or one in each of two groups.
    let envs: u64 = if central { 2 } else { 1 };
    let run = TestRun::new(&format!("load-{inference}"));
    let small = ["--preset", "small", "--game", "catch", "--unroll-length", "20"];
    let mut args = small.to_vec();
    args.extend(["--inference", inference]);
    args.extend(["--batch-size", "4", "--threads", "1", "--device", "cpu", "--precision", "fp32"]);
    args.extend(["--total-frames", "1e9", "--queue-batches", "2", "--decode-threads", "2"]);
    let mut learner = run.spawn("learner", "learner", &args);
    let ids: Vec<String> = (0..ACTORS).map(|i| i.to_string()).collect();
    let mut actors: Vec<KillOnDrop> = ids
        .iter()
        .map(|id| {
            let mut a = small.to_vec();
            a.extend([
                "--actor-id",
                id,
                "--num-envs",
                "1",
                "--threads",
                "1",
                "--precision",
                "fp32",
            ]);
            a.extend(["--record-every", "0"]);
            run.spawn("actor", &format!("actor-{id}"), &a)
        })
        .collect();

    // RSS once a second, from the first update on.
    let deadline = Instant::now() + Duration::from_secs(240);
    while run.logs().is_empty() {
        assert!(Instant::now() < deadline, "no update:\n{}", run.log("learner"));
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut rss = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(SECONDS) {
        assert!(learner.try_wait().unwrap().is_none(), "learner died:\n{}", run.log("learner"));
        rss.push(rss_kib(learner.id()).expect("learner RSS"));
        std::thread::sleep(Duration::from_secs(1));
    }

    // Actors first (each reports what it sent), then the learner (its counts).
    for a in &actors {
        interrupt(a);
    }
    for (i, a) in actors.iter_mut().enumerate() {
        let status = wait_timeout(a, Duration::from_secs(60));
        assert!(
            status.is_some_and(|s| s.success()),
            "actor {i}: {}",
            run.log(&format!("actor-{i}"))
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    interrupt(&learner);
    let status = wait_timeout(&mut learner, Duration::from_secs(90));
    assert!(status.is_some_and(|s| s.success()), "{}", run.log("learner"));

    // Memory: the last third of the samples against the second third (the
    // first third is warm-up: allocator pools, torch's caches).
    let third = rss.len() / 3;
    let mean = |s: &[u64]| s.iter().sum::<u64>() as f64 / s.len() as f64;
    let (middle, last) = (mean(&rss[third..2 * third]), mean(&rss[2 * third..]));
    let max = *rss.iter().max().unwrap();
    let rows = run.logs();
    let queue_max = rows.iter().filter_map(|r| r["queue_size"].parse::<u64>().ok()).max().unwrap();
    println!(
        "{} updates in {SECONDS} s; learner RSS MiB: middle third {:.0}, last third {:.0}, max {:.0}; max queue {queue_max}",
        rows.len(),
        middle / 1024.0,
        last / 1024.0,
        max as f64 / 1024.0
    );
    assert!(last < middle * 1.10 + 20.0 * 1024.0, "learner RSS grows: {rss:?}");
    // Accepted and not yet learned from: the assembler's B, the batches queued,
    // one batch being handed over, and one per receive thread.
    let bound = B + QUEUE_BATCHES * B + B + DECODE_THREADS;
    assert!(queue_max <= bound, "queue reached {queue_max} > {bound}");

    // Every trajectory accounted for, per actor.
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.run_dir().join("meta.json")).unwrap()).unwrap();
    let counts = &meta["trajectories_per_actor"];
    let mut in_flight_total = 0;
    let mut used_total = 0;
    for (i, id) in ids.iter().enumerate() {
        let log = run.log(&format!("actor-{i}"));
        let sent: u64 = log
            .lines()
            .find_map(|l| l.split("stopped after ").nth(1)?.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("actor {i} did not report what it sent:\n{log}"));
        let c = &counts[id.as_str()];
        let received = c["received"].as_u64().unwrap_or(0);
        let used = c["used"].as_u64().unwrap_or(0);
        let dropped: u64 =
            c["dropped"].as_object().map_or(0, |d| d.values().filter_map(|v| v.as_u64()).sum());
        assert!(received >= 1, "actor {i} never reached the learner: {counts}");
        // Under central inference each group may be a step ahead of group 0.
        let played = if central { (sent + 1) * envs } else { sent };
        assert!(received <= played, "actor {i}: received {received} > {played} (counted twice?)");
        assert_eq!(dropped, 0, "actor {i}: {c}");
        assert!(used <= received, "actor {i}: {c}");
        in_flight_total += received - used - dropped;
        used_total += used;
        // What an actor sent in its last moment may die with its sockets.
        assert!(
            sent * envs <= received + 2 * envs,
            "actor {i}: sent {sent} x {envs}, received {received}"
        );
    }
    assert!(in_flight_total < B, "{in_flight_total} received but neither used nor dropped");
    let updates = meta["final_counters"]["step"].as_u64().unwrap();
    assert!(used_total >= updates * B && used_total <= (updates + QUEUE_BATCHES + 1) * B);
    assert!(counts.get("unknown").is_none(), "{counts}");
    if central {
        let c = &meta["central_inference"];
        assert_eq!(c["restarts"], 0, "{c}");
        assert_eq!(c["dropped"], serde_json::json!({}), "{c}");
        assert!(c["unrolls"].as_u64() >= Some(used_total), "{c}");
    }
}
