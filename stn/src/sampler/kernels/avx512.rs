//! The AVX-512 builds of the two gathering kernels: the AVX2 loops 16
//! points at a time (8-byte gathers of tap pairs, as there), with the same
//! operations in the same order; the last points go to the AVX2 loop. Also
//! their several-plane forms (`blend_channels`, `grid_grad_channels`),
//! which read each 16 points' pairs and weights once for all the planes.

use super::{avx2, Corners, BLOCK};
use std::arch::x86_64::*;

/// 16 values from `a[j..j + 16]`.
#[inline]
#[target_feature(enable = "avx512f")]
fn load(a: &[f32], j: usize) -> __m512 {
    let s: &[f32; 16] = a[j..j + 16].try_into().expect("16 lanes");
    // SAFETY: `s` is 16 readable f32s; the load has no alignment demand.
    unsafe { _mm512_loadu_ps(s.as_ptr()) }
}

/// Stores 16 values into `a[j..j + 16]`.
#[inline]
#[target_feature(enable = "avx512f")]
fn store(a: &mut [f32], j: usize, v: __m512) {
    let s: &mut [f32; 16] = (&mut a[j..j + 16]).try_into().expect("16 lanes");
    // SAFETY: `s` is 16 writable f32s; the store has no alignment demand.
    unsafe { _mm512_storeu_ps(s.as_mut_ptr(), v) }
}

/// 16 offsets from `a[j..j + 16]`.
#[inline]
#[target_feature(enable = "avx512f")]
fn load_u32(a: &[u32; BLOCK], j: usize) -> __m512i {
    let s: &[u32; 16] = a[j..j + 16].try_into().expect("16 lanes");
    // SAFETY: `s` is 16 readable u32s; the load has no alignment demand.
    unsafe { _mm512_loadu_si512(s.as_ptr().cast()) }
}

/// a·b + c·d, rounded after each operation (no FMA).
#[inline]
#[target_feature(enable = "avx512f")]
fn add_products(a: __m512, b: __m512, c: __m512, d: __m512) -> __m512 {
    _mm512_add_ps(_mm512_mul_ps(a, b), _mm512_mul_ps(c, d))
}

/// Both taps of one row for 16 points, as `avx2::Rows::taps`: each pair
/// u[base], u[base + 1] read as one 8-byte gather lane, then split. The
/// lane bookkeeping ([`Pairs`]) is the same for every plane of a shape,
/// so several channels share it.
struct Rows {
    /// Pixels per plane (at least 2, below 2³¹).
    len: usize,
    /// len − 1 in every lane.
    last: __m512i,
    /// len − 2 in every lane.
    last_pair: __m512i,
}

/// Where 16 points' two taps of one row sit: the pair starts, and which
/// value of the pair each tap is.
struct Pairs {
    lo: __m256i,
    hi: __m256i,
    /// Lanes whose left tap is the pair's second value (the pair starts
    /// one earlier, as l was the plane's last pixel).
    shifted: __mmask16,
    /// Lanes whose right tap is the pair's second value (r = l + 1;
    /// elsewhere r = l).
    next: __mmask16,
}

impl Rows {
    /// `None` for a plane of one pixel (no pair to read).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn new(len: usize) -> Option<Rows> {
        assert!(len <= 1 << 31, "plane of {len} pixels");
        (len >= 2).then(|| Rows {
            len,
            last: _mm512_set1_epi32((len - 1) as i32),
            last_pair: _mm512_set1_epi32((len - 2) as i32),
        })
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn pairs(&self, off_l: &[u32; BLOCK], off_r: &[u32; BLOCK], j: usize) -> Pairs {
        let (l, r) = (load_u32(off_l, j), load_u32(off_r, j));
        let l = _mm512_min_epu32(l, self.last);
        let base = _mm512_min_epu32(l, self.last_pair);
        Pairs {
            lo: _mm512_castsi512_si256(base),
            hi: _mm512_extracti64x4_epi64::<1>(base),
            shifted: _mm512_cmpgt_epu32_mask(l, base),
            next: _mm512_cmpeq_epi32_mask(r, _mm512_add_epi32(l, _mm512_set1_epi32(1))),
        }
    }

