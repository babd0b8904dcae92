//! Throughput of paper-sized trajectories: encode + send + receive + decode
//! through our protocol on ipc (unsealed) and on tcp (sealed), next to raw NNG
//! moving the same number of bytes, and the protocol on raw sockets unsealed
//! and sealed on the same path, in the same run.
//!
//! cargo bench -p wire --bench transport -- [--messages N]

use std::time::{Duration, Instant};

use nng::{Protocol, Socket};
use wire::auth::{Channel, Credentials};
use wire::config::ModelConfig;
use wire::fixtures;
use wire::protocol::{decode, encode, encode_into, Body};
use wire::seal::{End, Service, OVERHEAD};
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

    // The protocol on raw sockets, as it is and sealed: the two runs differ
    // in the sealing alone, so their difference is what sealing costs (what
    // tcp pays; ipc in a private directory goes unsealed).
    let body = Body::Trajectory(Box::new(trajectory.clone()));
    let creds = Credentials::ephemeral(RUN);
    let tcp = loopback();
    let channels = (
        creds.for_address(&tcp, End::Dialer, Service::Stream).unwrap(),
        creds.for_address(&tcp, End::Listener, Service::Stream).unwrap(),
    );
    let bare = raw_protocol_path(dir.path(), "bare", &body, &cfg, messages, None);
    let sealed = raw_protocol_path(dir.path(), "sealed", &body, &cfg, messages, Some(&channels));

    // Ours: encode (+ seal) on the sender, (open +) decode + validate on the
    // receiver. On ipc in a private directory nothing is sealed (the
    // operating system keeps others out; wire::auth::Guard::Os); on tcp
    // loopback everything is.
    let ipc = format!("ipc://{}/ours", dir.path().display());
    let ours_ipc = ours(&ipc, &creds, &body, &cfg, messages);
    let ours_tcp = ours(&tcp, &creds, &body, &cfg, messages);

    // Sealing alone, on one core, in place as the sockets do it: seal once,
    // open once (copying the plaintext back in is not timed).
    let (dialer, listener) = &channels;
    let plain = encode(RUN, &body).unwrap();
    let (mut seal_time, mut open_time) = (Duration::ZERO, Duration::ZERO);
    let mut framed = Vec::with_capacity(plain.len() + OVERHEAD);
    for _ in 0..20 {
        framed.clear();
        framed.extend_from_slice(dialer.header_room());
        framed.extend_from_slice(&plain);
        let start = Instant::now();
        dialer.seal_buffer(&mut framed, None).unwrap();
        seal_time += start.elapsed();
        let start = Instant::now();
        std::hint::black_box(listener.open(&mut framed, None).unwrap());
        open_time += start.elapsed();
    }
    let (seal_each, open_each) = (seal_time.as_secs_f64() / 20.0, open_time.as_secs_f64() / 20.0);

    let n = (messages - 1) as f64;
    let rate = |d: Duration| n / d.as_secs_f64();
    let gbps = |d: Duration| n * size as f64 / d.as_secs_f64() / 1e9;
    println!(
        "paper-sized trajectory (T = 50, 210x160x3 frames): {:.2} MB per message, {} messages",
        size as f64 / 1e6,
        messages
    );
    println!("{:<70} {:>12} {:>10}", "path", "messages/s", "GB/s");
    for (path, d) in [
        ("raw NNG ipc (same bytes)", raw),
        ("ours on ipc: encode + send + receive + decode + validate (unsealed)", ours_ipc),
        ("ours on tcp loopback: the same, sealed", ours_tcp),
        ("raw sockets on ipc: the protocol, unsealed", bare),
        ("raw sockets on ipc: the protocol, sealed", sealed),
    ] {
        println!("{:<70} {:>12.1} {:>10.2}", path, rate(d), gbps(d));
    }
    println!("ours on ipc / raw: {:.0}%", 100.0 * raw.as_secs_f64() / ours_ipc.as_secs_f64());
    println!(
        "sealing ({:?}): {:.2} ms to seal and {:.2} ms to open one message ({:.1} and {:.1} GB/s \
         on one core); on raw sockets the sealed protocol takes {:.2} ms per message, {:+.1}% \
         against the unsealed",
        wire::seal::Algorithm::preferred(),
        seal_each * 1e3,
        open_each * 1e3,
        size as f64 / seal_each / 1e9,
        size as f64 / open_each / 1e9,
        sealed.as_secs_f64() / n * 1e3,
        100.0 * (sealed.as_secs_f64() / bare.as_secs_f64() - 1.0)
    );
}

/// A loopback tcp address nobody listens on now.
fn loopback() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("tcp://127.0.0.1:{port}")
}

/// Our sockets at `address`: the time of `messages - 1` trajectories from a
/// sending thread, received, decoded and validated on this one.
fn ours(
    address: &str,
    creds: &Credentials,
    body: &Body,
    cfg: &ModelConfig,
    messages: usize,
) -> Duration {
    let pull = Pull::bind(address, creds, DEFAULT_MAX_MESSAGE_BYTES, false).unwrap();
    let sender = std::thread::spawn({
        let (address, creds, body) = (address.to_owned(), creds.clone(), body.clone());
        move || {
            let push = Push::dial(&address, &creds).unwrap();
            for _ in 0..messages {
                push.send(&body, None).unwrap();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let receive = || match pull.recv(None).unwrap().unwrap().unwrap() {
        Body::Trajectory(t) => t.validate(cfg, 50).unwrap(),
        other => panic!("got {}", other.kind()),
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

/// Encode (+ seal) + send on one thread, receive + (open +) decode +
/// validate on this one, over raw NNG sockets on ipc; the time of
/// `messages - 1` messages. `channels`: the sealing (dialer) and opening
/// (listener) ends.
fn raw_protocol_path(
    dir: &std::path::Path,
    name: &str,
    body: &Body,
    cfg: &ModelConfig,
    messages: usize,
    channels: Option<&(Channel, Channel)>,
) -> Duration {
    let address = format!("ipc://{}/{name}", dir.display());
    let pull = Socket::new(Protocol::Pull0).unwrap();
    pull.listen(&address).unwrap();
    let sender = std::thread::spawn({
        let (body, dialer) = (body.clone(), channels.map(|c| c.0.clone()));
        move || {
            let push = Socket::new(Protocol::Push0).unwrap();
            push.dial(&address).unwrap();
            for _ in 0..messages {
                let mut message =
                    nng::Message::with_capacity(body.bulk_bytes() + 64 * 1024 + OVERHEAD);
                if let Some(dialer) = &dialer {
                    message.push_back(dialer.header_room());
                    encode_into(&mut message, RUN, &body).unwrap();
                    dialer.seal_buffer(&mut message, None).unwrap();
                } else {
                    encode_into(&mut message, RUN, &body).unwrap();
                }
                push.send(message).unwrap();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let receive = || {
        let mut message = pull.recv().unwrap();
        let body = match channels {
            Some((_, listener)) => wire::transport::open(&mut message, listener),
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
