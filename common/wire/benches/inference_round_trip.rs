//! Round trips of central inference's messages (docs/architecture.md, Central
//! inference): an actor's `Observations` of E environments to the learner and
//! the `Actions` back, through our sockets (tag, encode, send, receive, check,
//! decode, both ways), over `ipc://` and over `tcp://` on loopback, next to
//! raw NNG REQ/REP moving the same bytes. The server answers at once: this is
//! the transport's share of a step, without the model.
//!
//! cargo bench -p wire --bench inference_round_trip -- [--trips N]

use std::time::{Duration, Instant};

use nng::{Protocol, Socket};
use wire::auth::Credentials;
use wire::config::ModelConfig;
use wire::fixtures;
use wire::protocol::{encode, ActionSteps, Actions, Array, Body};
use wire::transport::{InferenceClient, InferenceServer};

const RUN: &str = "bench";

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e6
}

fn answer(cfg: &ModelConfig, envs: usize, stream: u64, seq: u64) -> Body {
    let a = cfg.num_actions;
    let steps = ActionSteps {
        action: Array::from_i64(vec![envs], &vec![0; envs]),
        policy_logits: Array::from_f32(vec![envs, a], &vec![0.0; envs * a]),
        baseline: Array::from_f32(vec![envs], &vec![0.0; envs]),
    };
    Body::Actions(Box::new(Actions::from_parts(stream, seq, 1, steps, None)))
}

/// Median, p90 and p99 of `trips` round trips through our sockets.
fn ours(address: &str, cfg: &ModelConfig, envs: usize, trips: usize) -> Vec<Duration> {
    let creds = Credentials::ephemeral(RUN);
    let server = InferenceServer::bind(address, &creds, 1 << 26, false).unwrap();
    let client = InferenceClient::dial(address, &creds, 1 << 26).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let serving = {
        let (stop, cfg) = (stop.clone(), cfg.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(Some(Ok((to, Body::Observations(o))))) =
                    server.recv(Some(Duration::from_millis(100)))
                else {
                    continue;
                };
                o.validate(&cfg).unwrap();
                server.reply(&to, &answer(&cfg, o.envs(), o.stream, o.seq)).unwrap();
            }
        })
    };
    let request = fixtures::observations(cfg, envs, 1, 0, &[], 3);
    let mut times = Vec::with_capacity(trips);
    for seq in 0..trips as u64 + 20 {
        let mut r = request.clone();
        r.seq = seq;
        let body = Body::Observations(Box::new(r));
        let start = Instant::now();
        client.send(&body, Duration::from_secs(10)).unwrap();
        let Ok(Body::Actions(a)) = client.recv(Duration::from_secs(10)).unwrap() else {
            panic!("no answer")
        };
        assert_eq!(a.seq, seq);
        if seq >= 20 {
            times.push(start.elapsed());
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    serving.join().unwrap();
    times.sort();
    times
}

/// The same bytes through raw NNG REQ/REP, already encoded.
fn raw(address: &str, request: usize, reply: usize, trips: usize) -> Vec<Duration> {
    let rep = Socket::new(Protocol::Rep0).unwrap();
    nng::options::Options::set_opt::<nng::options::RecvMaxSize>(&rep, 1 << 26).unwrap();
    rep.listen(address).unwrap();
    let answer = vec![5u8; reply];
    let serving = std::thread::spawn(move || {
        for _ in 0..trips + 20 {
            let m = rep.recv().unwrap();
            assert_eq!(m.len(), request);
            rep.send(nng::Message::from(&answer[..])).unwrap();
        }
    });
    let req = Socket::new(Protocol::Req0).unwrap();
    nng::options::Options::set_opt::<nng::options::RecvMaxSize>(&req, 1 << 26).unwrap();
    req.dial(address).unwrap();
    let payload = vec![7u8; request];
    let mut times = Vec::with_capacity(trips);
    for i in 0..trips + 20 {
        let start = Instant::now();
        req.send(nng::Message::from(&payload[..])).unwrap();
        req.recv().unwrap();
        if i >= 20 {
            times.push(start.elapsed());
        }
    }
    serving.join().unwrap();
    times.sort();
    times
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let trips: usize = args
        .iter()
        .position(|a| a == "--trips")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let dir = tempfile::tempdir().unwrap();
    wire::private::private_dir(dir.path()).unwrap();
    println!(
        "round trips of Observations -> Actions, {trips} each (after 20 to warm up); microseconds"
    );
    println!(
        "{:<28} {:>9} {:>6} {:>10} {:>9} {:>9} {:>9} {:>10}",
        "model, E", "request", "", "transport", "median", "p90", "p99", "MB/s"
    );
    let mut port = 47_000 + (std::process::id() % 1000) as u16 * 2;
    for (name, cfg, envs) in [
        ("paper (210x160x3), E = 1", ModelConfig::paper(18), 1),
        ("paper (210x160x3), E = 4", ModelConfig::paper(18), 4),
        ("paper (210x160x3), E = 16", ModelConfig::paper(18), 16),
        ("small (catch), E = 8", ModelConfig::small(3), 8),
    ] {
        let request = fixtures::observations(&cfg, envs, 1, 0, &[], 3);
        let request_bytes = encode(RUN, &Body::Observations(Box::new(request))).unwrap().len();
        let reply_bytes = encode(RUN, &answer(&cfg, envs, 1, 0)).unwrap().len();
        for transport in ["ipc", "tcp"] {
            let mut address = |what: &str| match transport {
                "ipc" => format!("ipc://{}/{what}-{envs}-{}", dir.path().display(), cfg.height),
                _ => {
                    port += 1;
                    format!("tcp://127.0.0.1:{port}")
                }
            };
            for (label, times) in [
                ("ours", ours(&address("ours"), &cfg, envs, trips)),
                ("raw NNG", raw(&address("raw"), request_bytes + 32, reply_bytes + 32, trips)),
            ] {
                let median = percentile(&times, 0.5);
                println!(
                    "{:<28} {:>8}K {:>6} {:>10} {:>9.0} {:>9.0} {:>9.0} {:>10.0}",
                    name,
                    request_bytes / 1024,
                    transport,
                    label,
                    median,
                    percentile(&times, 0.9),
                    percentile(&times, 0.99),
                    (request_bytes + reply_bytes) as f64 / median,
                );
            }
        }
    }
}
