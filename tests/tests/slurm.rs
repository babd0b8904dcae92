//! The SLURM launcher (`scripts/launch/slurm/`) on a real one-node SLURM cluster
//! started here from Debian's `slurm-wlm` and `munge` by
//! `scripts/launch/slurm/local-cluster.sh`, in a temporary state directory.
//!
//! One run on the built-in game: `submit.sh` sends the learner (with the
//! recorder) as one job, with `--gres=gpu:1` since the node announces a GPU
//! (a pretend one; the learner still runs on the CPU), and the actors as a
//! 3-task job array. Part-way through,
//! the learner job is requeued (`scontrol requeue`, what preemption or a node
//! failure does): it must come back, resume from its checkpoint, and the
//! actors that kept running must reconnect. At the end every job has
//! COMPLETED, logs.csv runs to the frame budget without restarting its step
//! count, the run ended with a checkpoint, and the learner counted
//! trajectories from every array task in both sessions (meta.json's
//! `trajectories_per_actor`, written from the learner's per-actor counters).
//!
//! Needs root and the packages (installed with apt-get when missing and
//! possible); otherwise it is skipped, loudly (`wire::fixtures::skip_test`). Set
//! AAA_REQUIRE_SLURM=1 to make that a failure instead (CI).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tests::bin;

const TOTAL_FRAMES: u64 = 20_000;
const ACTORS: usize = 3;

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/launch/slurm")
}

/// Runs a command, returning (success, stdout + stderr).
fn run(cmd: &mut Command) -> (bool, String) {
    match cmd.output() {
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            (out.status.success(), text)
        }
        Err(e) => (false, format!("cannot run {cmd:?}: {e}")),
    }
}

/// Stops the cluster when the test ends, pass or fail.
struct Cluster {
    state: PathBuf,
    conf: PathBuf,
}

impl Cluster {
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SLURM_CONF", &self.conf);
        cmd
    }

    fn scontrol(&self, args: &[&str]) -> (bool, String) {
        run(self.command("scontrol").args(args))
    }

    /// JobState of every task of a job (one for a plain job, one per array task).
    fn states(&self, job: &str) -> Vec<String> {
        let (_, out) = self.scontrol(&["-o", "show", "job", job]);
        out.lines()
            .filter_map(|l| l.split_whitespace().find_map(|f| f.strip_prefix("JobState=")))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let (_, out) =
            run(Command::new(scripts().join("local-cluster.sh")).arg("stop").arg(&self.state));
        println!("{}", out.trim_end());
    }
}

/// Why the cluster cannot run here, after installing what is missing if we can.
fn unavailable() -> Option<String> {
    let script = scripts().join("local-cluster.sh");
    let (ok, out) = run(Command::new(&script).arg("check"));
    if ok {
        return None;
    }
    if out.contains("not root") {
        return Some(out.trim().to_owned());
    }
    let (ok, install) = run(Command::new(&script).arg("install"));
    if ok {
        None
    } else {
        Some(format!("{} ({})", out.trim(), install.trim()))
    }
}

fn skip_or_fail(reason: &str) {
    if std::env::var("AAA_REQUIRE_SLURM").is_ok_and(|v| v == "1") {
        panic!("AAA_REQUIRE_SLURM=1 but no SLURM cluster can run here: {reason}");
    }
    wire::fixtures::skip_test(
        "learner_job_and_actor_array_train_on_a_real_slurm_and_survive_a_requeue",
        reason,
    );
}

const FINAL_STATES: &[&str] = &[
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
];

fn read_json(path: &Path) -> serde_json::Value {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// The `step` and `frames` columns of logs.csv.
fn steps_and_frames(run_dir: &Path) -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string(run_dir.join("logs.csv")).unwrap_or_default();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let col = |name: &str| header.iter().position(|c| *c == name);
    let (Some(s), Some(f)) = (col("step"), col("frames")) else { return Vec::new() };
    lines
        .filter_map(|l| {
            let v: Vec<&str> = l.split(',').collect();
            Some((v.get(s)?.parse().ok()?, v.get(f)?.parse().ok()?))
        })
        .collect()
}

/// Trajectories received per actor id in one session's meta.json.
fn received_per_actor(session: &serde_json::Value) -> BTreeMap<String, u64> {
    session["trajectories_per_actor"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v["received"].as_u64().unwrap_or(0))).collect())
        .unwrap_or_default()
}

fn logs_of(run_dir: &Path) -> String {
    let mut text = String::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        let name = f.file_name().unwrap_or_default().to_string_lossy().into_owned();
        if name.ends_with(".log") || name.ends_with(".out") {
            let body = std::fs::read_to_string(&f).unwrap_or_default();
            let tail: Vec<&str> = body.lines().rev().take(15).collect();
            text.push_str(&format!("--- {name} (last lines)\n"));
            for l in tail.iter().rev() {
                text.push_str(l);
                text.push('\n');
            }
        }
    }
    text
}

