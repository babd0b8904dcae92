//! Durability: a reader sees finished episodes while the recorder writes, and
//! a `kill -9` in the middle of writing loses no finished episode.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::*;
use wire::protocol::Body;

#[test]
fn kill_9_while_writing_keeps_finished_episodes_and_recovers_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let rec = Recorder::start(&root, &["--rotate-seconds", "0.3"]);
    let push = push(&root);

    let mut sent1 = Sent::default();
    let mut sent2 = Sent::default();
    let e1 = episode(uid(0, 0, 1), &[6, 6], true);
    let e2 = episode(uid(0, 1, 1), &[5, 2, 4], true);
    for i in 0..3 {
        if let Some(c) = e1.get(i) {
            send(&push, c);
            sent1.record(c);
        }
        if let Some(c) = e2.get(i) {
            send(&push, c);
            sent2.record(c);
        }
    }
    wait_for(20.0, "a closed segment", || rec.log().contains("closed segment"));

    // An episode in progress, and a second one streamed without pause by another thread.
    let mut sent3 = Sent::default();
    for c in episode(uid(1, 0, 3), &[4, 4, 4], false) {
        send(&push, &c);
        sent3.record(&c);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let streamer = {
        let stop = stop.clone();
        let push = support::push(&root);
        std::thread::spawn(move || {
            let mut sent = Sent::default();
            for seq in 0..100_000u32 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let c = chunk(uid(2, 0, 9), seq, seq as usize * 8, 8, None);
                let body = Body::EpisodeChunk(Box::new(c.clone()));
                if push.send(&body, Some(Duration::from_millis(500))).is_err() {
                    break;
                }
                sent.record(&c);
            }
            sent
        })
    };
    wait_for(20.0, "the streamed episode to grow", || rec.log().contains("steps_per_s"));
    std::thread::sleep(Duration::from_millis(500));

    // A reader opened now, while the recorder writes, sees the finished episodes.
    let first = [
        Expect {
            uid: uid(0, 0, 1),
            sent: &sent1,
            mode: "exact",
            complete: Some(true),
            end_reason: Some("end"),
        },
        Expect {
            uid: uid(0, 1, 1),
            sent: &sent2,
            mode: "exact",
            complete: Some(true),
            end_reason: Some("end"),
        },
    ];
    h5check(&root, &root.join("expect-during"), &first, &[]);

    // One more episode finishes just before the kill.
    let mut sent5 = Sent::default();
    for c in episode(uid(3, 0, 5), &[3, 3], true) {
        send(&push, &c);
        sent5.record(&c);
    }
    wait_for(20.0, "episode 5 received", || rec.log().contains("episode recorded uid=a3-e0-n5"));
    let log = rec.kill9();
    stop.store(true, Ordering::SeqCst);
    let sent4 = streamer.join().unwrap();
    assert!(
        log.contains("episode recorded uid=a3-e0-n5"),
        "episode 5 was received before the kill:\n{log}"
    );

    // Right after the kill, without any recovery: the closed segments are intact.
    h5check(&root, &root.join("expect-after-kill"), &first, &[]);

    // A new recorder on the same run directory recovers what the killed one left.
    let rec = Recorder::start(&root, &["--rotate-seconds", "0.3"]);
    wait_for(20.0, "recovery", || rec.log().contains("recorder listening"));
    let log = rec.stop();
    assert!(log.contains("recovered episodes"), "{log}");
    let summary = h5check(
        &root,
        &root.join("expect-recovered"),
        &[
            Expect {
                uid: uid(0, 0, 1),
                sent: &sent1,
                mode: "exact",
                complete: Some(true),
                end_reason: Some("end"),
            },
            Expect {
                uid: uid(0, 1, 1),
                sent: &sent2,
                mode: "exact",
                complete: Some(true),
                end_reason: Some("end"),
            },
            Expect {
                uid: uid(3, 0, 5),
                sent: &sent5,
                mode: "exact",
                complete: Some(true),
                end_reason: Some("end"),
            },
            Expect {
                uid: uid(1, 0, 3),
                sent: &sent3,
                mode: "prefix",
                complete: Some(false),
                end_reason: Some("recovered"),
            },
            // Being written at the moment of the kill: recovered, or kept aside as broken.
            Expect {
                uid: uid(2, 0, 9),
                sent: &sent4,
                mode: "optional-prefix",
                complete: Some(false),
                end_reason: Some("recovered"),
            },
        ],
        &[],
    );
    println!("{summary}");
    let v: serde_json::Value = serde_json::from_str(summary.trim()).unwrap();
    let left: Vec<String> = run_dir(&root)
        .join("episodes.staging")
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    if v["episodes"]["a2-e0-n9"].is_null() {
        assert_eq!(
            left,
            vec!["a2-e0-n9.h5.broken".to_string()],
            "only the episode being written is lost"
        );
    } else {
        assert!(left.is_empty(), "staging left clean: {left:?}");
    }
}
