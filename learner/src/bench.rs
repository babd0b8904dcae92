//! `learner bench`: what the learner loop costs beyond the model.
//!
//! Two measurements in one process, same device, same threads:
//!
//! 1. **model step**: [`crate::update`] on a batch already on the device —
//!    forward over [T+1, B] from the initial states, IMPALA loss, backward,
//!    gradient-norm clip, RMSProp. Nothing else.
//! 2. **learner loop**: the real [`crate::train`] with its sockets and threads,
//!    fed over ipc by a producer thread that pushes pre-encoded trajectories as
//!    fast as the learner takes them, while a client asks for params the way
//!    actors do. This adds decoding, validation, batching, the copy to the
//!    device, serializing and serving the weights, and logs.csv.
//!
//! Samples are agent steps learned (T * B per update). Prints a table.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};

use agent::model::{AgentState, Model};
use agent::precision::Precision;
use wire::auth::{Channel, Credentials};
use wire::config::ModelConfig;
use wire::protocol::{decode, Array, Body, ParamsRequest, Trajectory};
use wire::seal::{End, Service};
use wire::transport::{seal, ParamsClient};

use crate::batcher::build_batch;
use crate::flags::{device_name, BenchArgs};
use crate::metrics::process_cpu_seconds;
use crate::optim::Optimizer;
use crate::settings::Settings;
use crate::training::train;
use crate::update::update;

/// A trajectory of random frames and actions with valid shapes, for benchmarks.
pub fn random_trajectory(
    cfg: &ModelConfig,
    unroll_length: usize,
    actor_id: u32,
    env_index: u32,
    rng: &mut impl Rng,
) -> Trajectory {
    let n = unroll_length + 1;
    let a = cfg.num_actions;
    let mut frame = vec![0u8; n * cfg.frame_len()];
    rng.fill(frame.as_mut_slice());
    let actions: Vec<i64> = (0..n).map(|_| rng.gen_range(0..a as i64)).collect();
    let logits: Vec<f32> = (0..n * a).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let reward: Vec<f32> = (0..n).map(|_| if rng.gen_bool(0.1) { 1.0 } else { 0.0 }).collect();
    let done: Vec<u8> = (0..n).map(|_| u8::from(rng.gen_bool(0.02))).collect();
    Trajectory {
        actor_id,
        env_index,
        params_version: 0,
        frame: Array::from_u8(vec![n, cfg.height, cfg.width, cfg.in_channels], frame),
        reward: Array::from_f32(vec![n], &reward),
        done: Array::from_u8(vec![n], done),
        last_action: Array::from_i64(vec![n], &actions),
        action: Array::from_i64(vec![n], &actions),
        policy_logits: Array::from_f32(vec![n, a], &logits),
        episode_return: Array::from_f32(vec![n], &vec![0.0; n]),
        episode_step: Array::from_i64(vec![n], &vec![0; n]),
        initial_state: AgentState::zeros(cfg, 1, tch::Device::Cpu).to_protocol(0),
    }
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let train_args = &args.train;
    let (t, b) = (train_args.run.unroll_length, train_args.batch_size);
    let Settings { cfg, device, precision, num_actions, frames_per_step, .. } =
        Settings::resolve(train_args)?;
    let mut rng = rand_pcg::Pcg64::seed_from_u64(train_args.run.seed);
    let trajectories: Vec<Trajectory> =
        (0..b).map(|i| random_trajectory(&cfg, t, 0, i as u32, &mut rng)).collect();
    eprintln!(
        "bench: preset {} ({num_actions} actions), T = {t}, B = {b}, device {}, precision {} ({}), \
         torch threads {}",
        train_args.run.preset,
        device_name(device),
        precision.precision,
        precision.reason,
        tch::get_num_threads()
    );

    // 1. Model step alone (measured again after the loop: the machine may be shared).
    let (model_alone_before, model_cpu_before) =
        model_step_seconds(args, &cfg, &trajectories, device, precision.precision)?;
    eprintln!(
        "bench: model step alone {:.1} ms wall, {:.1} ms CPU",
        model_alone_before * 1e3,
        model_cpu_before * 1e3
    );

    // 2. The learner loop, fed over ipc.
    let looped = measure_loop(args, &cfg, frames_per_step, device, trajectories.clone())?;
    let (model_alone_after, model_cpu_after) =
        model_step_seconds(args, &cfg, &trajectories, device, precision.precision)?;

    let model = Measured {
        alone_before: model_alone_before,
        alone_after: model_alone_after,
        cpu_before: model_cpu_before,
        cpu_after: model_cpu_after,
    };
    print_report(args, device, precision.precision, &model, &looped);
    Ok(())
}

