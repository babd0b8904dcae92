//! `recorder serve` across processes: chunks sent over ipc by this test are
//! read back with h5py (the project virtualenv), as an outside user would.

mod support;

use std::time::Duration;

use support::*;
use wire::protocol::{Array, Body};
use wire::transport::Push;

#[test]
fn interleaved_episodes_read_back_identical_with_h5py() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let rec = Recorder::start(root, &["--rotate-seconds", "0.3"]);
    let push = push(root);

    let a = episode(uid(0, 0, 1), &[5, 7, 4], true);
    let b = episode(uid(0, 1, 1), &[3, 3, 3, 2], true);
    let c = episode(uid(1, 0, 7), &[6, 1], true);
    // Never ends: the actor "died"; closed as incomplete on Ctrl-C.
    let d = episode(uid(2, 3, 4), &[4, 4], false);
    let mut sent = vec![Sent::default(); 4];
    let episodes = [&a, &b, &c, &d];
    // Interleave: round-robin over the episodes' chunks.
    for i in 0..4 {
        for (k, ep) in episodes.iter().enumerate() {
            if let Some(chunk) = ep.get(i) {
                send(&push, chunk);
                sent[k].record(chunk);
            }
        }
    }
    wait_for(20.0, "three finished episodes in closed segments", || {
        rec.log().matches("episode recorded").count() == 3 && !closed_segments(root).is_empty()
    });
    let endpoints: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir(root).join("endpoints.json")).unwrap())
            .unwrap();
    assert!(endpoints["episodes"].as_str().unwrap().ends_with("/sock/episodes"), "{endpoints}");
    let log = rec.stop();
    assert!(log.contains("recorder stopped"), "{log}");
    assert!(
        !run_dir(root)
            .join("episodes.staging")
            .read_dir()
            .unwrap()
            .any(|e| { e.unwrap().path().extension().is_some_and(|x| x == "h5") }),
        "staging files left after a clean stop"
    );
    let summary = h5check(
        root,
        &root.join("expect"),
        &[
            Expect {
                uid: uid(0, 0, 1),
                sent: &sent[0],
                mode: "exact",
                complete: Some(true),
                end_reason: Some("end"),
            },
            Expect {
                uid: uid(0, 1, 1),
                sent: &sent[1],
                mode: "exact",
                complete: Some(true),
                end_reason: Some("end"),
            },
            Expect {
                uid: uid(1, 0, 7),
                sent: &sent[2],
                mode: "exact",
                complete: Some(true),
                end_reason: Some("end"),
            },
            Expect {
                uid: uid(2, 3, 4),
                sent: &sent[3],
                mode: "exact",
                complete: Some(false),
                end_reason: Some("recorder_shutdown"),
            },
        ],
        &[],
    );
    println!("{summary}");

    // `inspect` lists them.
    let out = std::process::Command::new(recorder_bin())
        .arg("inspect")
        .arg(run_dir(root))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        table.contains("a0-e0-n1")
            && table.contains("a2-e3-n4")
            && table.contains("4 episodes, 42 steps"),
        "{table}"
    );
}

