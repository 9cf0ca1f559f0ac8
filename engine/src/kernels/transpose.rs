//! Matrix transposition for the convolution's backward pass (the Gᵀ blocks
//! that ∂W reads as its vector side): 8×8 blocks in registers on AVX2, one
//! value at a time elsewhere. Values are only moved, so every build gives
//! the same bits.

use super::gemm6x16::Isa;

/// Writes `dst[c·ld_dst + r] = src[r·ld_src + c]` for `r < rows`, `c < cols`.
///
/// # Panics
/// If a read or a write falls outside its slice.
pub fn transpose(
    isa: Isa,
    src: &[f32],
    ld_src: usize,
    rows: usize,
    cols: usize,
    dst: &mut [f32],
    ld_dst: usize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        cols <= ld_src && (rows - 1) * ld_src + cols <= src.len(),
        "transpose: {rows}×{cols} (row stride {ld_src}) does not fit a source of {}",
        src.len()
    );
    assert!(
        rows <= ld_dst && (cols - 1) * ld_dst + rows <= dst.len(),
        "transpose: {cols}×{rows} (row stride {ld_dst}) does not fit a destination of {}",
        dst.len()
    );
    let (r8, c8) = (rows / 8 * 8, cols / 8 * 8);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 => {
            for r in (0..r8).step_by(8) {
                for c in (0..c8).step_by(8) {
                    // SAFETY: AVX2 was detected (`Isa` above portable comes
                    // from `Isa::available`); rows r..r+8 and columns c..c+8
                    // lie inside both slices by the asserts above.
                    unsafe {
                        block8_avx2(
                            src.as_ptr().add(r * ld_src + c),
                            ld_src,
                            dst.as_mut_ptr().add(c * ld_dst + r),
                            ld_dst,
                        )
                    }
                }
            }
        }
        _ => scalar(src, ld_src, 0..r8, 0..c8, dst, ld_dst),
    }
    // The edges: the last columns of the full rows, then the last rows.
    scalar(src, ld_src, 0..r8, c8..cols, dst, ld_dst);
    scalar(src, ld_src, r8..rows, 0..cols, dst, ld_dst);
}

/// The rows × columns ranges of [`transpose`], one value at a time.
fn scalar(
    src: &[f32],
    ld_src: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    dst: &mut [f32],
    ld_dst: usize,
) {
    for r in rows {
        for c in cols.clone() {
            dst[c * ld_dst + r] = src[r * ld_src + c];
        }
    }
}

/// One 8×8 block: eight rows loaded, interleaved in three rounds of
/// shuffles (pairs, quadruples, 128-bit halves), stored as eight columns.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn block8_avx2(s: *const f32, lds: usize, d: *mut f32, ldd: usize) {
    use std::arch::x86_64::*;
    let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(s.add(i * lds)));
    // t[2i] = (row 2i, row 2i+1) interleaved low, t[2i+1] high.
    let mut t = [_mm256_setzero_ps(); 8];
    for i in 0..4 {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u[j] (rows 0–3) and u[4 + j] (rows 4–7) hold columns j and j + 4.
    let mut u = [_mm256_setzero_ps(); 8];
    for h in 0..2 {
        let (a, b, c, e) = (t[4 * h], t[4 * h + 1], t[4 * h + 2], t[4 * h + 3]);
        u[4 * h] = _mm256_shuffle_ps::<0x44>(a, c);
        u[4 * h + 1] = _mm256_shuffle_ps::<0xEE>(a, c);
        u[4 * h + 2] = _mm256_shuffle_ps::<0x44>(b, e);
        u[4 * h + 3] = _mm256_shuffle_ps::<0xEE>(b, e);
    }
    for j in 0..4 {
        _mm256_storeu_ps(
            d.add(j * ldd),
            _mm256_permute2f128_ps::<0x20>(u[j], u[4 + j]),
        );
        _mm256_storeu_ps(
            d.add((j + 4) * ldd),
            _mm256_permute2f128_ps::<0x31>(u[j], u[4 + j]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_build_transposes_every_shape() {
        for (rows, cols, ld_src, ld_dst) in [
            (8, 8, 8, 8),
            (32, 1156, 1156, 32),
            (20, 17, 19, 21),
            (7, 5, 5, 7),
            (1, 9, 9, 3),
            (16, 3, 40, 16),
        ] {
            let src: Vec<f32> = (0..(rows - 1) * ld_src + cols).map(|i| i as f32).collect();
            for isa in Isa::available() {
                let mut dst = vec![-1.0f32; (cols - 1) * ld_dst + rows];
                transpose(isa, &src, ld_src, rows, cols, &mut dst, ld_dst);
                for (i, &v) in dst.iter().enumerate() {
                    let (c, r) = (i / ld_dst, i % ld_dst);
                    let want = if r < rows { src[r * ld_src + c] } else { -1.0 };
                    assert_eq!(v, want, "{isa:?} {rows}×{cols}: dst[{c}][{r}]");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "does not fit a destination")]
    fn a_short_destination_is_refused() {
        let src = [0.0f32; 64];
        let mut dst = [0.0f32; 63];
        transpose(Isa::detect(), &src, 8, 8, 8, &mut dst, 8);
    }
}
