//! `actor --eval --checkpoint <run dir>` plays with the newest checkpoint
//! that verifies, the same lookup the learner's `--resume` uses
//! (`wire::checkpoint`): a newer checkpoint set aside as `.damaged`, or one
//! whose files no longer match its manifest, is never played with.

use std::path::Path;
use std::time::Duration;

use tests::{interrupt, wait_timeout, TestRun};

const SMALL: [&str; 4] = ["--preset", "small", "--game", "catch"];

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Changes one byte of the weights' data, after the safetensors header, so
/// the file still loads as weights: only the manifest's hash can tell.
fn damage_weights(checkpoint: &Path) {
    let file = checkpoint.join("model.safetensors");
    let mut bytes = std::fs::read(&file).unwrap();
    let i = bytes.len() - 5;
    bytes[i] ^= 0x40;
    std::fs::write(&file, bytes).unwrap();
}

#[test]
fn evaluation_plays_the_newest_checkpoint_that_verifies() {
    let run = TestRun::new("eval");
    // A learner that stops at once writes its initial weights as a checkpoint.
    let learner_args = [&SMALL[..], &["--device", "cpu", "--precision", "fp32", "--threads", "1"]];
    let mut learner = run.spawn("learner", "learner", &learner_args.concat());
    let checkpoints = run.run_dir().join("checkpoints");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !run.log("learner").contains("params at") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    interrupt(&learner);
    let status = wait_timeout(&mut learner, Duration::from_secs(60));
    assert!(status.is_some_and(|s| s.success()), "{}", run.log("learner"));
    let first = wire::checkpoint::list(&checkpoints).pop().expect("a checkpoint").1;

    // One good checkpoint at step 20; newer ones that must not be used: one
    // the learner set aside, one damaged under a checkpoint's own name.
    let good = checkpoints.join("ckpt-000000000020");
    std::fs::rename(&first, &good).unwrap();
    let aside = checkpoints.join("ckpt-000000000030.damaged");
    copy_dir(&good, &aside);
    damage_weights(&aside);
    let damaged = checkpoints.join("ckpt-000000000040");
    copy_dir(&good, &damaged);
    damage_weights(&damaged);

    let eval = |checkpoint: &Path, log: &str| {
        let args = [&SMALL[..], &["--eval", "--episodes", "2", "--num-envs", "1"]];
        let args = [&args.concat()[..], &["--threads", "1", "--precision", "fp32"]].concat();
        let args = [&args[..], &["--checkpoint", checkpoint.to_str().unwrap()]].concat();
        let mut actor = run.spawn("actor", log, &args);
        let status = wait_timeout(&mut actor, Duration::from_secs(120));
        (status, run.log(log))
    };

    let (status, log) = eval(&run.run_dir(), "eval-run");
    assert!(status.is_some_and(|s| s.success()), "{log}");
    let report = std::fs::read_dir(run.run_dir())
        .unwrap()
        .flatten()
        .find(|e| {
            // The actors' logs (`eval-run.log`) share the prefix; the order of
            // a directory's entries is the file system's, so match both ends.
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("eval-") && name.ends_with(".json")
        })
        .expect("the evaluation's report");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.path()).unwrap()).unwrap();
    let weights = report["weights"].as_str().unwrap();
    assert_eq!(
        Path::new(weights),
        good.join("model.safetensors"),
        "evaluation used {weights}, not the newest checkpoint that verifies\n{log}"
    );
    assert!(log.contains(&format!("skipping checkpoint {}", damaged.display())), "{log}");

    // The same returns as TensorBoard scalars, read back with the library.
    let tb = run.run_dir().join("tb").join("eval");
    let mut scalars: Vec<(String, i64, f32)> = Vec::new();
    for file in std::fs::read_dir(&tb).expect("tb/eval/ after an evaluation").flatten() {
        for event in tboard::SummaryReader::new(std::fs::File::open(file.path()).unwrap()) {
            use tboard::tensorboard::{event::What, summary::value::Value};
            let event = event.unwrap();
            let Some(What::Summary(summary)) = event.what else { continue };
            for v in summary.value {
                if let Some(Value::SimpleValue(x)) = v.value {
                    scalars.push((v.tag, event.step, x));
                }
            }
        }
    }
    let returns: Vec<f32> =
        report["returns"].as_array().unwrap().iter().map(|r| r.as_f64().unwrap() as f32).collect();
    let episode: Vec<f32> =
        scalars.iter().filter(|s| s.0 == "eval/episode_return").map(|s| s.2).collect();
    assert_eq!(episode, returns, "{scalars:?}");
    let mean = report["mean_return"].as_f64().unwrap() as f32;
    assert!(scalars.contains(&("eval/mean_return".into(), 0, mean)), "{scalars:?}");

    // Named directly, a damaged checkpoint is refused with the reason.
    let (status, log) = eval(&damaged, "eval-damaged");
    assert!(status.is_some_and(|s| s.code() == Some(1)), "{log}");
    assert!(log.contains("does not verify") && log.contains("is damaged"), "{log}");
}