#[test]
fn malformed_chunks_are_dropped_counted_and_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let rec = Recorder::start(root, &["--rotate-seconds", "0.2"]);
    let push = push(root);
    let cfg = cfg();
    let (h, w) = cfg.grid();

    let good = episode(uid(0, 0, 1), &[4, 4, 4], true);
    let mut sent = Sent::default();
    send(&push, &good[0]);
    sent.record(&good[0]);
    // Chunk 1 arrives broken in several ways; each copy is dropped.
    let mut wrong_shape = good[1].clone();
    wrong_shape.attention =
        Array::from_f32(vec![4, cfg.heads, h + 1, w], &vec![0.0; 4 * cfg.heads * (h + 1) * w]);
    send(&push, &wrong_shape);
    let mut nan = good[1].clone();
    let mut values = nan.baseline.to_f32("baseline").unwrap();
    values[2] = f32::NAN;
    nan.baseline = Array::from_f32(vec![4], &values);
    send(&push, &nan);
    let mut bad_action = good[1].clone();
    bad_action.action = Array::from_i64(vec![4], &[0, 1, 7, 0]);
    send(&push, &bad_action);
    let mut short_frame = good[1].clone();
    short_frame.frame.data.truncate(100);
    send(&push, &short_frame);
    let mut other_size = good[1].clone();
    other_size.frame = Array::from_u8(vec![4, H + 2, W, 3], vec![0; 4 * (H + 2) * W * 3]);
    send(&push, &other_size);
    // Another run's message on our socket: its own run id and key.
    let stranger = Push::dial(
        &format!("ipc://{}/sock/episodes", std::path::absolute(run_dir(root)).unwrap().display()),
        &wire::auth::Credentials::ephemeral("other-run"),
    )
    .unwrap();
    stranger
        .send(&Body::EpisodeChunk(Box::new(good[1].clone())), Some(Duration::from_secs(20)))
        .unwrap();
    // Chunk 2 (valid) follows; chunk 1 never arrived intact: one missing chunk.
    send(&push, &good[2]);
    sent.record(&good[2]);
    sent.missing_chunks = 1;
    // A duplicate of chunk 0 after the end, and a chunk of a new episode with a wrong shape.
    send(&push, &good[0]);
    let mut lone = episode(uid(5, 5, 5), &[3], true).remove(0);
    lone.policy_logits = Array::from_f32(vec![3, 2], &[0.0; 6]);
    send(&push, &lone);
    // And a valid episode afterwards is still recorded.
    let after = episode(uid(0, 0, 2), &[2], true);
    let mut sent_after = Sent::default();
    send(&push, &after[0]);
    sent_after.record(&after[0]);

    wait_for(20.0, "two episodes", || rec.log().matches("episode recorded").count() == 2);
    let log = rec.stop();
    let dropped_lines = log.lines().filter(|l| l.contains("dropped")).count();
    assert!(dropped_lines >= 8, "expected 8 dropped-lines:\n{log}");
    assert!(log.contains("dropped=8"), "the count reaches 8:\n{log}");
    // On ipc messages carry no tag: another run's chunk is refused by its run id.
    assert!(log.contains("two runs share an address"), "{log}");
    sent.steps = 8;
    h5check(
        root,
        &root.join("expect"),
        &[
            Expect {
                uid: uid(0, 0, 1),
                sent: &sent,
                mode: "exact",
                complete: Some(true),
                end_reason: Some("end"),
            },
            Expect {
                uid: uid(0, 0, 2),
                sent: &sent_after,
                mode: "exact",
                complete: Some(true),
                end_reason: None,
            },
        ],
        &[uid(5, 5, 5)],
    );
}

/// Each recorded episode's return and, every N-th episode, a picture of one
/// step reach the run's TensorBoard events (`tb/recorder/`), read back with
/// the library that wrote them; the picture is a PNG of the render grid.
#[test]
fn recorded_returns_and_attention_pictures_reach_tensorboard() {
    use tboard::tensorboard::{event::What, summary::value::Value};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let rec = Recorder::start(root, &["--tensorboard-picture-every", "2"]);
    let push = push(root);
    let episodes = [
        episode(uid(0, 0, 1), &[5, 7], true),
        episode(uid(0, 1, 2), &[3], true),
        episode(uid(1, 0, 3), &[6, 2], true),
    ];
    for ep in &episodes {
        for chunk in ep {
            send(&push, chunk);
        }
    }
    wait_for(20.0, "three recorded episodes", || {
        rec.log().matches("episode recorded").count() == 3
    });
    rec.stop();
    let tb = run_dir(root).join("tb").join("recorder");
    let (mut returns, mut pictures) = (Vec::new(), Vec::new());
    for file in std::fs::read_dir(&tb).expect("tb/recorder/").flatten() {
        for event in tboard::SummaryReader::new(std::fs::File::open(file.path()).unwrap()) {
            let event = event.unwrap();
            let Some(What::Summary(summary)) = event.what else { continue };
            for v in summary.value {
                match v.value {
                    Some(Value::SimpleValue(x)) => returns.push((v.tag, event.step, x)),
                    Some(Value::Image(image)) => pictures.push((v.tag, event.step, image)),
                    _ => {}
                }
            }
        }
    }
    let expected: Vec<(String, i64, f32)> = episodes
        .iter()
        .map(|ep| {
            let last = ep.last().unwrap();
            let ret = last.end.as_ref().unwrap().episode_return as f32;
            ("recorder/episode_return".to_string(), last.params_version as i64, ret)
        })
        .collect();
    assert_eq!(returns, expected);
    // Episodes 1 and 3 (every 2nd, from the first).
    assert_eq!(pictures.len(), 2);
    for (tag, _, image) in &pictures {
        assert_eq!(tag, "recorder/attention");
        let decoder = png::Decoder::new(std::io::Cursor::new(&image.encoded_image_string));
        let info = decoder.read_info().unwrap().info().clone();
        assert_eq!((info.width as i32, info.height as i32), (image.width, image.height));
        // The frame and one panel per head, side by side.
        assert!(image.width as usize > (cfg().heads + 1) * W, "{} px wide", image.width);
    }
}
