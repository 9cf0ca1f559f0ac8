//! The convolution's register-blocked FMA micro-kernel, in every build.
//!
//! One call updates a tile of [`MR`]×[`NR`] values `c[m][j]` (row `m` at
//! `c[m·ldc ..]`) by a chain of fused multiply-adds, in order `t = 0, 1, …`:
//!
//! `c[m][j] ← fma(a[a_at[m] + a_offs[t]], b[t·b_step + j], c[m][j])`
//!
//! from zero, from the tile's own values (a chain resumed) or from one row
//! of values given for every row (a bias; [`Start`]), so the `a` side is a
//! broadcast read at any offsets (straight from the
//! input planes, with no im2col matrix) and the `b` side [`NR`] contiguous
//! values a fixed stride apart (rows of the packed weights or output
//! gradient). A stride rather than a table saves a load per step, in a
//! loop that is nearly load-bound (12 FMAs and 9 loads a step in the AVX2
//! build). Each value is one chain of single-rounding FMAs in `t` order,
//! whatever the build: the AVX-512 build (`vfmadd` on 16 lanes, one vector
//! a row), the AVX2 one (8 lanes, two vectors a row) and the portable one
//! (`f32::mul_add`) give the same bits (tested in `layers::conv`).
//!
//! Builds are chosen at run time ([`Isa`]) and capped by the `WARPGRAD_SIMD`
//! environment variable as the sampler's are.

/// Rows of a tile (broadcast side).
pub const MR: usize = 6;
/// Columns of a tile (vector side): two AVX2 vectors, one AVX-512 vector.
pub const NR: usize = 16;
/// Columns of a wide tile ([`run_wide`]): two tiles side by side.
pub const NR2: usize = 2 * NR;

/// Which build of the micro-kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Plain Rust with `f32::mul_add`.
    Portable,
    /// AVX2 + FMA: 12 accumulators of 8 lanes.
    Avx2,
    /// AVX-512F: a tile row is one 16-lane vector (6 accumulators; 12 on a
    /// wide tile, [`run_wide`], whose step issues 12 FMAs and 8 loads for
    /// twice the AVX2 build's work).
    Avx512,
}

impl Isa {
    /// The build that runs: the best this CPU supports, capped by
    /// `WARPGRAD_SIMD` (`portable`, `avx2`, `avx512`) when set. Every build
    /// gives the same bits. Read once per process.
    pub fn detect() -> Isa {
        static CHOSEN: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *CHOSEN.get_or_init(|| {
            let best = Isa::available().pop().unwrap_or(Isa::Portable);
            let cap = match std::env::var("WARPGRAD_SIMD").as_deref() {
                Ok("portable") => Isa::Portable,
                Ok("avx2") => Isa::Avx2,
                _ => Isa::Avx512,
            };
            best.min(cap)
        })
    }

    /// Every build this CPU runs, from the portable one up.
    pub fn available() -> Vec<Isa> {
        let mut all = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") {
                all.push(Isa::Avx2);
                if has!("avx512f") {
                    all.push(Isa::Avx512);
                }
            }
        }
        all
    }

    /// The build's name in reports: `"avx512"`, `"avx2"` or `"portable"`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }
}

/// A non-decreasing table of offsets (checked once), so a kernel call
/// bounds its reads by the last entry.
#[derive(Debug, Clone, Default)]
pub struct Offsets(Vec<usize>);

impl Offsets {
    /// Wraps `v`.
    ///
    /// # Panics
    /// If `v` decreases somewhere.
    pub fn new(v: Vec<usize>) -> Offsets {
        assert!(
            v.windows(2).all(|w| w[0] <= w[1]),
            "offsets must not decrease"
        );
        Offsets(v)
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `0, step, 2·step, …` (`n` entries).
    pub fn steps(n: usize, step: usize) -> Offsets {
        Offsets((0..n).map(|t| t * step).collect())
    }

    /// The largest entry (0 if none).
    fn max(&self) -> usize {
        self.0.last().copied().unwrap_or(0)
    }
}

/// The operands of one kernel call (see the module doc).
pub struct Panel<'a> {
    /// Broadcast side.
    pub a: &'a [f32],
    /// Start of each tile row's reads in `a`.
    pub a_at: [usize; MR],
    /// Offset added at step `t`; its length is the chain length.
    pub a_offs: &'a Offsets,
    /// Vector side: step `t` reads `b[t·b_step ..][..NR]`.
    pub b: &'a [f32],
    /// Distance in `b` between the starts of consecutive steps.
    pub b_step: usize,
}

/// Where a call's chains start.
#[derive(Clone, Copy, Debug)]
pub enum Start<'a> {
    /// From zero.
    Zero,
    /// From the tile's own values (a chain resumed).
    Tile,
    /// Every row from the same values (a bias), `row[j]` for column `j`.
    Row(&'a [f32]),
}

impl Start<'_> {
    /// Where the starting values are for the SIMD builds: the first row's
    /// address and the distance between rows (the tile `c` with its row
    /// stride `ldc`, or a [`Start::Row`] repeated, stride 0); `None` from zero.
    fn rows(self, c: *const f32, ldc: usize) -> Option<(*const f32, usize)> {
        match self {
            Start::Zero => None,
            Start::Tile => Some((c, ldc)),
            Start::Row(r) => Some((r.as_ptr(), 0)),
        }
    }
}

