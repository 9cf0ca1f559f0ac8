//! `bench_report`: times one warpgrad workload with plain wall-clock medians
//! (no criterion statistics) and prints one JSON line, for the PyTorch
//! side-by-side in `benches/compare/`.
//!
//! ```text
//! bench_report --op forward --workload W1 --threads 2 --reps 20
//! bench_report --serve --threads 2        # jobs on stdin, one per line:
//!     op=forward workload=W1 reps=20 warmup=2 min_time_ms=300
//! ```
//!
//! Ops and their workloads:
//! - `forward`, `backward` (∂input and ∂grid), `backward_grid` (∂grid only),
//!   `affine_grid`, `fused` (fused affine sampler, forward + backward),
//!   `two_step` (affine_grid + grid_sample, forward + backward), `tps_grid`:
//!   W1–W6;
//! - `conv_fwd`, `conv_bwd`: a layer of `warpgrad_benches::CONV_LAYERS`;
//! - `train`, `infer`: `rts` or `tutorial` (batch 256, `--batch` to change);
//! - `peak`: `reps` training steps of `rts` or `tutorial` in this process,
//!   then its peak RSS (meant for a fresh process);
//! - `data`: 10,000 samples of a distortion (`r`, `rts`, `p`, `e`, `tc`);
//! - `fma_peak`: the FP32 FMA peak probe (`avx2` or `avx512`) on the
//!   `--threads` threads, reported as `gflops` (`reps` × 100 ms).
//!
//! Conv lines also give `gflops` (median) and `conv_simd`, the build of the
//! convolution's micro-kernel.
//!
//! Threads: `--threads t` sets `RAYON_NUM_THREADS` before the pool starts.
//!
//! Allocator: the plain library, as any program using the crates runs it
//! (tensor buffers reused by `engine::pool`, glibc's defaults; no
//! process-wide setting).
//! In serve mode cases are built once and kept, so a job interleaved with
//! PyTorch's pays no set-up.

use std::collections::HashMap;
use std::hint::black_box;
use std::io::{BufRead, Write};
use std::time::Instant;
use warpgrad_benches::{
    conv_layer, peak_rss_kib, workload, ConvCase, DataCase, ModelKind, SamplerCase, TpsCase,
    Trainer, BATCH, DATA_SAMPLES,
};

/// One job: what to time and how long.
#[derive(Clone, Debug)]
struct Job {
    op: String,
    workload: String,
    reps: usize,
    warmup: usize,
    min_time_ms: f64,
    batch: usize,
}

impl Default for Job {
    fn default() -> Job {
        Job {
            op: String::new(),
            workload: String::new(),
            reps: 10,
            warmup: 2,
            min_time_ms: 0.0,
            batch: BATCH,
        }
    }
}

impl Job {
    /// Sets one `key`/`value` pair; an error names an unknown key or bad number.
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let num = |v: &str| v.parse::<f64>().map_err(|e| format!("{key}={v}: {e}"));
        match key {
            "op" => self.op = value.to_string(),
            "workload" => self.workload = value.to_string(),
            "reps" => self.reps = num(value)? as usize,
            "warmup" => self.warmup = num(value)? as usize,
            "min_time_ms" => self.min_time_ms = num(value)?,
            "batch" => self.batch = num(value)? as usize,
            _ => return Err(format!("unknown key '{key}'")),
        }
        Ok(())
    }

    /// Parses `key=value` words (serve mode).
    fn parse_line(line: &str) -> Result<Job, String> {
        let mut job = Job::default();
        for word in line.split_whitespace() {
            let (k, v) = word
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got '{word}'"))?;
            job.set(k, v)?;
        }
        Ok(job)
    }

    /// The key under which serve mode keeps this job's case.
    fn case_key(&self) -> String {
        let family = match self.op.as_str() {
            "conv_fwd" | "conv_bwd" => "conv",
            "train" | "infer" | "peak" => "model",
            "tps_grid" => "tps",
            "data" => "data",
            _ => "sampler",
        };
        format!("{family}/{}/{}", self.workload, self.batch)
    }
}

/// A built workload.
enum Case {
    Sampler(Box<SamplerCase>),
    Tps(Box<TpsCase>),
    Conv(Box<ConvCase>),
    Model(Box<Trainer>),
    Data(Box<DataCase>, u64),
}

