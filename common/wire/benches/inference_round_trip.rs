//! Round trips of central inference's messages (docs/architecture.md, Central
//! inference): an actor's `Observations` of E environments to the learner and
//! the `Actions` back, through our sockets (encode, send, receive, decode, both
//! ways; on tcp also seal and open), over `ipc://` and over `tcp://` on
//! loopback, next to raw NNG REQ/REP moving the same bytes. The server answers
//! at once: this is the transport's share of a step, without the model.
//!
//! Then one core's share of the aim (46,000 frames/s, 11,500 agent steps/s
//! at action repeat 4): how fast one thread opens, decodes and validates
//! sealed paper-sized requests, as the learner's receive threads do on tcp.
//!
//! cargo bench -p wire --bench inference_round_trip -- [--trips N]

use std::time::{Duration, Instant};

use nng::{Protocol, Socket};
use wire::auth::Credentials;
use wire::config::ModelConfig;
use wire::fixtures;
use wire::protocol::{encode, ActionSteps, Actions, Array, Body};
use wire::seal::{End, Service, OVERHEAD};
use wire::transport::{open, InferenceClient, InferenceServer};

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
                ("raw NNG", {
                    let sealing = if transport == "tcp" { OVERHEAD } else { 0 };
                    raw(&address("raw"), request_bytes + sealing, reply_bytes + sealing, trips)
                }),
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
    one_core_opens(&ModelConfig::paper(18), 4);
}

/// How fast one thread opens, decodes and validates sealed requests of
/// `envs` paper-sized environments, and the cores that takes at the aim.
fn one_core_opens(cfg: &ModelConfig, envs: usize) {
    const AIM_STEPS: f64 = 46_000.0 / 4.0;
    let creds = Credentials::ephemeral(RUN);
    let tcp = "tcp://127.0.0.1:1";
    let (actor, learner) = (
        creds.for_address(tcp, End::Dialer, Service::Inference).unwrap(),
        creds.for_address(tcp, End::Listener, Service::Inference).unwrap(),
    );
    let request = fixtures::observations(cfg, envs, 1, 0, &[], 3);
    let plain = encode(RUN, &Body::Observations(Box::new(request))).unwrap();
    let mut sealed: Vec<Vec<u8>> = (0..300).map(|_| actor.seal(&plain, None).0).collect();
    let start = Instant::now();
    for bytes in &mut sealed {
        let Ok(Body::Observations(o)) = open(bytes, &learner) else { panic!("not opened") };
        o.validate(cfg).unwrap();
    }
    let each = start.elapsed().as_secs_f64() / sealed.len() as f64;
    let steps_per_s = envs as f64 / each;
    println!(
        "\none thread opens + decodes + validates sealed requests of E = {envs} (paper, {:.0} KB, \
         {:?}): {:.0} requests/s, {:.2} GB/s, {:.0} agent steps/s; the aim's {:.0} steps/s \
         ({:.2} GB/s) take {:.2} of a core",
        plain.len() as f64 / 1e3,
        wire::seal::Algorithm::preferred(),
        1.0 / each,
        plain.len() as f64 / each / 1e9,
        steps_per_s,
        AIM_STEPS,
        AIM_STEPS / envs as f64 * plain.len() as f64 / 1e9,
        AIM_STEPS / steps_per_s,
    );
}