#[test]
fn learner_job_and_actor_array_train_on_a_real_slurm_and_survive_a_requeue() {
    if let Some(reason) = unavailable() {
        skip_or_fail(&reason);
        return;
    }
    let started = Instant::now();
    let state = tempfile::Builder::new().prefix("aaa-slurm-").tempdir().expect("state dir");
    let runs = tempfile::Builder::new().prefix("aaa-slurm-runs-").tempdir().expect("runs dir");
    let (ok, out) = run(Command::new(scripts().join("local-cluster.sh"))
        .arg("start")
        .arg(state.path())
        .env("AAA_CLUSTER_CPUS", "8")
        .env("AAA_CLUSTER_GPUS", "1"));
    assert!(ok, "the one-node cluster did not start:\n{out}");
    let cluster = Cluster { state: state.path().to_owned(), conf: state.path().join("slurm.conf") };
    println!("{}", out.trim_end());

    // Submit with the project's own script, as a user would, small settings.
    let bin_dir = bin("learner").parent().expect("bin dir").to_owned();
    let frames = TOTAL_FRAMES.to_string();
    let actors = ACTORS.to_string();
    let (ok, out) = run(cluster
        .command(scripts().join("submit.sh").to_str().unwrap())
        .args(["--xpid", "slurm-test", "--runs-root", runs.path().to_str().unwrap()])
        .args(["--game", "catch", "--preset", "small", "--unroll-length", "20"])
        .args(["--actors", &actors, "--envs", "2", "--record-every", "5"])
        .arg("--actor-flag=--precision=fp32")
        .args(["--", "--batch-size", "8", "--total-frames", &frames, "--threads", "1"])
        .args(["--device", "cpu", "--precision", "fp32"])
        .env("AAA_BIN_DIR", &bin_dir)
        .envs([("LEARNER_CPUS", "2"), ("LEARNER_MEM", "1G"), ("LEARNER_TIME", "15:00")])
        .envs([("ACTOR_CPUS", "1"), ("ACTOR_MEM", "512M"), ("ACTOR_TIME", "15:00")]));
    println!("{}", out.trim_end());
    assert!(ok, "submit.sh failed:\n{out}");
    let jobs = out.lines().find_map(|l| l.strip_prefix("JOBS ")).expect("a JOBS line");
    let job = |name: &str| -> String {
        jobs.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .expect("job id")
            .to_owned()
    };
    let (learner_job, actors_job) = (job("learner"), job("actors"));
    let run_dir = runs.path().join("slurm-test");
    assert!(out.contains("ipc sockets"), "a one-node partition should get ipc sockets:\n{out}");
    // The node has a (pretend) GPU: the learner job asks for it, the actors do not.
    let gres = |job: &str| {
        let (_, out) = cluster.scontrol(&["-o", "show", "job", job]);
        out.split_whitespace().find_map(|f| f.strip_prefix("TresPerNode=")).map(str::to_owned)
    };
    assert_eq!(gres(&learner_job).as_deref(), Some("gres:gpu:1"), "learner job's gres");
    assert_eq!(gres(&actors_job), None, "the actor array asks for no GPU");

    let deadline = started + Duration::from_secs(600);
    let wait_for = |what: &str, ok: &dyn Fn() -> bool| {
        while !ok() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; jobs: learner {:?} actors {:?}\n{}",
                cluster.states(&learner_job),
                cluster.states(&actors_job),
                logs_of(&run_dir)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    };

    // Part-way through, requeue the learner job.
    wait_for("the first 30 updates", &|| steps_and_frames(&run_dir).len() >= 30);
    let (ok, out) = cluster.scontrol(&["requeue", &learner_job]);
    assert!(ok, "scontrol requeue failed: {out}");
    let requeued_at = Instant::now();
    println!(
        "requeued learner job {learner_job} after {} updates",
        steps_and_frames(&run_dir).len()
    );
    // SLURM holds a requeued job back for two minutes; let it start at once.
    wait_for("the learner job to run again", &|| {
        let states = cluster.states(&learner_job);
        assert!(
            !states.iter().any(|s| FINAL_STATES.contains(&s.as_str())),
            "the requeued learner job ended: {states:?}\n{}",
            logs_of(&run_dir)
        );
        if states.iter().any(|s| s == "PENDING") {
            cluster.scontrol(&["update", &format!("jobid={learner_job}"), "StartTime=now"]);
        }
        requeued_at.elapsed() > Duration::from_secs(1)
            && states.iter().all(|s| s == "RUNNING")
            && read_json(&run_dir.join("meta.json"))["slurm"]["SLURM_RESTART_COUNT"] == "1"
    });
    println!("learner job running again after {:.0} s", requeued_at.elapsed().as_secs_f64());

    // Both jobs run to the end: the learner at its frame budget, the actors when they see it.
    let finished =
        |job: &str| cluster.states(job).iter().all(|s| FINAL_STATES.contains(&s.as_str()));
    wait_for("the learner job to finish", &|| finished(&learner_job));
    if cluster.states(&learner_job) == ["COMPLETED"] {
        wait_for("the actor array to finish", &|| finished(&actors_job));
    }
    let learner_states = cluster.states(&learner_job);
    let actor_states = cluster.states(&actors_job);
    println!(
        "finished after {:.0} s: learner {learner_states:?}, actors {actor_states:?}",
        started.elapsed().as_secs_f64()
    );
    let logs = logs_of(&run_dir);
    assert_eq!(learner_states, ["COMPLETED"], "learner job\n{logs}");
    assert_eq!(actor_states, vec!["COMPLETED"; ACTORS], "actor array tasks\n{logs}");

    // logs.csv: one row per update up to the budget, the step count continued across the requeue.
    let rows = steps_and_frames(&run_dir);
    let steps: Vec<u64> = rows.iter().map(|r| r.0).collect();
    let last = *rows.last().expect("logs.csv has rows");
    assert!(last.1 >= TOTAL_FRAMES, "logs.csv ends at {} frames, before {TOTAL_FRAMES}", last.1);
    assert_eq!(
        steps,
        (1..=last.0).collect::<Vec<_>>(),
        "logs.csv steps must run 1, 2, ... without a restart or a gap across the requeue"
    );

    // meta.json: two sessions, the second resumed from a checkpoint; trajectories from every task.
    let meta = read_json(&run_dir.join("meta.json"));
    assert_eq!(meta["end_reason"], "total frames reached", "meta.json: {meta:#}");
    assert!(meta["resumed_from"].is_string(), "the requeued learner did not resume: {meta:#}");
    let previous = meta["previous_sessions"].as_array().cloned().unwrap_or_default();
    assert_eq!(previous.len(), 1, "one earlier session expected: {meta:#}");
    assert_eq!(previous[0]["end_reason"], "interrupted", "the requeue must stop it cleanly");
    let resumed_step = meta["final_counters"]["step"].as_u64().unwrap_or(0);
    let first_session_step = previous[0]["final_counters"]["step"].as_u64().unwrap_or(0);
    assert!(
        first_session_step >= 30 && resumed_step == last.0,
        "steps {first_session_step} then {resumed_step}"
    );
    let expected: Vec<String> = (0..ACTORS).map(|i| i.to_string()).collect();
    for (name, session) in [("before the requeue", &previous[0]), ("after the requeue", &meta)] {
        let received = received_per_actor(session);
        println!("trajectories received per actor {name}: {received:?}");
        assert_eq!(
            received.keys().cloned().collect::<Vec<_>>(),
            expected,
            "trajectories {name} must come from array tasks 0..{ACTORS} and no one else"
        );
        assert!(received.values().all(|&n| n > 0), "an array task sent nothing {name}");
    }
    let total_received: u64 = received_per_actor(&meta).values().sum::<u64>()
        + received_per_actor(&previous[0]).values().sum::<u64>();
    // Every update used B = 8 trajectories; a few more may have been in flight.
    assert!(total_received >= 8 * last.0, "{total_received} trajectories for {} updates", last.0);

    // The final checkpoint is the last step; every actor stopped by itself.
    let checkpoint = run_dir.join("checkpoints").join(format!("ckpt-{:012}", last.0));
    assert!(checkpoint.is_dir(), "no final checkpoint {}", checkpoint.display());
    for i in 0..ACTORS {
        let log =
            std::fs::read_to_string(run_dir.join(format!("actor-{i}.log"))).unwrap_or_default();
        assert!(
            log.contains(&format!("actor {i} stopped")),
            "actor {i} did not stop cleanly:\n{log}"
        );
    }
    let learner_out =
        std::fs::read_to_string(run_dir.join(format!("slurm-learner-{learner_job}.out")))
            .unwrap_or_default();
    assert!(learner_out.contains("the learner resumes from the newest"), "{learner_out}");
    println!(
        "SLURM run passed in {:.0} s: {} updates, {} frames, resumed at step {first_session_step}",
        started.elapsed().as_secs_f64(),
        last.0,
        last.1
    );
    drop(cluster);
}