/// Builds the case of `job` and returns it with its work items per rep
/// and their unit.
fn build(job: &Job) -> Result<(Case, u64, &'static str), String> {
    let wl =
        || workload(&job.workload).ok_or_else(|| format!("unknown workload '{}'", job.workload));
    Ok(match job.op.as_str() {
        "forward" | "backward" | "backward_grid" | "fused" | "two_step" => {
            let w = wl()?;
            (
                Case::Sampler(Box::new(SamplerCase::new(w, 1))),
                w.out_elems(),
                "elements",
            )
        }
        "affine_grid" => {
            let w = wl()?;
            (
                Case::Sampler(Box::new(SamplerCase::new(w, 1))),
                w.grid_points(),
                "grid_points",
            )
        }
        "tps_grid" => {
            let w = wl()?;
            (
                Case::Tps(Box::new(TpsCase::new(w, 3))),
                w.grid_points(),
                "grid_points",
            )
        }
        "conv_fwd" | "conv_bwd" => {
            let l = conv_layer(&job.workload)
                .ok_or_else(|| format!("unknown conv layer '{}'", job.workload))?;
            (
                Case::Conv(Box::new(ConvCase::new(l, job.batch, 5))),
                job.batch as u64,
                "images",
            )
        }
        "train" | "infer" | "peak" => {
            let k = ModelKind::parse(&job.workload)
                .ok_or_else(|| format!("unknown model '{}'", job.workload))?;
            (
                Case::Model(Box::new(Trainer::new(k, job.batch, 11))),
                job.batch as u64,
                "images",
            )
        }
        "data" => {
            let v = datasets::Variant::parse(&job.workload).map_err(|e| e.to_string())?;
            (
                Case::Data(Box::new(DataCase::new(v, 9)), 0),
                DATA_SAMPLES as u64,
                "samples",
            )
        }
        op => return Err(format!("unknown op '{op}'")),
    })
}

/// Runs `op` once on `case`.
fn run_once(case: &mut Case, op: &str) {
    match case {
        Case::Sampler(c) => match op {
            "forward" => drop(black_box(c.forward())),
            "backward" => drop(black_box(c.backward(true))),
            "backward_grid" => drop(black_box(c.backward(false))),
            "affine_grid" => drop(black_box(c.affine_grid())),
            "fused" => drop(black_box(c.fused_fwd_bwd())),
            _ => drop(black_box(c.two_step_fwd_bwd())),
        },
        Case::Tps(c) => drop(black_box(c.grid())),
        Case::Conv(c) => match op {
            "conv_fwd" => drop(black_box(c.forward())),
            _ => drop(black_box(c.backward())),
        },
        Case::Model(t) => match op {
            "infer" => drop(black_box(t.infer())),
            _ => drop(black_box(t.step())),
        },
        Case::Data(c, epoch) => {
            *epoch += 1;
            black_box(c.generate(*epoch));
        }
    }
}

