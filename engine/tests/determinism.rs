//! Reductions and products are bit-identical for any thread count.

use engine::rng::seeded;
use engine::Tensor;

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn sum_is_bit_identical_for_1_and_2_threads() {
    // Large enough to be split into many chunks and run in parallel.
    let x = Tensor::normal(&[1 << 20], 0.0, 1.0, &mut seeded(1));
    let a = in_pool(1, || x.sum_all());
    let b = in_pool(2, || x.sum_all());
    let c = in_pool(3, || x.sum_all());
    assert_eq!(a.to_bits(), b.to_bits());
    assert_eq!(a.to_bits(), c.to_bits());
    let g = Tensor::normal(&[64, 128, 128], 0.0, 1.0, &mut seeded(2));
    let r1 = in_pool(1, || g.sum_to_shape(&[128]));
    let r2 = in_pool(2, || g.sum_to_shape(&[128]));
    assert_eq!(r1, r2);
}

#[test]
fn matmul_is_bit_identical_for_1_and_2_threads() {
    let mut rng = seeded(3);
    let a = Tensor::normal(&[500, 300], 0.0, 1.0, &mut rng);
    let b = Tensor::normal(&[300, 400], 0.0, 1.0, &mut rng);
    let c1 = in_pool(1, || a.matmul(&b));
    let c2 = in_pool(2, || a.matmul(&b));
    assert_eq!(c1, c2);
    let ab = Tensor::normal(&[16, 64, 128], 0.0, 1.0, &mut rng);
    let bb = Tensor::normal(&[16, 128, 64], 0.0, 1.0, &mut rng);
    assert_eq!(in_pool(1, || ab.matmul(&bb)), in_pool(2, || ab.matmul(&bb)));
}
