//! The AVX2 builds of the two gathering kernels: the portable loops 8 points
//! at a time, with the same operations in the same order.

use super::{blend_from, grid_grad_from, Corners, BLOCK};
use std::arch::x86_64::*;

/// 8 values from `a[j..j + 8]`.
#[inline]
#[target_feature(enable = "avx2")]
fn load(a: &[f32], j: usize) -> __m256 {
    let s: &[f32; 8] = a[j..j + 8].try_into().expect("8 lanes");
    // SAFETY: `s` is 8 readable f32s; the load has no alignment demand.
    unsafe { _mm256_loadu_ps(s.as_ptr()) }
}

/// Stores 8 values into `a[j..j + 8]`.
#[inline]
#[target_feature(enable = "avx2")]
fn store(a: &mut [f32], j: usize, v: __m256) {
    let s: &mut [f32; 8] = (&mut a[j..j + 8]).try_into().expect("8 lanes");
    // SAFETY: `s` is 8 writable f32s; the store has no alignment demand.
    unsafe { _mm256_storeu_ps(s.as_mut_ptr(), v) }
}

/// The plane values at the offsets `off[j..j + 8]`, each first clamped to
/// `last` = u.len() − 1.
#[inline]
#[target_feature(enable = "avx2")]
fn gather(u: &[f32], off: &[u32; BLOCK], j: usize, last: __m256i) -> __m256 {
    let idx = _mm256_min_epu32(load_u32(off, j), last);
    // SAFETY: every lane of `idx` is at most `last` = u.len() − 1, which
    // the callers check is below 2³¹, so it is also non-negative as the
    // i32 the gather reads it as: all 8 reads u[idx] are inside `u`.
    unsafe { _mm256_i32gather_ps::<4>(u.as_ptr(), idx) }
}

/// Reads both taps of one row, `u[off_l[j..j + 8]]` and `u[off_r[j..j + 8]]`,
/// where `off_r` is `off_l` or `off_l + 1` (the right neighbour, or the left
/// one again when clamped): each pair comes from one 8-byte gather lane,
/// half the gathered elements of two 4-byte gathers. The selects below
/// return exactly those two values, so results are unchanged.
struct Rows<'a> {
    u: &'a [f32],
    /// u.len() − 1 in every lane.
    last: __m256i,
    /// u.len() − 2 in every lane: the last offset a pair may start at.
    last_pair: __m256i,
}

impl<'a> Rows<'a> {
    #[inline]
    #[target_feature(enable = "avx2")]
    fn new(u: &'a [f32]) -> Rows<'a> {
        let last = last_index(u);
        let last_pair = _mm256_set1_epi32(u.len().max(2) as i32 - 2);
        Rows { u, last, last_pair }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn taps(&self, off_l: &[u32; BLOCK], off_r: &[u32; BLOCK], j: usize) -> (__m256, __m256) {
        if self.u.len() < 2 {
            return (
                gather(self.u, off_l, j, self.last),
                gather(self.u, off_r, j, self.last),
            );
        }
        let (l, r) = (load_u32(off_l, j), load_u32(off_r, j));
        let l = _mm256_min_epu32(l, self.last);
        let base = _mm256_min_epu32(l, self.last_pair);
        let at = |half: __m128i| {
            // SAFETY: every lane of `base` is at most u.len() − 2 < 2³¹
            // (non-negative as an i32), so each 8-byte read covers
            // u[base] and u[base + 1], both inside `u`; gathers have no
            // alignment demand.
            let v = unsafe { _mm256_i32gather_pd::<4>(self.u.as_ptr().cast::<f64>(), half) };
            _mm256_castpd_ps(v)
        };
        // Pairs of points 0–3 and 4–7, then split into left / right values.
        let lo = at(_mm256_castsi256_si128(base));
        let hi = at(_mm256_extracti128_si256::<1>(base));
        let first = _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(
            _mm256_shuffle_ps::<0x88>(lo, hi),
        )));
        let second = _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(
            _mm256_shuffle_ps::<0xDD>(lo, hi),
        )));
        // u[l]: the pair's first value, or its second where l was the
        // plane's last pixel (the pair then starts one earlier).
        let shifted = _mm256_castsi256_ps(_mm256_cmpgt_epi32(l, base));
        let vl = _mm256_blendv_ps(first, second, shifted);
        // u[r]: the pair's second value where r = l + 1, else r = l.
        let next = _mm256_cmpeq_epi32(r, _mm256_add_epi32(l, _mm256_set1_epi32(1)));
        let vr = _mm256_blendv_ps(vl, second, _mm256_castsi256_ps(next));
        (vl, vr)
    }
}