    /// The left and right taps in plane `u` (of `self.len` pixels).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn taps(&self, u: &[f32], at: &Pairs) -> (__m512, __m512) {
        assert_eq!(u.len(), self.len);
        let gather = |half: __m256i| {
            // SAFETY: every lane of `half` is at most len − 2 < 2³¹
            // (non-negative as an i32; `pairs` clamped it), so each
            // 8-byte read covers u[base] and u[base + 1], both inside
            // `u`; gathers have no alignment demand.
            let v = unsafe { _mm512_i32gather_pd::<4>(half, u.as_ptr().cast()) };
            _mm512_castpd_ps(v)
        };
        // Pairs of points 0–7 and 8–15, then split into first / second values.
        let (lo, hi) = (gather(at.lo), gather(at.hi));
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let first = _mm512_permutex2var_ps(lo, even, hi);
        let second = _mm512_permutex2var_ps(lo, odd, hi);
        let vl = _mm512_mask_blend_ps(at.shifted, first, second);
        let vr = _mm512_mask_blend_ps(at.next, vl, second);
        (vl, vr)
    }
}

/// Eq. (3) for 16 points of one plane: the taps blended along x, then y.
#[inline]
#[target_feature(enable = "avx512f")]
fn blend16(rows: &Rows, u: &[f32], top: &Pairs, bottom: &Pairs, w: &[__m512; 4]) -> __m512 {
    let (v00, v01) = rows.taps(u, top);
    let (v10, v11) = rows.taps(u, bottom);
    let r0 = add_products(v00, w[0], v01, w[1]);
    let r1 = add_products(v10, w[0], v11, w[1]);
    add_products(r0, w[2], r1, w[3])
}

/// Eq. (7) for 16 points of one plane: (∂V/∂x, ∂V/∂y) in pixel units,
/// from the weights and derivatives `w` = [wx0, wx1, wy0, wy1, dwx0,
/// dwx1, dwy0, dwy1].
#[inline]
#[target_feature(enable = "avx512f")]
fn grad16(
    rows: &Rows,
    u: &[f32],
    top: &Pairs,
    bottom: &Pairs,
    w: &[__m512; 8],
) -> (__m512, __m512) {
    let (v00, v01) = rows.taps(u, top);
    let (v10, v11) = rows.taps(u, bottom);
    let r0 = add_products(v00, w[0], v01, w[1]);
    let r1 = add_products(v10, w[0], v11, w[1]);
    let rd0 = add_products(v00, w[4], v01, w[5]);
    let rd1 = add_products(v10, w[4], v11, w[5]);
    let dx = add_products(rd0, w[2], rd1, w[3]);
    let dy = add_products(r0, w[6], r1, w[7]);
    (dx, dy)
}

/// The blend weights of points `j..j + 16`: [wx0, wx1, wy0, wy1].
#[inline]
#[target_feature(enable = "avx512f")]
fn weights(c: &Corners, j: usize) -> [__m512; 4] {
    [
        load(&c.wx[0], j),
        load(&c.wx[1], j),
        load(&c.wy[0], j),
        load(&c.wy[1], j),
    ]
}

/// The weights and their derivatives of points `j..j + 16` (see [`grad16`]).
#[inline]
#[target_feature(enable = "avx512f")]
fn weights_and_derivatives(c: &Corners, j: usize) -> [__m512; 8] {
    let [a, b, d, e] = weights(c, j);
    [
        a,
        b,
        d,
        e,
        load(&c.dwx[0], j),
        load(&c.dwx[1], j),
        load(&c.dwy[0], j),
        load(&c.dwy[1], j),
    ]
}

/// `avx2::blend`, 16 points at a time (the tail goes to it).
#[target_feature(enable = "avx512f,avx2")]
pub(super) fn blend(u: &[f32], c: &Corners, out: &mut [f32]) {
    assert_eq!(out.len(), c.len);
    let mut j = 0;
    if let Some(rows) = Rows::new(u.len()) {
        while j + 16 <= out.len() {
            let top = rows.pairs(&c.off[0], &c.off[1], j);
            let bottom = rows.pairs(&c.off[2], &c.off[3], j);
            store(out, j, blend16(&rows, u, &top, &bottom, &weights(c, j)));
            j += 16;
        }
    }
    avx2::blend(u, c, out, j);
}

