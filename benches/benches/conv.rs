//! Convolution forward and backward at batch 256 for the layers of the
//! ST-CNN for RTS (classifier 1→32 9×9 on 28×28 and 32→64 7×7 on 10×10;
//! localisation 1→20 5×5 on 21×21 and 20→20 5×5 on 8×8) and of the
//! tutorial STN. The backward computes ∂input only where a model needs it
//! (not for a layer fed by the image). Throughput: images.

use criterion::{black_box, criterion_group, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use warpgrad_benches::{ConvCase, BATCH, CONV_LAYERS};

fn conv(c: &mut Criterion) {
    let cases: Vec<ConvCase> = CONV_LAYERS
        .iter()
        .map(|&l| ConvCase::new(l, BATCH, 5))
        .collect();
    let mut g = c.benchmark_group("conv2d");
    g.throughput(Throughput::Elements(BATCH as u64));
    for case in &cases {
        g.bench_with_input(
            BenchmarkId::new("forward", case.layer.name),
            case,
            |b, case| b.iter(|| black_box(case.forward())),
        );
        g.bench_with_input(
            BenchmarkId::new("backward", case.layer.name),
            case,
            |b, case| b.iter(|| black_box(case.backward())),
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = conv
}
warpgrad_benches::bench_main!(benches);