/// Panics unless every read of `p` and a tile `nr` columns wide at `c`
/// (row stride `ldc`) lie inside their slices: the bounds the unsafe
/// builds rely on.
fn check_bounds(p: &Panel, c: &[f32], ldc: usize, nr: usize, start: Start) {
    let n = p.a_offs.len();
    let amax = p.a_at.iter().max().copied().unwrap_or(0) + p.a_offs.max();
    assert!(
        n == 0 || amax < p.a.len(),
        "conv kernel: a read out of range"
    );
    assert!(
        n == 0 || (n - 1) * p.b_step + nr <= p.b.len(),
        "conv kernel: b read out of range"
    );
    assert!(
        (MR - 1) * ldc + nr <= c.len(),
        "conv kernel: tile out of range"
    );
    if let Start::Row(row) = start {
        assert!(nr <= row.len(), "conv kernel: start row out of range");
    }
}

/// Runs the chain of `p` on the tile `c` (row stride `ldc`), from `start`.
///
/// # Panics
/// If a read or the tile falls outside its slice.
#[inline]
pub fn run(isa: Isa, p: &Panel, c: &mut [f32], ldc: usize, start: Start) {
    check_bounds(p, c, ldc, NR, start);
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2` only comes from `Isa::available` after AVX2 and
        // FMA were detected; the asserts above bound every read and write.
        Isa::Avx2 => unsafe { run_avx2(p, c, ldc, start) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512` only comes from `Isa::available` after
        // AVX-512F was detected; the asserts above bound every access.
        Isa::Avx512 => unsafe { run_avx512(p, c, ldc, start) },
        _ => run_portable(p, c, ldc, start),
    }
}

