//! Shared by the recorder's integration tests: synthetic episodes, starting
//! the real binary (with `testkit`, which every crate's process tests share),
//! and the h5py check run with the project virtualenv.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use wire::config::ModelConfig;
use wire::protocol::{Array, Body, EpisodeChunk, EpisodeEnd, EpisodeUid};
use wire::transport::Push;

pub use testkit::{python, spawn_logged, wait_for, wait_timeout, KillOnDrop};

pub const XPID: &str = "rec-test";
pub const NUM_ACTIONS: usize = 3;

pub fn cfg() -> ModelConfig {
    ModelConfig::small(NUM_ACTIONS)
}

/// Frame size the synthetic "environment" renders (differs from the model's input on purpose).
pub const H: usize = 30;
pub const W: usize = 24;

/// What a test sent for one episode, step by step, to compare with the file.
#[derive(Default, Clone)]
pub struct Sent {
    pub fields: BTreeMap<&'static str, (Vec<u8>, Vec<usize>, &'static str)>,
    pub steps: usize,
    pub end: Option<EpisodeEnd>,
    pub missing_chunks: u32,
}

impl Sent {
    fn push(&mut self, name: &'static str, a: &Array, dtype: &'static str) {
        let e =
            self.fields.entry(name).or_insert_with(|| (Vec::new(), a.shape[1..].to_vec(), dtype));
        e.0.extend_from_slice(&a.data);
    }

    pub fn record(&mut self, c: &EpisodeChunk) {
        self.push("frame", &c.frame, "uint8");
        self.push("action", &c.action, "int64");
        self.push("reward", &c.reward, "float32");
        self.push("baseline", &c.baseline, "float32");
        self.push("policy_logits", &c.policy_logits, "float32");
        self.push("attention", &c.attention, "float32");
        self.push("attention_content", &c.attention_content, "float32");
        self.push("attention_place", &c.attention_place, "float32");
        let pv: Vec<u8> = (0..c.len()).flat_map(|_| c.params_version.to_le_bytes()).collect();
        let e =
            self.fields.entry("params_version").or_insert_with(|| (Vec::new(), vec![], "uint64"));
        e.0.extend_from_slice(&pv);
        if let Some(ram) = &c.ram {
            self.push("ram", ram, "uint8");
        }
        self.steps += c.len();
        if c.end.is_some() {
            self.end = c.end;
        }
    }
}

/// Attention maps with one hot cell per head (row = head + 1, col = 2 + step % 5).
pub fn hot_attention(n: usize, first_step: usize, cfg: &ModelConfig) -> Vec<f32> {
    let (h, w) = cfg.grid();
    let mut out = vec![0.0f32; n * cfg.heads * h * w];
    for i in 0..n {
        for head in 0..cfg.heads {
            let base = (i * cfg.heads + head) * h * w;
            let hot = (head + 1) * w + 2 + (first_step + i) % 5;
            // Mostly on the hot cell, a little everywhere else; sums to 1.
            let rest = 0.1 / (h * w - 1) as f32;
            for v in &mut out[base..base + h * w] {
                *v = rest;
            }
            out[base + hot] = 0.9;
        }
    }
    out
}

/// A valid chunk of `n` steps starting at step `first_step` of episode `uid`.
pub fn chunk(
    uid: EpisodeUid,
    sequence: u32,
    first_step: usize,
    n: usize,
    end: Option<EpisodeEnd>,
) -> EpisodeChunk {
    let cfg = cfg();
    let (h, w) = cfg.grid();
    let seed = uid.actor as usize * 1000 + uid.env as usize * 100 + uid.counter as usize;
    let mut frame = Vec::with_capacity(n * H * W * 3);
    for t in first_step..first_step + n {
        for r in 0..H {
            for c in 0..W {
                for ch in 0..3 {
                    frame.push(((seed * 31 + t * 7 + r + c * 3 + ch * 50) % 256) as u8);
                }
            }
        }
    }
    let f = |k: usize| -> Vec<f32> {
        (0..k).map(|i| ((seed + first_step * 13 + i) % 97) as f32 * 0.25 - 3.0).collect()
    };
    let maps = vec![n, cfg.heads, h, w];
    let numel = n * cfg.heads * h * w;
    EpisodeChunk {
        uid,
        sequence,
        params_version: 10 + sequence as u64,
        frame: Array::from_u8(vec![n, H, W, 3], frame),
        action: Array::from_i64(
            vec![n],
            &(0..n).map(|i| ((first_step + i + seed) % NUM_ACTIONS) as i64).collect::<Vec<_>>(),
        ),
        reward: Array::from_f32(vec![n], &f(n)),
        baseline: Array::from_f32(vec![n], &f(n).iter().map(|v| v * 0.5).collect::<Vec<_>>()),
        policy_logits: Array::from_f32(vec![n, NUM_ACTIONS], &f(n * NUM_ACTIONS)),
        attention: Array::from_f32(maps.clone(), &hot_attention(n, first_step, &cfg)),
        attention_content: Array::from_f32(maps.clone(), &f(numel)),
        attention_place: Array::from_f32(maps, &f(numel).iter().map(|v| -v).collect::<Vec<_>>()),
        ram: Some(Array::from_u8(vec![n, 128], (0..n * 128).map(|i| (i % 251) as u8).collect())),
        objects: None,
        object_names: vec![],
        end,
    }
}

