//! Throughput of paper-sized trajectories over `ipc://`: encode + send +
//! receive + decode through our protocol, next to raw NNG moving the same
//! number of bytes in the same run.
//!
//! cargo bench -p wire --bench transport -- [--messages N]

use std::time::{Duration, Instant};

use nng::{Protocol, Socket};
use wire::auth::{Credentials, TAG_BYTES};
use wire::config::ModelConfig;
use wire::fixtures;
use wire::protocol::{decode, encode, encode_into, Body};
use wire::transport::{Pull, Push, DEFAULT_MAX_MESSAGE_BYTES};

const RUN: &str = "bench";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let messages: usize = args
        .iter()
        .position(|a| a == "--messages")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let cfg = ModelConfig::paper(18);
    let trajectory = fixtures::trajectory(&cfg, 50, 7);
    let size = encode(RUN, &Body::Trajectory(Box::new(trajectory.clone()))).unwrap().len();
    let dir = tempfile::tempdir().unwrap();

    wire::private::private_dir(dir.path()).unwrap();

    // Raw NNG: the same number of bytes, already in a buffer.
    let raw_address = format!("ipc://{}/raw", dir.path().display());
    let pull = Socket::new(Protocol::Pull0).unwrap();
    pull.listen(&raw_address).unwrap();
    let payload = vec![7u8; size];
    let sender = std::thread::spawn({
        let raw_address = raw_address.clone();
        move || {
            let push = Socket::new(Protocol::Push0).unwrap();
            push.dial(&raw_address).unwrap();
            for _ in 0..messages {
                push.send(nng::Message::from(&payload[..])).unwrap();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let first = pull.recv().unwrap();
    assert_eq!(first.len(), size);
    let start = Instant::now();
    for _ in 1..messages {
        let m = pull.recv().unwrap();
        assert_eq!(m.len(), size);
    }
    let raw = start.elapsed();
    sender.join().unwrap();

    // The protocol on raw sockets, untagged and tagged: the two runs differ in
    // the tag alone, so their difference is what the tag costs (what tcp
    // pays; ipc in a private directory goes untagged).
    let body = Body::Trajectory(Box::new(trajectory.clone()));
    let creds = Credentials::ephemeral(RUN);
    let untagged = raw_protocol_path(dir.path(), "untagged", &body, &cfg, messages, None);
    let tagged = raw_protocol_path(dir.path(), "tagged", &body, &cfg, messages, Some(&creds));

    // Ours, on ipc in a private directory: encode on the sender, decode +
    // validate on the receiver, no tag (the operating system keeps others
    // out; wire::auth::Guard::Os).
    let address = format!("ipc://{}/ours", dir.path().display());
    let pull = Pull::bind(&address, &creds, DEFAULT_MAX_MESSAGE_BYTES, false).unwrap();
    let sender = std::thread::spawn({
        let address = address.clone();
        let creds = creds.clone();
        let body = body.clone();
        move || {
            let push = Push::dial(&address, &creds).unwrap();
            for _ in 0..messages {
                push.send(&body, None).unwrap();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let receive = || match pull.recv(None).unwrap().unwrap().unwrap() {
        Body::Trajectory(t) => t.validate(&cfg, 50).unwrap(),
        other => panic!("got {}", other.kind()),
    };
    receive();
    let start = Instant::now();
    for _ in 1..messages {
        receive();
    }
    let ours = start.elapsed();
    sender.join().unwrap();

    // The tag alone: made once by the sender, checked once by the receiver.
    let sealed = wire::transport::seal(&creds, &body).unwrap();
    let start = Instant::now();
    for _ in 0..20 {
        std::hint::black_box(creds.key().tag(&sealed[..sealed.len() - TAG_BYTES]));
    }
    let tag_each = start.elapsed().as_secs_f64() / 20.0;

    let n = (messages - 1) as f64;
    let rate = |d: Duration| n / d.as_secs_f64();
    let gbps = |d: Duration| n * size as f64 / d.as_secs_f64() / 1e9;
    println!(
        "paper-sized trajectory (T = 50, 210x160x3 frames): {:.2} MB per message, {} messages",
        size as f64 / 1e6,
        messages
    );
    println!("{:<66} {:>12} {:>10}", "path", "messages/s", "GB/s");
    println!("{:<66} {:>12.1} {:>10.2}", "raw NNG ipc (same bytes)", rate(raw), gbps(raw));
    println!(
        "{:<66} {:>12.1} {:>10.2}",
        "ours on ipc: encode + send + receive + decode + validate (untagged)",
        rate(ours),
        gbps(ours)
    );
    for (path, d) in [
        ("raw sockets: the protocol, untagged", untagged),
        ("raw sockets: the protocol, tagged", tagged),
    ] {
        println!("{:<66} {:>12.1} {:>10.2}", path, rate(d), gbps(d));
    }
    println!("ours / raw: {:.0}%", 100.0 * raw.as_secs_f64() / ours.as_secs_f64());
    println!(
        "tag: {:.2} ms to make or check one message ({:.1} GB/s, keyed BLAKE3); on raw sockets \
         the tagged protocol takes {:.2} ms per message, {:+.1}% against the untagged",
        tag_each * 1e3,
        size as f64 / tag_each / 1e9,
        tagged.as_secs_f64() / n * 1e3,
        100.0 * (tagged.as_secs_f64() / untagged.as_secs_f64() - 1.0)
    );
}

/// Encode (+ tag) + send on one thread, receive + (check +) decode + validate
/// on this one, over raw NNG sockets; the time of `messages - 1` messages.
fn raw_protocol_path(
    dir: &std::path::Path,
    name: &str,
    body: &Body,
    cfg: &ModelConfig,
    messages: usize,
    creds: Option<&Credentials>,
) -> Duration {
    let address = format!("ipc://{}/{name}", dir.display());
    let pull = Socket::new(Protocol::Pull0).unwrap();
    pull.listen(&address).unwrap();
    let sender = std::thread::spawn({
        let (body, creds) = (body.clone(), creds.cloned());
        move || {
            let push = Socket::new(Protocol::Push0).unwrap();
            push.dial(&address).unwrap();
            for _ in 0..messages {
                let mut message =
                    nng::Message::with_capacity(body.bulk_bytes() + 64 * 1024 + TAG_BYTES);
                encode_into(&mut message, RUN, &body).unwrap();
                if let Some(creds) = &creds {
                    let tag = creds.key().tag(&message);
                    message.push_back(&tag);
                }
                push.send(message).unwrap();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let receive = || {
        let message = pull.recv().unwrap();
        let body = match creds {
            Some(creds) => wire::transport::open(&message, creds),
            None => decode(&message, RUN),
        };
        match body.unwrap() {
            Body::Trajectory(t) => t.validate(cfg, 50).unwrap(),
            other => panic!("got {}", other.kind()),
        }
    };
    receive();
    let start = Instant::now();
    for _ in 1..messages {
        receive();
    }
    let elapsed = start.elapsed();
    sender.join().unwrap();
    elapsed
}