/// `avx2::grid_grad`, 16 points at a time (the tail goes to it).
#[target_feature(enable = "avx512f,avx2")]
pub(super) fn grid_grad<const ACC: bool>(
    u: &[f32],
    c: &Corners,
    g: &[f32],
    gx: &mut [f32; BLOCK],
    gy: &mut [f32; BLOCK],
) {
    assert_eq!(g.len(), c.len);
    let mut j = 0;
    if let Some(rows) = Rows::new(u.len()) {
        while j + 16 <= g.len() {
            let top = rows.pairs(&c.off[0], &c.off[1], j);
            let bottom = rows.pairs(&c.off[2], &c.off[3], j);
            let w = weights_and_derivatives(c, j);
            let (dx, dy) = grad16(&rows, u, &top, &bottom, &w);
            let gj = load(g, j);
            let (x0, y0) = if ACC {
                (load(gx, j), load(gy, j))
            } else {
                (_mm512_setzero_ps(), _mm512_setzero_ps())
            };
            store(gx, j, _mm512_add_ps(x0, _mm512_mul_ps(gj, dx)));
            store(gy, j, _mm512_add_ps(y0, _mm512_mul_ps(gj, dy)));
            j += 16;
        }
    }
    avx2::grid_grad::<ACC>(u, c, g, gx, gy, j);
}

/// Eq. (7) summed over several channels, channel after channel, for one
/// block: `gx`, `gy` get 0 + g₀·∂V₀/∂x + g₁·∂V₁/∂x + …, exactly what zeroing
/// them and running `grid_grad::<true>` plane after plane gives. Each 16
/// points' pair bookkeeping and weights are loaded once for every channel,
/// and the sums stay in registers (channel after channel over the block
/// reloaded them for each plane). `planes` holds the input planes of
/// `plane` pixels each; `g(ch)` is channel `ch`'s output gradient of the
/// block's points. Planes have at least 2 pixels (pairs are read).
#[target_feature(enable = "avx512f,avx2")]
pub(super) fn grid_grad_channels<'g>(
    planes: &[f32],
    plane: usize,
    c: &Corners,
    g: impl Fn(usize) -> &'g [f32],
    gx: &mut [f32; BLOCK],
    gy: &mut [f32; BLOCK],
) {
    let rows = Rows::new(plane).expect("planes of at least 2 pixels");
    let n = c.len;
    let mut j = 0;
    while j + 16 <= n {
        let top = rows.pairs(&c.off[0], &c.off[1], j);
        let bottom = rows.pairs(&c.off[2], &c.off[3], j);
        let w = weights_and_derivatives(c, j);
        let (mut x, mut y) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        for (ch, u) in planes.chunks_exact(plane).enumerate() {
            let (dx, dy) = grad16(&rows, u, &top, &bottom, &w);
            let gj = load(g(ch), j);
            x = _mm512_add_ps(x, _mm512_mul_ps(gj, dx));
            y = _mm512_add_ps(y, _mm512_mul_ps(gj, dy));
        }
        store(gx, j, x);
        store(gy, j, y);
        j += 16;
    }
    // The last points: plane after plane, as the one-plane kernels do.
    gx[j..n].fill(0.0);
    gy[j..n].fill(0.0);
    for (ch, u) in planes.chunks_exact(plane).enumerate() {
        avx2::grid_grad::<true>(u, c, g(ch), gx, gy, j);
    }
}

/// Eq. (3) for several channels of one block: `out[ch][..c.len]` gets plane
/// `ch` of `planes` (planes of `plane` pixels, one per row of `out`)
/// sampled at the block's points, the values `blend` gives plane by plane,
/// with each 16 points' pair bookkeeping and weights loaded once for all
/// the planes. Planes have at least 2 pixels (pairs are read).
#[target_feature(enable = "avx512f,avx2")]
pub(super) fn blend_channels(planes: &[f32], plane: usize, c: &Corners, out: &mut [[f32; BLOCK]]) {
    let rows = Rows::new(plane).expect("planes of at least 2 pixels");
    assert_eq!(planes.len(), out.len() * plane, "one output row per plane");
    let n = c.len;
    let mut j = 0;
    while j + 16 <= n {
        let top = rows.pairs(&c.off[0], &c.off[1], j);
        let bottom = rows.pairs(&c.off[2], &c.off[3], j);
        let w = weights(c, j);
        for (u, o) in planes.chunks_exact(plane).zip(out.iter_mut()) {
            store(o, j, blend16(&rows, u, &top, &bottom, &w));
        }
        j += 16;
    }
    for (u, o) in planes.chunks_exact(plane).zip(out.iter_mut()) {
        avx2::blend(u, c, &mut o[..n], j);
    }
}