/// An episode cut into chunks of the given sizes; the last carries the end.
pub fn episode(uid: EpisodeUid, sizes: &[usize], with_end: bool) -> Vec<EpisodeChunk> {
    let total: usize = sizes.iter().sum();
    let mut out = Vec::new();
    let mut step = 0;
    for (i, &n) in sizes.iter().enumerate() {
        let end = (with_end && i + 1 == sizes.len()).then_some(EpisodeEnd {
            episode_return: uid.counter as f64 * 10.0 + 0.5,
            length: total as u64,
            complete: true,
        });
        out.push(chunk(uid, i as u32, step, n, end));
        step += n;
    }
    out
}

pub fn uid(actor: u32, env: u32, counter: u64) -> EpisodeUid {
    EpisodeUid { actor, env, counter }
}

pub fn recorder_bin() -> &'static str {
    env!("CARGO_BIN_EXE_recorder")
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(name)
}

/// A `recorder serve` process, killed when the test ends.
pub struct Recorder {
    pub child: KillOnDrop,
    pub log: PathBuf,
}

impl Recorder {
    /// Starts `recorder serve` on `root/XPID` with its log in `root/recorder-<k>.log`.
    pub fn start(root: &Path, extra: &[&str]) -> Recorder {
        let k = std::fs::read_dir(root).map(|d| d.count()).unwrap_or(0);
        let log = root.join(format!("recorder-{k}.log"));
        let mut command = Command::new(recorder_bin());
        command
            .args(["serve", "--xpid", XPID, "--preset", "small", "--num-actions", "3"])
            .args(["--log-seconds", "0.5"])
            .arg("--runs-root")
            .arg(root)
            .args(extra);
        Recorder { child: spawn_logged(&mut command, &log), log }
    }

    pub fn signal(&self, sig: &str) {
        testkit::signal(&self.child, sig);
    }

    /// SIGINT and wait (at most 30 s) for a clean exit.
    pub fn stop(mut self) -> String {
        self.signal("INT");
        let status = wait_timeout(&mut self.child, Duration::from_secs(30));
        let log = self.log();
        let status = status.unwrap_or_else(|| panic!("recorder did not stop:\n{log}"));
        assert!(status.success(), "recorder exited with {status}:\n{log}");
        log
    }

    pub fn kill9(mut self) -> String {
        self.signal("KILL");
        let _ = self.child.wait();
        self.log()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

pub fn run_dir(root: &Path) -> PathBuf {
    root.join(XPID)
}

pub fn push(root: &Path) -> Push {
    let address =
        format!("ipc://{}/sock/episodes", std::path::absolute(run_dir(root)).unwrap().display());
    Push::dial(&address, &credentials(root)).unwrap()
}

/// The run's id and key, as the recorder reads them (made now if the recorder
/// has not started yet: it then reads this one).
pub fn credentials(root: &Path) -> wire::auth::Credentials {
    let run = wire::rundir::RunDir::new(root, XPID).unwrap();
    wire::auth::Credentials::of(&run).unwrap()
}

pub fn send(push: &Push, chunk: &EpisodeChunk) {
    push.send(&Body::EpisodeChunk(Box::new(chunk.clone())), Some(Duration::from_secs(20))).unwrap();
}

pub fn closed_segments(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(run_dir(root))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| {
        p.file_name().unwrap().to_string_lossy().starts_with("episodes-")
            && p.extension().is_some_and(|e| e == "h5")
    });
    v.sort();
    v
}

/// Expectation for one episode, checked by tests/h5check.py.
pub struct Expect<'a> {
    pub uid: EpisodeUid,
    pub sent: &'a Sent,
    /// "exact": every step; "prefix": the stored steps are a prefix of the sent ones.
    pub mode: &'a str,
    pub complete: Option<bool>,
    pub end_reason: Option<&'a str>,
}

/// Writes the expectations to `dir` and runs h5check.py on the run dir;
/// returns its stdout (a JSON summary) or panics with its complaint.
pub fn h5check(root: &Path, dir: &Path, expect: &[Expect], absent: &[EpisodeUid]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let mut episodes = Vec::new();
    for e in expect {
        let name = e.uid.to_string();
        let mut fields = serde_json::Map::new();
        for (field, (bytes, rest, dtype)) in &e.sent.fields {
            let file = dir.join(format!("{name}.{field}.bin"));
            std::fs::write(&file, bytes).unwrap();
            fields.insert(
                field.to_string(),
                serde_json::json!({"file": file, "rest": rest, "dtype": dtype}),
            );
        }
        episodes.push(serde_json::json!({
            "uid": name,
            "mode": e.mode,
            "steps": e.sent.steps,
            "complete": e.complete,
            "end_reason": e.end_reason,
            "episode_return": e.sent.end.map(|x| x.episode_return),
            "missing_chunks": e.sent.missing_chunks,
            "fields": fields,
        }));
    }
    let manifest = serde_json::json!({
        "run_id": XPID,
        "heads": cfg().heads,
        "episodes": episodes,
        "absent": absent.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
    });
    let path = dir.join("manifest.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let out: Output = Command::new(python())
        .arg(script("h5check.py"))
        .arg(run_dir(root))
        .arg(&path)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "h5check {} failed:\n{stdout}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