/// The model step alone, wall and CPU seconds, before and after the loop.
struct Measured {
    alone_before: f64,
    alone_after: f64,
    cpu_before: f64,
    cpu_after: f64,
}

/// What the learner loop did when fed over ipc.
struct Looped {
    summary: crate::training::Summary,
    /// Seconds per batch of each piece of the loop's own work ([`loop_parts`]).
    parts: [f64; 6],
    message_bytes: usize,
    downloads: u64,
    last_version: u64,
}

/// Runs the real training loop on pre-encoded trajectories pushed as fast as
/// it takes them, while a client asks for params as actors do.
fn measure_loop(
    args: &BenchArgs,
    cfg: &ModelConfig,
    frames_per_step: u64,
    device: tch::Device,
    trajectories: Vec<Trajectory>,
) -> Result<Looped> {
    let train_args = &args.train;
    let (t, b) = (train_args.run.unroll_length, train_args.batch_size);
    let root = tempfile::tempdir().context("creating a temporary run directory")?;
    let mut loop_args = train_args.clone();
    loop_args.run.runs_root = root.path().to_path_buf();
    loop_args.run.xpid = "bench".into();
    loop_args.resume = false;
    loop_args.checkpoint_interval_s = f64::INFINITY;
    loop_args.log_interval_s = 3600.0;
    loop_args.total_frames = ((args.warmup + args.updates) * t * b) as u64 * frames_per_step;
    let run_dir = loop_args.run.run_dir().map_err(anyhow::Error::msg)?;
    let trajectories_address = run_dir.ipc("trajectories");
    let params_address = run_dir.ipc("params");
    loop_args.trajectories_address = Some(trajectories_address.clone());
    loop_args.params_address = Some(params_address.clone());

    // The run's key (made with its directory), as the learner will read it.
    // The sockets are ipc in the run's private directory: nothing is sealed
    // (wire::auth::Guard::Os), as in a local run.
    let creds = Credentials::of(&run_dir)?;
    let channel = creds.for_address(&trajectories_address, End::Dialer, Service::Stream)?;
    let messages: Vec<Vec<u8>> = trajectories
        .into_iter()
        .map(|tr| seal(&channel, &Body::Trajectory(Box::new(tr))).map(|(bytes, _)| bytes))
        .collect::<Result<_, _>>()?;
    let message_bytes = messages[0].len();
    let parts = loop_parts(&messages, &channel, cfg, t, device, train_args.decode_threads)?;
    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let done = done.clone();
        std::thread::spawn(move || -> Result<()> {
            let socket = nng::Socket::new(nng::Protocol::Push0)?;
            socket.dial_async(&trajectories_address)?;
            for message in messages.iter().cycle() {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                use nng::options::Options;
                socket.set_opt::<nng::options::SendTimeout>(Some(Duration::from_millis(200)))?;
                match socket.send(nng::Message::from(message.as_slice())) {
                    Ok(()) | Err((_, nng::Error::TimedOut)) => {}
                    Err((_, e)) => return Err(e.into()),
                }
            }
            Ok(())
        })
    };
    let params_client = {
        let done = done.clone();
        let creds = creds.clone();
        std::thread::spawn(move || -> Result<(u64, u64)> {
            let client = ParamsClient::dial(&params_address, &creds, 256 << 20)?;
            let (mut version, mut downloads) = (0u64, 0u64);
            while !done.load(Ordering::Relaxed) {
                let request = Body::ParamsRequest(ParamsRequest { actor_id: 0, version });
                if let Ok(Ok(Body::Params(p))) = client.request(&request, Duration::from_secs(5)) {
                    version = p.version;
                    downloads += 1;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok((version, downloads))
        })
    };
    let stop = AtomicBool::new(false);
    let summary = train(&loop_args, &stop);
    done.store(true, Ordering::Relaxed);
    let _ = producer.join();
    let (last_version, downloads) = params_client.join().expect("params client").unwrap_or((0, 0));
    let summary = summary?;
    Ok(Looped { summary, parts, message_bytes, downloads, last_version })
}

fn print_report(
    args: &BenchArgs,
    device: tch::Device,
    precision: Precision,
    model: &Measured,
    looped: &Looped,
) {
    let train_args = &args.train;
    let (t, b) = (train_args.run.unroll_length, train_args.batch_size);
    let Looped { summary, parts, message_bytes, downloads, last_version } = looped;
    let model_alone = model.alone_before.min(model.alone_after);
    let model_cpu = model.cpu_before.min(model.cpu_after);
    // From the end of the last warm-up update (or of the first update) to the end.
    let ends = &summary.update_ends;
    let first = args.warmup.max(1) - 1;
    let timed = &ends[first..];
    let intervals = (timed.len() - 1).max(1);
    let loop_step = (timed[timed.len() - 1].0 - timed[0].0).as_secs_f64() / intervals as f64;
    let loop_cpu = (timed[timed.len() - 1].1 - timed[0].1) / intervals as f64;
    let inner = &summary.update_seconds[first + 1..];
    let inner_step = inner.iter().sum::<f64>() / inner.len().max(1) as f64;

    let samples = (t * b) as f64;
    let pct = |x: f64, base: f64| format!("{:+.1}%", (x / base - 1.0) * 100.0);
    println!();
    println!(
        "| preset | device | precision | T | B | torch threads | measure | model step alone (ms) | \
         learner loop per update (ms) | of which in the model step (ms) | model samples/s | \
         learner samples/s | loop beyond its own model step | loop vs model alone |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let head = format!(
        "| {} | {} | {} | {t} | {b} | {} ",
        train_args.run.preset,
        device_name(device),
        precision,
        tch::get_num_threads()
    );
    println!(
        "{head}| wall | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} |",
        model_alone * 1e3,
        loop_step * 1e3,
        inner_step * 1e3,
        samples / model_alone,
        samples / loop_step,
        pct(loop_step, inner_step),
        pct(loop_step, model_alone),
    );
    println!(
        "{head}| CPU | {:.1} | {:.1} | - | - | - | - | {} |",
        model_cpu * 1e3,
        loop_cpu * 1e3,
        pct(loop_cpu, model_cpu),
    );
    println!();
    println!(
        "({} timed updates after {} warm-up; model step alone {:.1} / {:.1} ms wall, {:.1} / \
         {:.1} ms CPU before / after the loop; trajectory message {:.2} MB; params client \
         downloaded {downloads} versions, last {last_version}; CPU = process CPU seconds, all \
         threads)",
        args.updates,
        args.warmup,
        model.alone_before * 1e3,
        model.alone_after * 1e3,
        model.cpu_before * 1e3,
        model.cpu_after * 1e3,
        *message_bytes as f64 / 1e6
    );
    println!();
    println!(
        "Per-batch work of the loop outside the model step, measured alone (wall ms, mean of 5):"
    );
    println!();
    println!(
        "| decode B messages (one thread) | validate B | build batch ({} threads{}) | copy to device | \
         weights snapshot | serialize + encode params |",
        train_args.decode_threads,
        if device.is_cuda() { ", page-locked" } else { "" }
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
        parts[0] * 1e3,
        parts[1] * 1e3,
        parts[2] * 1e3,
        parts[3] * 1e3,
        parts[4] * 1e3,
        parts[5] * 1e3
    );
}

/// Wall and process CPU seconds per [`update`] on a batch already on the
/// device (after warm-up).
fn model_step_seconds(
    args: &BenchArgs,
    cfg: &ModelConfig,
    trajectories: &[Trajectory],
    device: tch::Device,
    precision: Precision,
) -> Result<(f64, f64)> {
    let train_args = &args.train;
    tch::manual_seed(train_args.run.seed as i64);
    let mut model = Model::new(cfg.clone(), device);
    model.set_precision(precision);
    let mut opt = Optimizer::new(&model.vs, train_args.optimizer_config());
    let threads = train_args.decode_threads;
    let batch = build_batch(trajectories, cfg, threads)?.to_device(device);
    let loss_cfg = train_args.loss_config();
    let clip = train_args.grad_norm_clip;
    let sync = || {
        if let tch::Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    for _ in 0..args.warmup {
        update(&model, &mut opt, &batch, &loss_cfg, clip, 1e-4);
    }
    sync();
    let start = Instant::now();
    let cpu_start = process_cpu_seconds().unwrap_or(f64::NAN);
    for _ in 0..args.updates {
        update(&model, &mut opt, &batch, &loss_cfg, clip, 1e-4);
    }
    sync();
    let n = args.updates.max(1) as f64;
    let cpu = process_cpu_seconds().unwrap_or(f64::NAN) - cpu_start;
    Ok((start.elapsed().as_secs_f64() / n, cpu / n))
}

/// Seconds per batch of each piece of the loop's own work, each timed alone:
/// decode, validate, build, copy to the device, weights snapshot, serialize
/// and encode the params message.
fn loop_parts(
    messages: &[Vec<u8>],
    channel: &Channel,
    cfg: &ModelConfig,
    unroll_length: usize,
    device: tch::Device,
    threads: usize,
) -> Result<[f64; 6]> {
    const REPS: usize = 5;
    let mut sums = [0.0f64; 6];
    let model = Model::new(cfg.clone(), device);
    let sync = || {
        if let tch::Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    for _ in 0..REPS {
        let clock = Instant::now();
        let trajectories: Vec<Trajectory> = messages
            .iter()
            .map(|m| match decode(m, channel.run()) {
                Ok(Body::Trajectory(t)) => Ok(*t),
                other => anyhow::bail!("bench message decodes to {other:?}"),
            })
            .collect::<Result<_>>()?;
        sums[0] += clock.elapsed().as_secs_f64();
        let clock = Instant::now();
        for t in &trajectories {
            t.validate(cfg, unroll_length)?;
        }
        sums[1] += clock.elapsed().as_secs_f64();
        let clock = Instant::now();
        let batch = build_batch(&trajectories, cfg, threads)?.pinned(device);
        sums[2] += clock.elapsed().as_secs_f64();
        let clock = Instant::now();
        let on_device = batch.to_device(device);
        sync();
        sums[3] += clock.elapsed().as_secs_f64();
        drop(on_device);
        let clock = Instant::now();
        let snapshot: Vec<(String, tch::Tensor)> = tch::no_grad(|| {
            model.vs.variables().into_iter().map(|(n, t)| (n, t.detach().copy())).collect()
        });
        sync();
        sums[4] += clock.elapsed().as_secs_f64();
        drop(snapshot);
        let clock = Instant::now();
        let params = model.to_params(1)?;
        let _bytes = seal(channel, &Body::Params(params))?;
        sums[5] += clock.elapsed().as_secs_f64();
    }
    Ok(sums.map(|s| s / REPS as f64))
}
