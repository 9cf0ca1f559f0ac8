//! A probe of the machine's FP32 FMA peak: a register-only loop of
//! independent fused multiply-adds (no memory traffic), on 1 or more
//! threads, for the AVX2 and (where present) AVX-512 builds. The conv rows
//! of the benchmark report are quoted as a share of this peak.

use std::time::Instant;

/// Independent accumulators: enough to cover FMA latency × pipes on
/// current x86-64 cores (e.g. Zen 2: 5 cycles × 2 pipes).
const CHAINS: usize = 12;

/// FMA iterations per timed block (per accumulator).
const ITERS: usize = 1 << 20;

/// Vector widths the probe can run: `"avx2"` (8 lanes) or `"avx512"` (16).
pub fn available() -> Vec<&'static str> {
    let mut v = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx2") && has!("fma") {
            v.push("avx2");
        }
        if has!("avx512f") {
            v.push("avx512");
        }
    }
    v
}

/// Peak FP32 GFLOP/s (an FMA counts 2) of `threads` threads each running
/// the `isa` loop for about `millis` ms: the best of the timed blocks, all
/// threads' flops over the wall time. `None` if this CPU lacks `isa`.
pub fn fma_peak_gflops(isa: &str, threads: usize, millis: u64) -> Option<f64> {
    if !available().contains(&isa) {
        return None;
    }
    let lanes = if isa == "avx512" { 16 } else { 8 };
    let flops_per_block = (ITERS * CHAINS * lanes * 2) as f64;
    let mut best = 0.0f64;
    let start = Instant::now();
    while best == 0.0 || start.elapsed().as_millis() < u128::from(millis) {
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads.max(1) {
                s.spawn(|| std::hint::black_box(block(isa)));
            }
        });
        let g = flops_per_block * threads.max(1) as f64 / t0.elapsed().as_secs_f64() / 1e9;
        best = best.max(g);
    }
    Some(best)
}

/// One block of the loop; returns a value so it is not optimised away.
fn block(isa: &str) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if isa == "avx512" {
            // SAFETY: `fma_peak_gflops` checked AVX-512F on this CPU.
            return unsafe { block_avx512() };
        }
        // SAFETY: `fma_peak_gflops` checked AVX2 and FMA on this CPU.
        unsafe { block_avx2() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        0.0
    }
}

/// AVX2: 12 chains of 8-lane FMAs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn block_avx2() -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_set1_ps(0.0); CHAINS];
    let a = _mm256_set1_ps(std::hint::black_box(0.999_999));
    let b = _mm256_set1_ps(std::hint::black_box(1e-7));
    for _ in 0..ITERS {
        for r in acc.iter_mut() {
            *r = _mm256_fmadd_ps(*r, a, b);
        }
    }
    let mut s = _mm256_setzero_ps();
    for r in acc {
        s = _mm256_add_ps(s, r);
    }
    _mm256_cvtss_f32(s)
}

/// AVX-512: 12 chains of 16-lane FMAs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn block_avx512() -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_set1_ps(0.0); CHAINS];
    let a = _mm512_set1_ps(std::hint::black_box(0.999_999));
    let b = _mm512_set1_ps(std::hint::black_box(1e-7));
    for _ in 0..ITERS {
        for r in acc.iter_mut() {
            *r = _mm512_fmadd_ps(*r, a, b);
        }
    }
    let mut s = _mm512_setzero_ps();
    for r in acc {
        s = _mm512_add_ps(s, r);
    }
    _mm512_reduce_add_ps(s)
}
