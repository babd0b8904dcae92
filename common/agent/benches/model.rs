//! Throughput of the attention agent: the Rust model (tch) against the plain
//! PyTorch reference (`scripts/python/reference_model.py`) with the same weights, in
//! one run, on the same number of threads. Prints a table; not a timed test.
//!
//! ```text
//! cargo bench -p agent --bench model -- [--threads 2] [--seconds 5] [--rounds 3]
//!     [--preset paper|small] [--actions 18] [--envs 8] [--unroll 20] [--batch 8] [--no-python]
//!     [--precision fp32|bf16|both] [--device cpu|cuda]
//! ```
//!
//! `--precision both` measures fp32 and bf16 in the same run and prints each
//! side's bf16/fp32 ratio: the Rust model with its precision policy
//! (`agent::precision`), PyTorch with `torch.autocast` to bfloat16.
//! `--device cuda` runs both sides on the GPU (per-CPU-second figures then mean
//! little).
//!
//! Rust and PyTorch figures are taken in alternating rounds and the medians
//! reported, so load from other processes on a shared machine hits both alike.
//!
//! Inference: E = 8 environments, T = 1, no gradients (what the actor does).
//! Training: T = 20, B = 8, forward + backward + RMSProp on the learner's loss
//! shape (what the learner does, minus V-trace).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use agent::model::{AgentOutput, AgentState, Model, Unroll};
use agent::precision::Precision;
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};
use wire::config::{ModelConfig, Preset};

struct Args {
    threads: i32,
    seconds: f64,
    preset: Preset,
    actions: usize,
    envs: i64,
    unroll: i64,
    batch: i64,
    rounds: usize,
    python: bool,
    precisions: Vec<Precision>,
    device: Device,
}

fn parse_args() -> Args {
    let mut args = Args {
        threads: 2,
        seconds: 5.0,
        preset: Preset::Paper,
        actions: 18,
        envs: 8,
        unroll: 20,
        batch: 8,
        rounds: 3,
        python: true,
        precisions: vec![Precision::Fp32],
        device: Device::Cpu,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--threads" => args.threads = value().parse().expect("--threads N"),
            "--seconds" => args.seconds = value().parse().expect("--seconds S"),
            "--preset" => args.preset = value().parse().expect("--preset paper|small"),
            "--actions" => args.actions = value().parse().expect("--actions A"),
            "--envs" => args.envs = value().parse().expect("--envs E"),
            "--unroll" => args.unroll = value().parse().expect("--unroll T"),
            "--batch" => args.batch = value().parse().expect("--batch B"),
            "--rounds" => args.rounds = value().parse().expect("--rounds N"),
            "--no-python" => args.python = false,
            "--precision" => {
                args.precisions = match value().as_str() {
                    "fp32" => vec![Precision::Fp32],
                    "bf16" => vec![Precision::Bf16],
                    "both" => vec![Precision::Fp32, Precision::Bf16],
                    other => panic!("--precision {other}: use fp32, bf16 or both"),
                }
            }
            "--device" => {
                args.device = match value().as_str() {
                    "cpu" => Device::Cpu,
                    "cuda" => Device::Cuda(0),
                    other => panic!("--device {other}: use cpu or cuda"),
                }
            }
            _ => {} // cargo bench passes --bench and filters
        }
    }
    args
}

fn random_unroll(cfg: &ModelConfig, t: i64, b: i64, d: Device) -> Unroll {
    let (h, w, c) = (cfg.height as i64, cfg.width as i64, cfg.in_channels as i64);
    Unroll {
        frame: Tensor::randint(256, [t, b, h, w, c], (Kind::Uint8, d)),
        reward: Tensor::randn([t, b], (Kind::Float, d)),
        done: Tensor::rand([t, b], (Kind::Float, d)).lt(0.05),
        last_action: Tensor::randint(cfg.num_actions as i64, [t, b], (Kind::Int64, d)),
    }
}

