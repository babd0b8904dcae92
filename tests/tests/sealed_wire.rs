//! A learner reachable over tcp, read as an attacker on the same network
//! would: the traffic it captures holds neither the weights nor the run id, a
//! trajectory or params request it replays byte for byte is dropped and
//! counted, and after the learner is stopped and resumed with `--resume`, the
//! old session's messages, replayed, are refused as well (`wire::seal`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use env::EnvSpec;
use tests::{meta, stop, wait_until, TestRun};
use wire::auth::{Credentials, RunKey};
use wire::config::ModelConfig;
use wire::fixtures;
use wire::protocol::{encode, Body, ParamsRequest};
use wire::seal::{End, Service};
use wire::transport::ParamsClient;

const SMALL: [&str; 6] = ["--preset", "small", "--game", "catch", "--unroll-length", "20"];
const T: usize = 20;

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A tcp relay in front of `upstream` that keeps every byte crossing it,
/// both ways: what someone watching the network captures.
fn capture(upstream: u16) -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let captured = Arc::new(Mutex::new(Vec::new()));
    let seen = captured.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
            for (mut from, mut to) in
                [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
            {
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 1 << 16];
                    while let Ok(n @ 1..) = from.read(&mut buf) {
                        seen.lock().unwrap().extend_from_slice(&buf[..n]);
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    (port, captured)
}

/// Distinctive 24-byte pieces of `bytes` (at least 12 different byte values
/// each, so no run of zeros could turn up by chance).
fn pieces(bytes: &[u8], count: usize) -> Vec<&[u8]> {
    let step = bytes.len() / (count + 1);
    (1..=count)
        .filter_map(|i| {
            (i * step..bytes.len() - 24)
                .map(|at| &bytes[at..at + 24])
                .take(4096)
                .find(|w| w.iter().collect::<std::collections::HashSet<_>>().len() >= 12)
        })
        .collect()
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn captured_traffic_is_unreadable_and_replays_are_refused_also_after_a_resume() {
    let run = TestRun::new("sealed");
    let (trajectories_port, params_port) = (free_port(), free_port());
    let trajectories = format!("tcp://127.0.0.1:{trajectories_port}");
    let params = format!("tcp://127.0.0.1:{params_port}");
    let mut args = SMALL.to_vec();
    args.extend(["--batch-size", "4", "--threads", "1", "--device", "cpu"]);
    args.extend(["--precision", "fp32", "--total-frames", "1e9"]);
    args.extend(["--trajectories-address", &trajectories, "--params-address", &params]);
    let mut learner = run.spawn("learner", "learner-1", &args);
    let endpoints = run.run_dir().join("endpoints.json");
    wait_until(
        120,
        "the learner to listen",
        || run.log("learner-1"),
        || std::fs::read_to_string(&endpoints).is_ok_and(|e| e.contains(&params)),
    );
    let key = RunKey::load_file(&run.run_dir().join("run.key")).unwrap();
    let creds = Credentials::new(&run.xpid, key);

    // The weights, fetched through the relay that captures the traffic.
    let (relay, captured) = capture(params_port);
    let client = ParamsClient::dial(&format!("tcp://127.0.0.1:{relay}"), &creds, 64 << 20).unwrap();
    let request = Body::ParamsRequest(ParamsRequest { actor_id: 5, version: 0 });
    let Ok(Body::Params(weights)) = client.request(&request, Duration::from_secs(60)).unwrap()
    else {
        panic!("no weights through the relay\n{}", run.log("learner-1"))
    };
    drop(client);
    let captured = captured.lock().unwrap().clone();
    assert!(captured.len() > weights.weights.len(), "the weights crossed the relay");
    let pieces = pieces(&weights.weights, 16);
    assert_eq!(pieces.len(), 16, "the weights have distinctive pieces to look for");
    // The search finds them in the message as it would travel unsealed...
    let in_clear = encode(&run.xpid, &Body::Params(weights.clone())).unwrap();
    assert!(pieces.iter().all(|p| holds(&in_clear, p)) && holds(&in_clear, run.xpid.as_bytes()));
    // ...and nowhere in what was captured.
    for piece in &pieces {
        assert!(!holds(&captured, piece), "a piece of the weights was captured in clear");
    }
    assert!(!holds(&captured, run.xpid.as_bytes()), "the run id was captured in clear");

    // Replays byte for byte: a trajectory and a params request, as an
    // attacker who captured them would send them again.
    let cfg = ModelConfig::small(EnvSpec::catch_default().num_actions().unwrap());
    let trajectory = |seed: u64| {
        let mut t = fixtures::trajectory(&cfg, T, seed);
        (t.actor_id, t.params_version) = (3, 1);
        encode(&run.xpid, &Body::Trajectory(Box::new(t))).unwrap()
    };
    let actor = creds.for_address(&trajectories, End::Dialer, Service::Stream).unwrap();
    let asker = creds.for_address(&params, End::Dialer, Service::Params).unwrap();
    let (sent, _) = actor.seal(&trajectory(1), None);
    let (kept, _) = actor.seal(&trajectory(2), None); // never sent in this session
    let params_request = encode(&run.xpid, &request).unwrap();
    let (asked, _) = asker.seal(&params_request, None);
    let push = nng::Socket::new(nng::Protocol::Push0).unwrap();
    push.dial(&trajectories).unwrap();
    let ask = |bytes: &[u8]| {
        let req = nng::Socket::new(nng::Protocol::Req0).unwrap();
        req.dial(&params).unwrap();
        req.send(nng::Message::from(bytes)).unwrap();
        req.recv().unwrap().len()
    };
    for _ in 0..2 {
        push.send(nng::Message::from(&sent[..])).unwrap();
    }
    assert!(ask(&asked) > weights.weights.len(), "the first time, the weights (sealed)");
    assert_eq!(ask(&asked), 1, "the replay gets the one-byte refusal");
    wait_until(
        60,
        "the replayed trajectory's drop",
        || run.log("learner-1"),
        || run.log("learner-1").contains("(replayed, 1 so far)"),
    );
    assert!(stop(&mut learner, "the learner", || run.log("learner-1")).success());
    let m = meta(&run);
    let dropped = &m["trajectories_per_actor"]["unknown"]["dropped"];
    assert_eq!(dropped["replayed"], 1, "{m}");
    assert_eq!(m["trajectories_per_actor"]["3"]["received"], 1, "the first copy was taken: {m}");
    assert_eq!(m["params_refused"]["replayed"], 1, "{m}");

    // Resumed: its windows are empty, but nothing sealed before it started
    // is taken, whether seen before (`sent`) or not (`kept`).
    let resumed = [&args[..], &["--resume"]].concat();
    let mut learner = run.spawn("learner", "learner-2", &resumed);
    wait_until(
        120,
        "the resume",
        || run.log("learner-2"),
        || run.log("learner-2").contains("resumed from"),
    );
    for bytes in [&sent, &kept] {
        push.send(nng::Message::from(&bytes[..])).unwrap();
    }
    assert_eq!(ask(&asked), 1, "the old request gets the refusal");
    wait_until(
        60,
        "the old trajectories' drops",
        || run.log("learner-2"),
        || run.log("learner-2").contains("(stale, 2 so far)"),
    );
    // A message sealed now is taken.
    let (fresh, _) = creds
        .for_address(&params, End::Dialer, Service::Params)
        .unwrap()
        .seal(&params_request, None);
    assert!(ask(&fresh) > weights.weights.len(), "a new request gets the weights");
    assert!(stop(&mut learner, "the resumed learner", || run.log("learner-2")).success());
    let m = meta(&run);
    assert_eq!(m["trajectories_per_actor"]["unknown"]["dropped"]["stale"], 2, "{m}");
    assert_eq!(m["params_refused"]["stale"], 1, "{m}");
}