/// [`run`] on a wide tile of [`MR`]×[`NR2`] values: the tile at `c` and the
/// one [`NR`] columns to its right, whose `b` side starts [`NR`] values
/// further on. The same chains, hence the same bits, as two [`run`] calls;
/// the AVX-512 build runs them as one (12 accumulators, enough independent
/// chains to cover the FMA latency on two FMA ports), the others as two.
///
/// # Panics
/// If a read or the tile falls outside its slice.
#[inline]
pub fn run_wide(isa: Isa, p: &Panel, c: &mut [f32], ldc: usize, start: Start) {
    check_bounds(p, c, ldc, NR2, start);
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512` only comes from `Isa::available` after
        // AVX-512F was detected; the asserts above bound every access.
        Isa::Avx512 => unsafe { run_avx512_wide(p, c, ldc, start) },
        _ => {
            run(isa, p, c, ldc, start);
            let right = Panel {
                b: &p.b[NR..],
                ..*p
            };
            let rstart = match start {
                Start::Row(row) => Start::Row(&row[NR..]),
                other => other,
            };
            run(isa, &right, &mut c[NR..], ldc, rstart);
        }
    }
}

/// The width of the next tile at column `j0` of `cols` (a multiple of
/// [`NR`]): [`NR2`] where a wide tile fits, else [`NR`].
#[inline]
pub fn tile_width(j0: usize, cols: usize) -> usize {
    if j0 + NR2 <= cols {
        NR2
    } else {
        NR
    }
}

/// The portable build: the same chains with `f32::mul_add`.
fn run_portable(p: &Panel, c: &mut [f32], ldc: usize, start: Start) {
    let mut acc = [[0.0f32; NR]; MR];
    for (m, row) in acc.iter_mut().enumerate() {
        match start {
            Start::Zero => {}
            Start::Tile => row.copy_from_slice(&c[m * ldc..][..NR]),
            Start::Row(r) => row.copy_from_slice(&r[..NR]),
        }
    }
    for (t, &off) in p.a_offs.0.iter().enumerate() {
        let bt = &p.b[t * p.b_step..][..NR];
        for (row, &at) in acc.iter_mut().zip(&p.a_at) {
            let av = p.a[at + off];
            for (r, &bv) in row.iter_mut().zip(bt) {
                *r = av.mul_add(bv, *r);
            }
        }
    }
    for (m, row) in acc.iter().enumerate() {
        c[m * ldc..][..NR].copy_from_slice(row);
    }
}

/// The AVX2 build: 6 rows × 2 vectors of accumulators.
///
/// # Safety
/// The CPU has AVX2 and FMA; `run`'s asserts hold.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(p: &Panel, c: &mut [f32], ldc: usize, start: Start) {
    use std::arch::x86_64::*;
    let cp = c.as_mut_ptr();
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    if let Some((sp, ld)) = start.rows(cp, ldc) {
        for (m, row) in acc.iter_mut().enumerate() {
            // SAFETY: row m's NR values lie in `c`, or in a start row
            // (asserted by `run`).
            unsafe {
                row[0] = _mm256_loadu_ps(sp.add(m * ld));
                row[1] = _mm256_loadu_ps(sp.add(m * ld + 8));
            }
        }
    }
    let (a, b) = (p.a.as_ptr(), p.b.as_ptr());
    let pa: [*const f32; MR] = p.a_at.map(|i| a.wrapping_add(i));
    // Stepped with wrapping_add: after the last step it may point past `b`,
    // unread.
    let mut bp = b;
    for &off in &p.a_offs.0 {
        // SAFETY: at step t, bp = b + t·b_step and t·b_step + NR ≤
        // (n − 1)·b_step + NR ≤ b.len(); a_at[m] + off ≤ a_at[m] +
        // a_offs.max() < a.len() (asserted by `run`).
        unsafe {
            let b0 = _mm256_loadu_ps(bp);
            let b1 = _mm256_loadu_ps(bp.add(8));
            for (row, &ap) in acc.iter_mut().zip(&pa) {
                let av = _mm256_broadcast_ss(&*ap.add(off));
                row[0] = _mm256_fmadd_ps(av, b0, row[0]);
                row[1] = _mm256_fmadd_ps(av, b1, row[1]);
            }
        }
        bp = bp.wrapping_add(p.b_step);
    }
    for (m, row) in acc.iter().enumerate() {
        // SAFETY: as for the loads.
        unsafe {
            _mm256_storeu_ps(cp.add(m * ldc), row[0]);
            _mm256_storeu_ps(cp.add(m * ldc + 8), row[1]);
        }
    }
}

/// The AVX-512 build: 6 rows × 1 vector of accumulators, the same chains
/// as [`run_avx2`] on twice the lanes.
///
/// # Safety
/// The CPU has AVX-512F; `run`'s asserts hold.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512(p: &Panel, c: &mut [f32], ldc: usize, start: Start) {
    use std::arch::x86_64::*;
    let cp = c.as_mut_ptr();
    let mut acc = [_mm512_setzero_ps(); MR];
    if let Some((sp, ld)) = start.rows(cp, ldc) {
        for (m, row) in acc.iter_mut().enumerate() {
            // SAFETY: row m's NR values lie in `c`, or in a start row
            // (asserted by `run`).
            *row = unsafe { _mm512_loadu_ps(sp.add(m * ld)) };
        }
    }
    let a = p.a.as_ptr();
    let pa: [*const f32; MR] = p.a_at.map(|i| a.wrapping_add(i));
    // Stepped with wrapping_add: after the last step it may point past `b`,
    // unread.
    let mut bp = p.b.as_ptr();
    for &off in &p.a_offs.0 {
        // SAFETY: as in `run_avx2`: every read lies in `a` or `b`.
        unsafe {
            let bv = _mm512_loadu_ps(bp);
            for (row, &ap) in acc.iter_mut().zip(&pa) {
                *row = _mm512_fmadd_ps(_mm512_set1_ps(*ap.add(off)), bv, *row);
            }
        }
        bp = bp.wrapping_add(p.b_step);
    }
    for (m, row) in acc.iter().enumerate() {
        // SAFETY: as for the loads.
        unsafe { _mm512_storeu_ps(cp.add(m * ldc), *row) };
    }
}

/// The AVX-512 build of [`run_wide`]: 6 rows × 2 vectors of accumulators.
///
/// # Safety
/// The CPU has AVX-512F; `run_wide`'s asserts hold.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512_wide(p: &Panel, c: &mut [f32], ldc: usize, start: Start) {
    use std::arch::x86_64::*;
    let cp = c.as_mut_ptr();
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    if let Some((sp, ld)) = start.rows(cp, ldc) {
        for (m, row) in acc.iter_mut().enumerate() {
            // SAFETY: row m's NR2 values lie in `c`, or in a start row
            // (asserted by `run_wide`).
            unsafe {
                row[0] = _mm512_loadu_ps(sp.add(m * ld));
                row[1] = _mm512_loadu_ps(sp.add(m * ld + NR));
            }
        }
    }
    let a = p.a.as_ptr();
    let pa: [*const f32; MR] = p.a_at.map(|i| a.wrapping_add(i));
    // Stepped with wrapping_add: after the last step it may point past `b`,
    // unread.
    let mut bp = p.b.as_ptr();
    for &off in &p.a_offs.0 {
        // SAFETY: at step t, bp = b + t·b_step and t·b_step + NR2 ≤ b.len();
        // a_at[m] + off < a.len() (asserted by `run_wide`).
        unsafe {
            let b0 = _mm512_loadu_ps(bp);
            let b1 = _mm512_loadu_ps(bp.add(NR));
            for (row, &ap) in acc.iter_mut().zip(&pa) {
                let av = _mm512_set1_ps(*ap.add(off));
                row[0] = _mm512_fmadd_ps(av, b0, row[0]);
                row[1] = _mm512_fmadd_ps(av, b1, row[1]);
            }
        }
        bp = bp.wrapping_add(p.b_step);
    }
    for (m, row) in acc.iter().enumerate() {
        // SAFETY: as for the loads.
        unsafe {
            _mm512_storeu_ps(cp.add(m * ldc), row[0]);
            _mm512_storeu_ps(cp.add(m * ldc + NR), row[1]);
        }
    }
}