/// Waits for the GPU's queued work (timings on CUDA include it).
fn sync(d: Device) {
    if let Device::Cuda(i) = d {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Process CPU time (user + system) in seconds, from /proc/self/stat (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 Hz.
    (ticks(11) + ticks(12)) / 100.0
}

/// Work per wall-clock second and per CPU second of this process.
#[derive(Clone, Copy)]
struct Rate {
    wall: f64,
    cpu: f64,
}

impl std::ops::Mul<f64> for Rate {
    type Output = Rate;
    fn mul(self, k: f64) -> Rate {
        Rate { wall: self.wall * k, cpu: self.cpu * k }
    }
}

/// Calls `f` once to warm up, then until `seconds` pass; returns calls per second.
fn timed(seconds: f64, mut f: impl FnMut()) -> Rate {
    f();
    let start = Instant::now();
    let cpu_start = cpu_seconds();
    let mut n = 0u64;
    loop {
        f();
        n += 1;
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= seconds {
            let cpu = (cpu_seconds() - cpu_start).max(0.01);
            return Rate { wall: n as f64 / elapsed, cpu: n as f64 / cpu };
        }
    }
}

/// The learner's loss shape (docs/architecture.md, V-trace and the loss) on
/// fixed advantages and targets.
fn training_loss(
    out: &AgentOutput,
    actions: &Tensor,
    advantages: &Tensor,
    targets: &Tensor,
) -> Tensor {
    let log_pi = out.policy_logits.log_softmax(-1, Kind::Float);
    let pg = -(log_pi.gather(2, &actions.unsqueeze(2), false).squeeze_dim(2) * advantages)
        .sum(Kind::Float);
    let baseline = (targets - &out.baseline).square().sum(Kind::Float) * 0.25;
    let entropy = (log_pi.exp() * &log_pi).sum(Kind::Float) * 0.01;
    pg + baseline + entropy
}

/// Steps (or samples) per second of one kind of work.
#[derive(Clone, Copy, PartialEq)]
enum Work {
    Inference,
    Training,
}

fn bench_rust(model: &Model, args: &Args, work: Work) -> Rate {
    let cfg = &model.cfg;
    let d = args.device;
    match work {
        Work::Inference => {
            let input = random_unroll(cfg, 1, args.envs, d);
            let mut state = AgentState::zeros(cfg, args.envs, d);
            timed(args.seconds, || {
                // What the actor calls.
                let (_, next) = model.act(&input, &state);
                state = next;
                sync(d);
            }) * args.envs as f64
        }
        Work::Training => {
            let (t, b) = (args.unroll, args.batch);
            let input = random_unroll(cfg, t, b, d);
            let actions = Tensor::randint(cfg.num_actions as i64, [t, b], (Kind::Int64, d));
            let advantages = Tensor::randn([t, b], (Kind::Float, d));
            let targets = Tensor::randn([t, b], (Kind::Float, d));
            let init = AgentState::zeros(cfg, b, d);
            let rmsprop =
                nn::RmsProp { alpha: 0.99, eps: 0.01, wd: 0.0, momentum: 0.0, centered: false };
            let mut opt = rmsprop.build(&model.vs, 6e-4).expect("optimizer");
            timed(args.seconds, || {
                let (out, _) = model.unroll(&input, &init);
                opt.backward_step(&training_loss(&out, &actions, &advantages, &targets));
                sync(d);
            }) * (t * b) as f64
        }
    }
}

fn bench_python(
    weights: &std::path::Path,
    args: &Args,
    work: Work,
    precision: Precision,
) -> Result<Rate, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        return Err(format!("{} missing: run `. scripts/bootstrap.sh`", python.display()));
    }
    let (only, key) = match work {
        Work::Inference => ("inference", "inference_steps_per_s"),
        Work::Training => ("training", "training_samples_per_s"),
    };
    let out = Command::new(python)
        .arg(root.join("scripts/python/reference_model.py"))
        .arg("bench")
        .arg("--weights")
        .arg(weights)
        .args(["--only", only])
        .args(["--threads", &args.threads.to_string()])
        .args(["--seconds", &args.seconds.to_string()])
        .args(["--envs", &args.envs.to_string()])
        .args(["--unroll", &args.unroll.to_string()])
        .args(["--batch", &args.batch.to_string()])
        .args(["--precision", &precision.to_string()])
        .args(["--device", if args.device.is_cuda() { "cuda" } else { "cpu" }])
        .output()
        .map_err(|e| format!("cannot run the reference script: {e}"))?;
    if !out.status.success() {
        return Err(format!("reference script failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(line.trim()).map_err(|e| e.to_string())?;
    let get = |k: &str| json[k].as_f64().ok_or_else(|| format!("no {k} in {line}"));
    Ok(Rate { wall: get(key)?, cpu: get(&format!("{key}_cpu"))? })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let args = parse_args();
    if args.device.is_cuda() && !tch::Cuda::is_available() {
        eprintln!("--device cuda: no CUDA device is visible to libtorch here");
        std::process::exit(2);
    }
    tch::set_num_threads(args.threads);
    tch::manual_seed(0);
    let cfg = ModelConfig::preset(args.preset, args.actions);
    let mut model = Model::new(cfg, args.device);
    println!(
        "attention agent, preset {} ({} actions), device {:?}, {} threads, {} round(s) of >= {} s \
         per figure, Rust and PyTorch interleaved; medians",
        args.preset, args.actions, args.device, args.threads, args.rounds, args.seconds
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = dir.path().join("weights.safetensors");
    std::fs::write(&weights, model.to_safetensors().expect("weights")).expect("write weights");

    // (work, precision) -> (name, Rust, PyTorch, error)
    let mut rows = Vec::new();
    for &precision in &args.precisions {
        model.set_precision(precision);
        for work in [Work::Inference, Work::Training] {
            let (mut ours, mut theirs, mut error) = (Vec::new(), Vec::new(), None);
            for _ in 0..args.rounds {
                ours.push(bench_rust(&model, &args, work));
                if args.python && error.is_none() {
                    match bench_python(&weights, &args, work, precision) {
                        Ok(v) => theirs.push(v),
                        Err(e) => error = Some(e),
                    }
                }
            }
            let name = match work {
                Work::Inference => {
                    format!("{precision} inference steps/s (E = {}, T = 1)", args.envs)
                }
                Work::Training => {
                    format!(
                        "{precision} training samples/s (T = {}, B = {})",
                        args.unroll, args.batch
                    )
                }
            };
            let walls = |v: &[Rate]| v.iter().map(|r| r.wall).collect::<Vec<_>>();
            let cpus = |v: &[Rate]| v.iter().map(|r| r.cpu).collect::<Vec<_>>();
            eprintln!(
                "{name} per wall s: Rust {:.1?}, PyTorch {:.1?}",
                walls(&ours),
                walls(&theirs)
            );
            eprintln!("{name} per CPU s: Rust {:.1?}, PyTorch {:.1?}", cpus(&ours), cpus(&theirs));
            let ours = Rate { wall: median(walls(&ours)), cpu: median(cpus(&ours)) };
            let theirs = (!theirs.is_empty())
                .then(|| Rate { wall: median(walls(&theirs)), cpu: median(cpus(&theirs)) });
            rows.push((work, precision, name, ours, theirs, error));
        }
    }
    println!();
    println!("Per second of wall-clock time (the figure asked for), and per CPU second of the");
    println!("process (robust to other load on a shared machine):");
    println!();
    println!(
        "| {:<41} | {:>10} | {:>10} | {:>7} | {:>10} | {:>10} | {:>7} |",
        "", "Rust wall", "Torch wall", "ratio", "Rust CPU", "Torch CPU", "ratio"
    );
    println!("|{:-<43}|{:->12}|{:->12}|{:->9}|{:->12}|{:->12}|{:->9}|", "", "", "", "", "", "", "");
    let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}x", a / b),
        _ => "-".to_string(),
    };
    for (_, _, name, ours, theirs, _) in &rows {
        println!(
            "| {name:<41} | {:>10.1} | {:>10} | {:>7} | {:>10.1} | {:>10} | {:>7} |",
            ours.wall,
            cell(theirs.map(|t| t.wall)),
            ratio(Some(ours.wall), theirs.map(|t| t.wall)),
            ours.cpu,
            cell(theirs.map(|t| t.cpu)),
            ratio(Some(ours.cpu), theirs.map(|t| t.cpu)),
        );
    }
    if args.precisions.len() == 2 {
        println!();
        println!("bf16 / fp32 (same side, same work):");
        println!();
        println!(
            "| {:<10} | {:>10} | {:>10} | {:>10} | {:>10} |",
            "", "Rust wall", "Torch wall", "Rust CPU", "Torch CPU"
        );
        println!("|{:-<12}|{:->12}|{:->12}|{:->12}|{:->12}|", "", "", "", "", "");
        for work in [Work::Inference, Work::Training] {
            let find = |p: Precision| rows.iter().find(|r| r.0 == work && r.1 == p).expect("row");
            let (a, b) = (find(Precision::Bf16), find(Precision::Fp32));
            println!(
                "| {:<10} | {:>10} | {:>10} | {:>10} | {:>10} |",
                if work == Work::Inference { "inference" } else { "training" },
                ratio(Some(a.3.wall), Some(b.3.wall)),
                ratio(a.4.map(|t| t.wall), b.4.map(|t| t.wall)),
                ratio(Some(a.3.cpu), Some(b.3.cpu)),
                ratio(a.4.map(|t| t.cpu), b.4.map(|t| t.cpu)),
            );
        }
    }
    for (_, _, name, _, _, error) in &rows {
        if let Some(e) = error {
            println!("\nPyTorch reference not measured for {name}: {e}");
        }
    }
}
