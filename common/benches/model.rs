//! Throughput of the attention agent: the Rust model (tch) against the plain
//! PyTorch reference (`scripts/reference_model.py`) with the same weights, in
//! one run, on the same number of threads. Prints a table; not a timed test.
//!
//! ```text
//! cargo bench -p common --bench model -- [--threads 2] [--seconds 5] [--preset paper]
//! ```
//!
//! Inference: E = 8 environments, T = 1, no gradients (what the actor does).
//! Training: T = 20, B = 8, forward + backward + RMSProp on the learner's loss
//! shape (what the learner does, minus V-trace).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use common::config::{ModelConfig, Preset};
use common::model::{AgentOutput, AgentState, Model, Unroll};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

struct Args {
    threads: i32,
    seconds: f64,
    preset: Preset,
    actions: usize,
    envs: i64,
    unroll: i64,
    batch: i64,
    python: bool,
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
        python: true,
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
            "--no-python" => args.python = false,
            _ => {} // cargo bench passes --bench and filters
        }
    }
    args
}

fn random_unroll(cfg: &ModelConfig, t: i64, b: i64) -> Unroll {
    let (h, w, c) = (cfg.height as i64, cfg.width as i64, cfg.in_channels as i64);
    Unroll {
        frame: Tensor::randint(256, [t, b, h, w, c], (Kind::Uint8, Device::Cpu)),
        reward: Tensor::randn([t, b], (Kind::Float, Device::Cpu)),
        done: Tensor::rand([t, b], (Kind::Float, Device::Cpu)).lt(0.05),
        last_action: Tensor::randint(cfg.num_actions as i64, [t, b], (Kind::Int64, Device::Cpu)),
    }
}

/// Calls `f` once to warm up, then until `seconds` pass; returns calls per second.
fn timed(seconds: f64, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        f();
        n += 1;
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= seconds {
            return n as f64 / elapsed;
        }
    }
}

/// The learner's loss shape (SPEC section 4) on fixed advantages and targets.
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

struct Figures {
    inference: f64,
    training: f64,
}

fn bench_rust(model: &Model, args: &Args) -> Figures {
    let cfg = &model.cfg;
    let input = random_unroll(cfg, 1, args.envs);
    let mut state = AgentState::zeros(cfg, args.envs, Device::Cpu);
    let inference = timed(args.seconds, || {
        tch::no_grad(|| {
            let (_, next) = model.unroll(&input, &state);
            state = next;
        })
    }) * args.envs as f64;

    let (t, b) = (args.unroll, args.batch);
    let input = random_unroll(cfg, t, b);
    let actions = Tensor::randint(cfg.num_actions as i64, [t, b], (Kind::Int64, Device::Cpu));
    let advantages = Tensor::randn([t, b], (Kind::Float, Device::Cpu));
    let targets = Tensor::randn([t, b], (Kind::Float, Device::Cpu));
    let init = AgentState::zeros(cfg, b, Device::Cpu);
    let rmsprop = nn::RmsProp { alpha: 0.99, eps: 0.01, wd: 0.0, momentum: 0.0, centered: false };
    let mut opt = rmsprop.build(&model.vs, 6e-4).expect("optimizer");
    let training = timed(args.seconds, || {
        let (out, _) = model.unroll(&input, &init);
        opt.backward_step(&training_loss(&out, &actions, &advantages, &targets));
    }) * (t * b) as f64;
    Figures { inference, training }
}

fn bench_python(model: &Model, args: &Args) -> Result<Figures, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        return Err(format!("{} missing: run `. scripts/bootstrap.sh`", python.display()));
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let weights = dir.path().join("weights.safetensors");
    std::fs::write(&weights, model.to_safetensors().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let out = Command::new(python)
        .arg(root.join("scripts/reference_model.py"))
        .arg("bench")
        .arg("--weights")
        .arg(&weights)
        .args(["--threads", &args.threads.to_string()])
        .args(["--seconds", &args.seconds.to_string()])
        .args(["--envs", &args.envs.to_string()])
        .args(["--unroll", &args.unroll.to_string()])
        .args(["--batch", &args.batch.to_string()])
        .output()
        .map_err(|e| format!("cannot run the reference script: {e}"))?;
    if !out.status.success() {
        return Err(format!("reference script failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(line.trim()).map_err(|e| e.to_string())?;
    let get = |k: &str| json[k].as_f64().ok_or_else(|| format!("no {k} in {line}"));
    Ok(Figures {
        inference: get("inference_steps_per_s")?,
        training: get("training_samples_per_s")?,
    })
}

fn main() {
    let args = parse_args();
    tch::set_num_threads(args.threads);
    tch::manual_seed(0);
    let cfg = ModelConfig::preset(args.preset, args.actions);
    let model = Model::new(cfg, Device::Cpu);
    println!(
        "attention agent, preset {} ({} actions), {} threads, {} s per figure",
        args.preset, args.actions, args.threads, args.seconds
    );
    let rust = bench_rust(&model, &args);
    let python = if args.python { Some(bench_python(&model, &args)) } else { None };
    let inference = format!("inference steps/s (E = {}, T = 1)", args.envs);
    let training = format!("training samples/s (T = {}, B = {})", args.unroll, args.batch);
    println!();
    println!("| {:<36} | {:>12} | {:>12} | {:>10} |", "", "Rust (tch)", "PyTorch", "Rust/PyTorch");
    println!("|{:-<38}|{:->14}|{:->14}|{:->12}|", "", "", "", "");
    for (name, ours, theirs) in [
        (
            &inference,
            rust.inference,
            python.as_ref().and_then(|p| p.as_ref().ok()).map(|p| p.inference),
        ),
        (
            &training,
            rust.training,
            python.as_ref().and_then(|p| p.as_ref().ok()).map(|p| p.training),
        ),
    ] {
        let (theirs, ratio) = match theirs {
            Some(v) => (format!("{v:.1}"), format!("{:.2}x", ours / v)),
            None => ("-".into(), "-".into()),
        };
        println!("| {name:<36} | {ours:>12.1} | {theirs:>12} | {ratio:>12} |");
    }
    if let Some(Err(e)) = python {
        println!("\nPyTorch reference not measured: {e}");
    }
}
