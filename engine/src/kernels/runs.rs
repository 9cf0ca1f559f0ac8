//! Adding short runs of one slice into another (the convolution's col2im:
//! each row of ∂col added back into the ∂x plane it was copied from). Each
//! value gets one plain add and runs are applied in order, so every build
//! gives the same bits; the AVX2 build adds 8 values at a time and the
//! run's tail under a mask instead of one value at a time.

use super::gemm6x16::Isa;

/// One run of [`add_runs`]: `dst[at..at + len] += src[from..from + len]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// Start in the source.
    pub from: usize,
    /// Start in the destination.
    pub at: usize,
    /// Values.
    pub len: usize,
}

/// A list of [`Run`]s with the extents they reach (computed once), so that
/// [`add_runs`] bounds a whole list, applied to many slices, in two compares.
#[derive(Clone, Debug, Default)]
pub struct Runs {
    runs: Vec<Run>,
    /// Largest `from + len`.
    src_end: usize,
    /// Largest `at + len`.
    dst_end: usize,
}

impl Runs {
    /// Wraps `runs` (applied in this order).
    pub fn new(runs: Vec<Run>) -> Runs {
        let src_end = runs.iter().map(|r| r.from + r.len).max().unwrap_or(0);
        let dst_end = runs.iter().map(|r| r.at + r.len).max().unwrap_or(0);
        Runs {
            runs,
            src_end,
            dst_end,
        }
    }
}

/// Applies `runs` in order: `dst[r.at + i] += src[r.from + i]` for `i < r.len`.
///
/// # Panics
/// If a run reads or writes outside its slice.
pub fn add_runs(isa: Isa, dst: &mut [f32], src: &[f32], runs: &Runs) {
    assert!(
        runs.src_end <= src.len() && runs.dst_end <= dst.len(),
        "add_runs: runs reach {} of the source and {} of the destination, outside a source of {} or a destination of {}",
        runs.src_end,
        runs.dst_end,
        src.len(),
        dst.len()
    );
    let runs = &runs.runs;
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 was detected (`Isa` above portable comes from
        // `Isa::available`); every run lies inside both slices (asserted).
        Isa::Avx2 | Isa::Avx512 => unsafe { add_runs_avx2(dst, src, runs) },
        _ => {
            for r in runs {
                let s = &src[r.from..][..r.len];
                for (d, v) in dst[r.at..][..r.len].iter_mut().zip(s) {
                    *d += v;
                }
            }
        }
    }
}

/// [`add_runs`] with AVX2: 8 values a step, the last 1–7 under a mask.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_runs_avx2(dst: &mut [f32], src: &[f32], runs: &[Run]) {
    use std::arch::x86_64::*;
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for r in runs {
        let s = src.as_ptr().add(r.from);
        let d = dst.as_mut_ptr().add(r.at);
        let mut i = 0;
        while i + 8 <= r.len {
            let v = _mm256_add_ps(_mm256_loadu_ps(d.add(i)), _mm256_loadu_ps(s.add(i)));
            _mm256_storeu_ps(d.add(i), v);
            i += 8;
        }
        if i < r.len {
            // Lanes below the remaining count; the others are neither read
            // nor written.
            let m = _mm256_cmpgt_epi32(_mm256_set1_epi32((r.len - i) as i32), lanes);
            let v = _mm256_add_ps(
                _mm256_maskload_ps(d.add(i), m),
                _mm256_maskload_ps(s.add(i), m),
            );
            _mm256_maskstore_ps(d.add(i), m, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_build_adds_overlapping_runs_in_order() {
        let src: Vec<f32> = (0..64).map(|i| 1.0 + i as f32 * 0.37).collect();
        // Overlapping destinations, lengths 0..=20 (tails of every size),
        // a run ending at the last value of both slices.
        let mut runs = vec![Run {
            from: 60,
            at: 36,
            len: 4,
        }];
        for len in 0..=20 {
            runs.push(Run {
                from: (len * 7) % 40,
                at: (len * 3) % 20,
                len,
            });
        }
        let mut want = vec![0.5f32; 40];
        for r in &runs {
            for i in 0..r.len {
                want[r.at + i] += src[r.from + i];
            }
        }
        for isa in Isa::available() {
            let mut dst = vec![0.5f32; 40];
            add_runs(isa, &mut dst, &src, &Runs::new(runs.clone()));
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&dst), bits(&want), "{isa:?}");
        }
    }

    #[test]
    #[should_panic(expected = "outside a source")]
    fn a_run_past_the_source_is_refused() {
        let mut dst = [0.0f32; 16];
        add_runs(
            Isa::detect(),
            &mut dst,
            &[1.0; 8],
            &Runs::new(vec![Run {
                from: 4,
                at: 0,
                len: 5,
            }]),
        );
    }
}
