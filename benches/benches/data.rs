//! Generating 10,000 training samples of each distortion (R, RTS, P, E, TC)
//! in batches of 256, as the training loop asks for them; the datasets issue
//! wants each well under a second on 2 cores. Throughput: samples.

use criterion::{black_box, criterion_group, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use warpgrad_benches::{DataCase, DATA_SAMPLES, DATA_VARIANTS};

fn data(c: &mut Criterion) {
    let mut g = c.benchmark_group("distorted_mnist_10k");
    g.throughput(Throughput::Elements(DATA_SAMPLES as u64));
    for v in DATA_VARIANTS {
        let case = DataCase::new(v, 9);
        let mut epoch = 0;
        g.bench_function(BenchmarkId::from_parameter(v.name()), |b| {
            b.iter(|| {
                // A new epoch each time: fresh draws, as in training.
                epoch += 1;
                black_box(case.generate(epoch))
            })
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
    targets = data
}
warpgrad_benches::bench_main!(benches);