/// Times `job` on `case`: warm-up, then at least `reps` runs and at least
/// `min_time_ms` in all. Returns the per-run times in ms.
fn time(job: &Job, case: &mut Case) -> Vec<f64> {
    for _ in 0..job.warmup {
        run_once(case, &job.op);
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < job.reps.max(1)
        || (start.elapsed().as_secs_f64() * 1e3 < job.min_time_ms && times.len() < 10_000)
    {
        let t0 = Instant::now();
        run_once(case, &job.op);
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    times
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// How this process runs, stated in every report line.
struct Setup {
    /// `RAYON_NUM_THREADS`, or `"default"`.
    threads: String,
}

/// Runs one job (building or reusing its case) and returns its JSON line.
fn report(
    job: &Job,
    setup: &Setup,
    cache: &mut HashMap<String, (Case, u64, &'static str)>,
) -> String {
    if job.op == "fma_peak" {
        return fma_peak_report(job, setup);
    }
    let key = job.case_key();
    if !cache.contains_key(&key) {
        match build(job) {
            Ok(c) => {
                cache.insert(key.clone(), c);
            }
            Err(e) => return format!("{{\"error\":{}}}", json_str(&e)),
        }
    }
    let (case, items, unit) = cache.get_mut(&key).expect("inserted above");
    // The case is shared with the sampler ops: count grid points here.
    let (items, unit) = match (job.op.as_str(), workload(&job.workload)) {
        ("affine_grid", Some(w)) => (w.grid_points(), "grid_points"),
        _ => (*items, *unit),
    };
    let times = time(job, case);
    let med = median(&times);
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let list: Vec<String> = times.iter().map(|t| format!("{t:.4}")).collect();
    let mut peak = match (job.op.as_str(), peak_rss_kib()) {
        ("peak", Some(kib)) => format!(",\"peak_rss_kib\":{kib}"),
        _ => String::new(),
    };
    if let Case::Conv(c) = case {
        let flops = if job.op == "conv_fwd" {
            c.forward_flops()
        } else {
            c.backward_flops()
        };
        peak.push_str(&format!(
            ",\"gflops\":{:.2},\"conv_simd\":\"{}\"",
            flops as f64 / (med / 1e3) / 1e9,
            layers::conv::kernel_build()
        ));
    }
    format!(
        "{{\"impl\":\"warpgrad\",\"op\":{},\"workload\":{},\"threads\":{},\"batch\":{},\"reps\":{},\"median_ms\":{med:.4},\"min_ms\":{min:.4},\"items\":{items},\"items_unit\":\"{unit}\",\"items_per_s\":{:.1}{peak},\"simd\":\"{}\",\"times_ms\":[{}]}}",
        json_str(&job.op),
        json_str(&job.workload),
        json_str(&setup.threads),
        job.batch,
        times.len(),
        items as f64 / (med / 1e3),
        stn::sampler::kernel_build(),
        list.join(",")
    )
}

fn usage() -> ! {
    eprintln!(
        "usage: bench_report --op OP --workload W [--threads T] [--reps N] [--warmup N] \
         [--min-time-ms MS] [--batch B]\n       bench_report --serve [--threads T]  \
         (jobs on stdin: op=.. workload=.. reps=.. warmup=.. min_time_ms=..)"
    );
    std::process::exit(2)
}

/// The `fma_peak` job: one JSON line with the probe's GFLOP/s.
fn fma_peak_report(job: &Job, setup: &Setup) -> String {
    let threads = setup.threads.as_str();
    let t = threads.parse::<usize>().unwrap_or(1);
    let ms = 100 * job.reps.max(1) as u64;
    match warpgrad_benches::peak::fma_peak_gflops(&job.workload, t, ms) {
        Some(g) => format!(
            "{{\"impl\":\"warpgrad\",\"op\":\"fma_peak\",\"workload\":{},\"threads\":{},\"gflops\":{g:.2}}}",
            json_str(&job.workload),
            json_str(threads),
        ),
        None => format!(
            "{{\"error\":{}}}",
            json_str(&format!("no {} on this CPU (or unknown probe)", job.workload))
        ),
    }
}

fn main() {
    let mut job = Job::default();
    let mut serve = false;
    let mut threads: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--serve" {
            serve = true;
            continue;
        }
        if a == "-h" || a == "--help" {
            usage();
        }
        let Some(key) = a.strip_prefix("--") else {
            usage()
        };
        let Some(value) = args.next() else { usage() };
        let key = key.replace('-', "_");
        if key == "threads" {
            threads = Some(value);
        } else if let Err(e) = job.set(&key, &value) {
            eprintln!("bench_report: {e}");
            usage();
        }
    }
    // Before anything touches rayon: the global pool reads this once.
    if let Some(t) = &threads {
        std::env::set_var("RAYON_NUM_THREADS", t);
    }
    let setup = Setup {
        threads: std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into()),
    };
    // On a pool worker, as the CLI runs: ops start on the calling thread.
    engine::parallel::in_pool(None, move || run(job, serve, &setup));
}

/// Runs one job, or serves jobs from stdin.
fn run(job: Job, serve: bool, setup: &Setup) {
    let mut cache = HashMap::new();
    let stdout = std::io::stdout();
    if !serve {
        if job.op.is_empty() {
            usage();
        }
        let line = report(&job, setup, &mut cache);
        let failed = line.starts_with("{\"error\"");
        println!("{line}");
        std::process::exit(i32::from(failed));
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let out = match Job::parse_line(&line) {
            Ok(j) => report(&j, setup, &mut cache),
            Err(e) => format!("{{\"error\":{}}}", json_str(&e)),
        };
        let mut o = stdout.lock();
        // The driver waits for each line: flush every time.
        if writeln!(o, "{out}").and_then(|_| o.flush()).is_err() {
            break;
        }
    }
}
