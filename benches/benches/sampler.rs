//! The sampler (`grid_sample` forward, backward with ∂input and ∂grid,
//! backward with ∂grid only) on the workloads W1–W6, `affine_grid`,
//! the fused affine sampler against the two-step path (forward + backward),
//! and the 16-point TPS grid. Throughput: output elements (sampler) or grid
//! points (grid generators).

use criterion::{black_box, criterion_group, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use warpgrad_benches::{SamplerCase, TpsCase, WORKLOADS};

fn sampler(c: &mut Criterion) {
    let cases: Vec<SamplerCase> = WORKLOADS.iter().map(|&w| SamplerCase::new(w, 1)).collect();

    let mut g = c.benchmark_group("grid_sample_forward");
    for case in &cases {
        g.throughput(Throughput::Elements(case.w.out_elems()));
        g.bench_with_input(BenchmarkId::from_parameter(case.w.name), case, |b, case| {
            b.iter(|| black_box(case.forward()))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("grid_sample_backward_full");
    for case in &cases {
        g.throughput(Throughput::Elements(case.w.out_elems()));
        g.bench_with_input(BenchmarkId::from_parameter(case.w.name), case, |b, case| {
            b.iter(|| black_box(case.backward(true)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("grid_sample_backward_grid_only");
    for case in &cases {
        g.throughput(Throughput::Elements(case.w.out_elems()));
        g.bench_with_input(BenchmarkId::from_parameter(case.w.name), case, |b, case| {
            b.iter(|| black_box(case.backward(false)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("affine_grid");
    for case in &cases {
        g.throughput(Throughput::Elements(case.w.grid_points()));
        g.bench_with_input(BenchmarkId::from_parameter(case.w.name), case, |b, case| {
            b.iter(|| black_box(case.affine_grid()))
        });
    }
    g.finish();

    // Forward + backward (∂θ; the image needs no gradient), fused against
    // affine_grid + grid_sample and their backwards.
    let mut g = c.benchmark_group("affine_sample_fwd_bwd");
    for case in &cases {
        g.throughput(Throughput::Elements(case.w.out_elems()));
        g.bench_with_input(BenchmarkId::new("fused", case.w.name), case, |b, case| {
            b.iter(|| black_box(case.fused_fwd_bwd()))
        });
        g.bench_with_input(
            BenchmarkId::new("two_step", case.w.name),
            case,
            |b, case| b.iter(|| black_box(case.two_step_fwd_bwd())),
        );
    }
    g.finish();

    // The TPS at the MNIST sizes where the paper uses it (W1–W3 grids).
    let mut g = c.benchmark_group("tps_grid");
    for w in &WORKLOADS[..3] {
        let case = TpsCase::new(*w, 3);
        g.throughput(Throughput::Elements(w.grid_points()));
        g.bench_with_input(BenchmarkId::from_parameter(w.name), &case, |b, case| {
            b.iter(|| black_box(case.grid()))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = sampler
}
warpgrad_benches::bench_main!(benches);
