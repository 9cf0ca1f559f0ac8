//! One training step (tape, forward, cross-entropy, backward, SGD with
//! momentum) and inference of the ST-CNN for RTS (42×42) and of the PyTorch
//! tutorial's STN (28×28), batch 256, on a fixed batch. Throughput: images.

use criterion::{black_box, criterion_group, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use warpgrad_benches::{ModelKind, Trainer, BATCH};

fn models(c: &mut Criterion) {
    let mut g = c.benchmark_group("model");
    g.throughput(Throughput::Elements(BATCH as u64));
    for kind in ModelKind::ALL {
        let mut t = Trainer::new(kind, BATCH, 11);
        g.bench_function(BenchmarkId::new("train_step", kind.name()), |b| {
            b.iter(|| black_box(t.step()))
        });
        g.bench_function(BenchmarkId::new("inference", kind.name()), |b| {
            b.iter(|| black_box(t.infer()))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = models
}
warpgrad_benches::bench_main!(benches);
