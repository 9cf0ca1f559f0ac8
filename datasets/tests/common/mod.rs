//! Helpers shared by the data-set tests.
#![allow(dead_code)]

use datasets::{default_data_dir, load_mnist, Mnist, Split};
use std::sync::OnceLock;

/// The first 3,000 MNIST training digits, loaded once per test binary.
pub fn train() -> &'static Mnist {
    static M: OnceLock<Mnist> = OnceLock::new();
    M.get_or_init(|| {
        load_mnist(&default_data_dir(), Split::Train)
            .unwrap()
            .take(3000)
    })
}

/// Runs `f` on a rayon pool of `threads` workers.
pub fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// Ink-weighted centre (x, y) of an S×S image, in pixels, and its total ink.
pub fn centroid(img: &[f32], side: usize) -> (f32, f32, f32) {
    let (mut m, mut x, mut y) = (0.0f32, 0.0f32, 0.0f32);
    for (k, &v) in img.iter().enumerate() {
        m += v;
        x += v * (k % side) as f32;
        y += v * (k / side) as f32;
    }
    (x / m, y / m, m)
}
