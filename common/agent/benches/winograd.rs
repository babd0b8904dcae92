//! The ConvLSTM's gate convolution alone, at the paper preset's shape: the
//! Winograd F(2x2, 3x3) route the actor takes (`agent::model::winograd`)
//! against libtorch's direct convolution, on the same inputs and threads.
//!
//! cargo bench -p agent --bench winograd -- [--threads 2] [--batch 8] [--reps 20]

use std::time::Instant;

use agent::model::winograd::{conv3x3, Shape, WinogradFilter};
use tch::{Device, Kind, Tensor};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number")))
        .unwrap_or(default)
}

fn main() {
    let threads = arg("--threads", 2);
    let batch = arg("--batch", 8);
    let reps = arg("--reps", 20);
    tch::set_num_threads(threads as i32);
    tch::manual_seed(0);
    // Paper preset: [x, h] = 64 + 128 channels over the 27x20 grid -> 4 x 128 gates.
    let (ci, co, h, w) = (192usize, 512usize, 27usize, 20usize);
    let opts = (Kind::Float, Device::Cpu);
    let x = Tensor::rand([batch as i64, h as i64, w as i64, ci as i64], opts); // channels-last
    let x_nchw = x.permute([0, 3, 1, 2]).contiguous();
    let weight = Tensor::randn([co as i64, ci as i64, 3, 3], opts) * 0.05;
    let bias = Tensor::randn([co as i64], opts) * 0.1;
    let xs = Vec::<f32>::try_from(x.view([-1])).expect("f32");
    let ws = Vec::<f32>::try_from(weight.view([-1])).expect("f32");
    let bs = Vec::<f32>::try_from(&bias).expect("f32");
    let start = Instant::now();
    let filter = WinogradFilter::new(&ws, co, ci);
    let transform_ms = start.elapsed().as_secs_f64() * 1e3;
    let shape = Shape { batch, height: h, width: w };
    let mut out = vec![0f32; batch * h * w * co];
    let direct = || x_nchw.conv2d(&weight, Some(&bias), [1, 1], [1, 1], [1, 1], 1);

    // Same numbers, first: the two routes agree.
    conv3x3(&xs, shape, &filter, &bs, &mut out, threads);
    let ours = Tensor::from_slice(&out).view([batch as i64, h as i64, w as i64, co as i64]);
    let diff = (ours.permute([0, 3, 1, 2]) - direct()).abs().max().double_value(&[]);

    let macs = (batch * h * w * ci * co * 9) as f64;
    println!(
        "ConvLSTM gates, 3x3, {ci} -> {co} channels over {h}x{w}, batch {batch}, {threads} thread(s); \
         {:.2} GMAC direct; max |winograd - direct| = {diff:.1e}; filter transform {transform_ms:.1} ms (once per weight version)",
        macs / 1e9
    );
    for round in 1..=3 {
        let t = Instant::now();
        for _ in 0..reps {
            conv3x3(&xs, shape, &filter, &bs, &mut out, threads);
        }
        let winograd = t.elapsed().as_secs_f64() / reps as f64 * 1e3;
        let t = Instant::now();
        for _ in 0..reps {
            let _ = direct();
        }
        let libtorch = t.elapsed().as_secs_f64() / reps as f64 * 1e3;
        println!(
            "round {round}: winograd {winograd:.2} ms, libtorch direct {libtorch:.2} ms, ratio {:.2}x",
            libtorch / winograd
        );
    }
}