/// 8 offsets from `a[j..j + 8]`.
#[inline]
#[target_feature(enable = "avx2")]
fn load_u32(a: &[u32; BLOCK], j: usize) -> __m256i {
    let s: &[u32; 8] = a[j..j + 8].try_into().expect("8 lanes");
    // SAFETY: `s` is 8 readable u32s; the load has no alignment demand.
    unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
}

/// `u.len() − 1` in every lane, after checking the gather can index it.
#[inline]
#[target_feature(enable = "avx2")]
fn last_index(u: &[f32]) -> __m256i {
    assert!(
        !u.is_empty() && u.len() <= 1 << 31,
        "plane of {} pixels",
        u.len()
    );
    _mm256_set1_epi32((u.len() - 1) as i32)
}

/// a·b + c·d, rounded after each operation (no FMA, like the portable loop).
#[inline]
#[target_feature(enable = "avx2")]
fn add_products(a: __m256, b: __m256, c: __m256, d: __m256) -> __m256 {
    _mm256_add_ps(_mm256_mul_ps(a, b), _mm256_mul_ps(c, d))
}

/// [`super::blend_from`], 8 points at a time from point `from` on.
#[target_feature(enable = "avx2")]
pub(super) fn blend(u: &[f32], c: &Corners, out: &mut [f32], from: usize) {
    assert_eq!(out.len(), c.len);
    let rows = Rows::new(u);
    let mut j = from;
    while j + 8 <= out.len() {
        let (v00, v01) = rows.taps(&c.off[0], &c.off[1], j);
        let (v10, v11) = rows.taps(&c.off[2], &c.off[3], j);
        let (wx0, wx1) = (load(&c.wx[0], j), load(&c.wx[1], j));
        let r0 = add_products(v00, wx0, v01, wx1);
        let r1 = add_products(v10, wx0, v11, wx1);
        let res = add_products(r0, load(&c.wy[0], j), r1, load(&c.wy[1], j));
        store(out, j, res);
        j += 8;
    }
    blend_from(u, c, out, j);
}

/// [`super::grid_grad_from`], 8 points at a time from point `from` on.
#[target_feature(enable = "avx2")]
pub(super) fn grid_grad<const ACC: bool>(
    u: &[f32],
    c: &Corners,
    g: &[f32],
    gx: &mut [f32; BLOCK],
    gy: &mut [f32; BLOCK],
    from: usize,
) {
    assert_eq!(g.len(), c.len);
    let rows = Rows::new(u);
    let mut j = from;
    while j + 8 <= g.len() {
        let (v00, v01) = rows.taps(&c.off[0], &c.off[1], j);
        let (v10, v11) = rows.taps(&c.off[2], &c.off[3], j);
        let (wx0, wx1) = (load(&c.wx[0], j), load(&c.wx[1], j));
        let (dx0, dx1) = (load(&c.dwx[0], j), load(&c.dwx[1], j));
        let r0 = add_products(v00, wx0, v01, wx1);
        let r1 = add_products(v10, wx0, v11, wx1);
        let rd0 = add_products(v00, dx0, v01, dx1);
        let rd1 = add_products(v10, dx0, v11, dx1);
        let dx = add_products(rd0, load(&c.wy[0], j), rd1, load(&c.wy[1], j));
        let dy = add_products(r0, load(&c.dwy[0], j), r1, load(&c.dwy[1], j));
        let gj = load(g, j);
        let (x0, y0) = if ACC {
            (load(gx, j), load(gy, j))
        } else {
            (_mm256_setzero_ps(), _mm256_setzero_ps())
        };
        store(gx, j, _mm256_add_ps(x0, _mm256_mul_ps(gj, dx)));
        store(gy, j, _mm256_add_ps(y0, _mm256_mul_ps(gj, dy)));
        j += 8;
    }
    grid_grad_from::<ACC>(u, c, g, gx, gy, j);
}
