//! The bilinear sampler's kernels: what `grid_sample` runs to compute the
//! numbers of the page (`sampler/bilinear.rs`) fast, bit for bit the same
//! (tested below against the page). Blocks of points ([`Corners`], built
//! with the page's [`axis_padded`](crate::sampler::bilinear::axis_padded)),
//! for every channel of one batch item: the forward gather-and-blend (eqs. 3
//! and 5), the scatter into ∂U (eq. 6) and the grid gradient (eq. 7). The
//! grid-based sampler ([`tasks`]) and the fused transform + sampler
//! ([`fused`]) both run these, so there is one bilinear implementation.
//!
//! Three builds, chosen at run time ([`Isa`]): portable (SSE2 on x86-64),
//! AVX2 (corners 8 lanes wide, 8 points per gather) and AVX-512 (16 lanes).
//! All perform the same IEEE operations in the same order (no FMA), so they
//! give the same bits (tested below).
//!
//! Several channels are sampled channel after channel over up to
//! [`SUPER`] blocks whose corners were computed first, so the gathers stay
//! in one plane; the order of every sum is the one-channel order (each ∂U
//! plane in point order, ∂grid adding the channels in order). The AVX-512
//! build runs the forward and ∂grid of up to 8 channels the other way
//! round within a block: each 16 points' pair bookkeeping and weights are
//! loaded once for all those planes, and ∂grid's channel sum stays in
//! registers (interleaved A/B on W5: forward 0.91×, ∂grid 0.85–0.87× of
//! the time). The scatter into ∂U stays plane after plane. The
//! several-channel loops prefetch what they read next when the hardware
//! would not: the next small plane, and each block's ∂output in every
//! channel (W4 at 1 thread: forward 0.64×, ∂grid 0.69× of the time).

pub(crate) mod blocks;
pub(crate) mod fused;
pub(crate) mod tasks;

use crate::sampler::SampleOptions;
use blocks::{Corners, Scratch, BLOCK, SUPER};
use engine::parallel::Filler;

/// Which build of the kernels runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Isa {
    /// Plain Rust (SSE2 on x86-64).
    Portable,
    /// AVX2: 8-lane corners and hardware gathers.
    Avx2,
    /// AVX-512 (F, VL, BW, DQ): 16-lane corners and gathers, 32 vector
    /// registers.
    Avx512,
}

impl Isa {
    /// The build that runs: the best this CPU supports, capped by the
    /// `WARPGRAD_SIMD` environment variable (`portable`, `avx2` or `avx512`)
    /// when set, for benchmarks and bug reports. Every build gives the same
    /// bits. Read once per process.
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
            if has!("avx2") {
                all.push(Isa::Avx2);
                if has!("avx512f") && has!("avx512vl") && has!("avx512bw") && has!("avx512dq") {
                    all.push(Isa::Avx512);
                }
            }
        }
        all
    }
}

/// Build levels for the kernels' const parameter (a const enum is not
/// stable Rust): what the instance may use once its caller checked the CPU.
const PORTABLE: u8 = 0;
/// AVX2 instances.
const AVX2: u8 = 1;
/// AVX-512 instances.
const AVX512: u8 = 2;

/// The input of one batch item: `c` planes of `h`×`w` pixels, channel after
/// channel (`data` may be empty when only ∂U is computed, which never reads it).
#[derive(Clone, Copy)]
pub(crate) struct Planes<'a> {
    /// The pixel values.
    pub data: &'a [f32],
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl<'a> Planes<'a> {
    /// Batch item `b` of an N×`c`×`h`×`w` tensor's values `all`.
    pub fn item(all: &'a [f32], b: usize, c: usize, h: usize, w: usize) -> Planes<'a> {
        let data = &all[b * c * h * w..][..c * h * w];
        Planes { data, c, h, w }
    }
}

/// Forward: appends output pixels `p0 .. p0 + len` of every channel to
/// `outs[ch]` (all of capacity `len`). Each block is blended into the
/// scratch `xs` (its points are spent by then) and copied out, so the
/// output needs no zero-fill. `points(p, xs, ys)` writes the normalised
/// source points of output pixels `p, p + 1, …` into `xs` and `ys`.
pub(crate) fn forward(
    isa: Isa,
    input: Planes,
    opts: SampleOptions,
    p0: usize,
    outs: &mut [Filler<f32>],
    points: impl FnMut(usize, &mut [f32], &mut [f32]),
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2` is only returned by `Isa::detect` after it found
        // AVX2 on this CPU, and `forward_avx2` needs nothing else.
        Isa::Avx2 => unsafe { forward_avx2(input, opts, p0, outs, points) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512` is only returned once AVX-512 F/VL/BW/DQ and
        // AVX2 were detected, all that `forward_avx512` enables.
        Isa::Avx512 => unsafe { forward_avx512(input, opts, p0, outs, points) },
        _ => forward_impl::<PORTABLE>(input, opts, p0, outs, points),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn forward_avx2(
    input: Planes,
    opts: SampleOptions,
    p0: usize,
    outs: &mut [Filler<f32>],
    points: impl FnMut(usize, &mut [f32], &mut [f32]),
) {
    forward_impl::<AVX2>(input, opts, p0, outs, points)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512vl,avx512bw,avx512dq")]
fn forward_avx512(
    input: Planes,
    opts: SampleOptions,
    p0: usize,
    outs: &mut [Filler<f32>],
    points: impl FnMut(usize, &mut [f32], &mut [f32]),
) {
    forward_impl::<AVX512>(input, opts, p0, outs, points)
}

#[inline(always)]
fn forward_impl<const L: u8>(
    input: Planes,
    opts: SampleOptions,
    p0: usize,
    outs: &mut [Filler<f32>],
    mut points: impl FnMut(usize, &mut [f32], &mut [f32]),
) {
    let len = outs.first().map_or(0, |o| o.capacity());
    let plane = input.h * input.w;
    let mut s = Scratch::take();
    // Each block is blended into `xs` (its points are spent by then), then
    // appended to its output.
    if let [out] = outs {
        // One channel: block by block (the loop below, run with one channel,
        // measured about 10% slower on W1 in interleaved runs).
        let Scratch { c: cs, xs, ys, .. } = &mut *s;
        let c = &mut cs[0];
        let mut start = 0;
        while start < len {
            let n = BLOCK.min(len - start);
            points(p0 + start, &mut xs[..n], &mut ys[..n]);
            c.compute::<false>(&xs[..n], &ys[..n], input.h, input.w, opts);
            prefetch::<L>(input.data, plane, c);
            blend::<L>(input.data, c, &mut xs[..n]);
            out.extend_from_slice(&xs[..n]);
            start += n;
        }
        s.put_back();
        return;
    }
    // Several channels: see `SUPER`.
    let channels_inner = channels_inner::<L>(outs.len(), plane);
    let Scratch {
        c: cs,
        xs,
        ys,
        gx: block_out,
        ..
    } = &mut *s;
    let mut start = 0;
    while start < len {
        let nb = (len - start).div_ceil(BLOCK).min(SUPER);
        for (k, c) in cs[..nb].iter_mut().enumerate() {
            let first = start + k * BLOCK;
            let n = BLOCK.min(len - first);
            points(p0 + first, &mut xs[..n], &mut ys[..n]);
            c.compute::<false>(&xs[..n], &ys[..n], input.h, input.w, opts);
            prefetch::<L>(input.data, plane, c);
        }
        if channels_inner {
            let block_out = &mut block_out[..outs.len()];
            for c in &cs[..nb] {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `channels_inner` holds only in the AVX-512
                // instance, which runs only once AVX-512 was detected.
                unsafe {
                    avx512::blend_channels(input.data, plane, c, block_out)
                };
                for (out, row) in outs.iter_mut().zip(block_out.iter()) {
                    out.extend_from_slice(&row[..c.len]);
                }
            }
        } else {
            for (ch, out) in outs.iter_mut().enumerate() {
                let u = &input.data[ch * plane..][..plane];
                prefetch_next_plane::<L>(input.data, plane, ch);
                for c in &cs[..nb] {
                    blend::<L>(u, c, &mut xs[..c.len]);
                    out.extend_from_slice(&xs[..c.len]);
                }
            }
        }
        start = (start + nb * BLOCK).min(len);
    }
    s.put_back();
}

/// Whether an item of `chans` planes of `plane` pixels is sampled with all
/// its planes together, block by block (`avx512::blend_channels` for the
/// forward, `avx512::grid_grad_channels` for ∂grid): the same sums in the
/// same order, each 16 points' pair bookkeeping and weights read once for
/// every plane. Only in the AVX-512 build, for planes of at least 2 pixels
/// (pairs are read) and up to [`SUPER`] channels: W4's 32 planes took the
/// old time in one pair of processes and 3× it in another (forward, 8
/// planes at a time), and made its fused op 1.14–1.30× slower (∂grid).
#[inline(always)]
fn channels_inner<const L: u8>(chans: usize, plane: usize) -> bool {
    cfg!(target_arch = "x86_64") && L == AVX512 && plane >= 2 && chans <= SUPER
}

/// Backward for output pixels `p0 .. p0 + len` of one batch item: adds eq.
/// (6) into `du` (its `c` planes) when given, and when `need_grid` hands each
/// block's ∂L/∂(grid x, grid y) (eq. 7, channels summed in order) to
/// `grid_sink(first pixel, gx, gy)`. `gout` holds the item's `c` gradient
/// planes of `gout_plane` pixels each.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    isa: Isa,
    input: Planes,
    opts: SampleOptions,
    gout: &[f32],
    gout_plane: usize,
    (p0, len): (usize, usize),
    du: Option<&mut [f32]>,
    need_grid: bool,
    points: impl FnMut(usize, &mut [f32], &mut [f32]),
    grid_sink: impl FnMut(usize, &[f32], &[f32]),
) {
    let job = Backward {
        input,
        opts,
        gout,
        gout_plane,
        p0,
        len,
        need_grid,
    };
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `forward`: `Isa::Avx2` means AVX2 was detected.
        Isa::Avx2 => unsafe { backward_avx2(job, du, points, grid_sink) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `forward`.
        Isa::Avx512 => unsafe { backward_avx512(job, du, points, grid_sink) },
        _ => backward_impl::<PORTABLE>(job, du, points, grid_sink),
    }
}

/// The read-only part of a backward job.
struct Backward<'a> {
    input: Planes<'a>,
    opts: SampleOptions,
    gout: &'a [f32],
    gout_plane: usize,
    p0: usize,
    len: usize,
    need_grid: bool,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn backward_avx2(
    job: Backward,
    du: Option<&mut [f32]>,
    points: impl FnMut(usize, &mut [f32], &mut [f32]),
    grid_sink: impl FnMut(usize, &[f32], &[f32]),
) {
    backward_impl::<AVX2>(job, du, points, grid_sink)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512vl,avx512bw,avx512dq")]
fn backward_avx512(
    job: Backward,
    du: Option<&mut [f32]>,
    points: impl FnMut(usize, &mut [f32], &mut [f32]),
    grid_sink: impl FnMut(usize, &[f32], &[f32]),
) {
    backward_impl::<AVX512>(job, du, points, grid_sink)
}

#[inline(always)]
fn backward_impl<const L: u8>(
    job: Backward,
    du: Option<&mut [f32]>,
    points: impl FnMut(usize, &mut [f32], &mut [f32]),
    grid_sink: impl FnMut(usize, &[f32], &[f32]),
) {
    let mut s = Scratch::take();
    if job.input.c == 1 {
        backward_one::<L>(job, du, &mut s, points, grid_sink);
    } else {
        backward_blocks::<L>(job, du, &mut s, points, grid_sink);
    }
    s.put_back();
}

/// The chain rule through padding and unnormalisation: the block's ∂grid
/// from pixel units to grid units.
#[inline(always)]
fn to_grid_units(c: &Corners, gx: &mut [f32; BLOCK], gy: &mut [f32; BLOCK]) {
    // Zipped slices, not indices: with `j < c.len` the loop kept a bounds
    // check and ran scalar.
    let n = c.len;
    for (g, m) in gx[..n].iter_mut().zip(&c.mult[0][..n]) {
        *g *= m;
    }
    for (g, m) in gy[..n].iter_mut().zip(&c.mult[1][..n]) {
        *g *= m;
    }
}

/// [`backward`] for one channel, block by block: the scatter, then the
/// gathering kernel. (`backward_blocks` computes the same with one channel,
/// but measured 2–8% slower on W1 in interleaved runs.)
#[inline(always)]
fn backward_one<const L: u8>(
    job: Backward,
    mut du: Option<&mut [f32]>,
    s: &mut Scratch,
    mut points: impl FnMut(usize, &mut [f32], &mut [f32]),
    mut grid_sink: impl FnMut(usize, &[f32], &[f32]),
) {
    let Planes { data, h, w, .. } = job.input;
    let Scratch {
        c: cs,
        xs,
        ys,
        gx,
        gy,
    } = s;
    let (c, gx, gy) = (&mut cs[0], &mut gx[0], &mut gy[0]);
    let mut start = 0;
    while start < job.len {
        let n = BLOCK.min(job.len - start);
        let p = job.p0 + start;
        points(p, &mut xs[..n], &mut ys[..n]);
        c.compute::<true>(&xs[..n], &ys[..n], h, w, job.opts);
        if job.need_grid {
            // Only eq. (7) reads the input.
            prefetch::<L>(data, h * w, c);
        }
        let g = &job.gout[p..][..n];
        if let Some(du) = du.as_deref_mut() {
            prefetch::<L>(du, h * w, c);
            scatter(du, c, g);
        }
        if job.need_grid {
            grid_grad::<L, false>(data, c, g, gx, gy);
            to_grid_units(c, gx, gy);
            grid_sink(p, &gx[..n], &gy[..n]);
        }
        start += n;
    }
}

/// [`backward`] for several channels, channel after channel over the
/// blocks of a [`SUPER`] block: ∂U plane by plane, each in point order
/// (deterministic), ∂grid summing the channels in order.
#[inline(always)]
fn backward_blocks<const L: u8>(
    job: Backward,
    mut du: Option<&mut [f32]>,
    s: &mut Scratch,
    mut points: impl FnMut(usize, &mut [f32], &mut [f32]),
    mut grid_sink: impl FnMut(usize, &[f32], &[f32]),
) {
    let Planes {
        data,
        c: chans,
        h,
        w,
    } = job.input;
    let plane = h * w;
    let channels_inner = job.need_grid && channels_inner::<L>(chans, plane);
    // What the channel loop below reads besides ∂U: each input plane for
    // ∂grid, channels outer (which adds into zeroed `gx`, `gy`); ∂output,
    // unless ∂grid alone runs channels inner (which reads it per block).
    let grad_per_channel = job.need_grid && !channels_inner;
    let gout_per_channel = du.is_some() || !channels_inner;
    let Scratch {
        c: cs,
        xs,
        ys,
        gx,
        gy,
    } = s;
    let mut start = 0;
    while start < job.len {
        let nb = (job.len - start).div_ceil(BLOCK).min(SUPER);
        for (k, c) in cs[..nb].iter_mut().enumerate() {
            let first = job.p0 + start + k * BLOCK;
            let n = BLOCK.min(job.p0 + job.len - first);
            points(first, &mut xs[..n], &mut ys[..n]);
            c.compute::<true>(&xs[..n], &ys[..n], h, w, job.opts);
            if job.need_grid {
                prefetch::<L>(data, plane, c);
            }
            if let Some(du) = du.as_deref() {
                prefetch::<L>(du, plane, c);
            }
            if !gout_per_channel {
                // ∂grid alone reads every channel's ∂output per 16 points:
                // several streams the hardware prefetcher follows poorly
                // (W5: a quarter of the time on those loads).
                for ch in 0..chans {
                    prefetch_run::<L>(&job.gout[ch * job.gout_plane + first..][..n]);
                }
            }
            if grad_per_channel {
                gx[k][..n].fill(0.0);
                gy[k][..n].fill(0.0);
            }
        }
        for ch in 0..chans {
            // What the next channel reads, while this one is worked on.
            if grad_per_channel {
                prefetch_next_plane::<L>(data, plane, ch);
            }
            if let Some(du) = du.as_deref() {
                prefetch_next_plane::<L>(du, plane, ch);
            }
            if gout_per_channel && ch + 1 < chans {
                let first = job.p0 + start;
                let n = (job.len - start).min(nb * BLOCK);
                prefetch_run::<L>(&job.gout[(ch + 1) * job.gout_plane + first..][..n]);
            }
            for (k, c) in cs[..nb].iter().enumerate() {
                let first = job.p0 + start + k * BLOCK;
                let g = &job.gout[ch * job.gout_plane + first..][..c.len];
                if let Some(du) = du.as_deref_mut() {
                    scatter(&mut du[ch * plane..][..plane], c, g);
                }
                if grad_per_channel {
                    let u = &data[ch * plane..][..plane];
                    grid_grad::<L, true>(u, c, g, &mut gx[k], &mut gy[k]);
                }
            }
        }
        if job.need_grid {
            for (k, c) in cs[..nb].iter().enumerate() {
                let (gx, gy, n) = (&mut gx[k], &mut gy[k], c.len);
                if channels_inner {
                    let first = job.p0 + start + k * BLOCK;
                    let g = |ch: usize| &job.gout[ch * job.gout_plane + first..][..n];
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: `channels_inner` holds only in the AVX-512
                    // instance, which runs only once AVX-512 was detected.
                    unsafe {
                        avx512::grid_grad_channels(data, plane, c, g, gx, gy)
                    };
                }
                to_grid_units(c, gx, gy);
                grid_sink(job.p0 + start + k * BLOCK, &gx[..n], &gy[..n]);
            }
        }
        start = (start + nb * BLOCK).min(job.len);
    }
}

/// Pixels per plane above which the taps are prefetched ([`prefetch`]).
/// Each task reads its plane from L2 or L3 once, and the hardware prefetcher
/// does not follow gathers. Interleaved A/B: W3's 60×60 planes, halved, gain
/// (∂grid 0.93×/0.95×, forward 0.92×/0.93× of the time at 1/2 threads);
/// W1's and W2's (784 and 1,764 pixels) do not (0.97–1.07×), so they stay
/// below.
const SMALL_PLANE: usize = 1 << 11;

/// Points between prefetches. Interleaved runs against 8 and 16: on W6
/// (which halves the image, so 8 points span a 64-byte line of a row) 4
/// was 15–20% faster than 8; on W5 (no scaling) all three within 5%.
const PREFETCH_STEP: usize = 4;

/// Starts loading the pixels the block's points will read, in every
/// channel, before the gathers ask for them: for planes above
/// [`SMALL_PLANE`] pixels, which come from L2 or beyond (the hardware
/// prefetcher does not follow gathers: W6's forward spent 84% of its time
/// waiting on them). One address per [`PREFETCH_STEP`] points per tap row.
/// The portable build leaves it to the hardware. Only timing changes.
#[inline(always)]
fn prefetch<const L: u8>(planes: &[f32], plane: usize, c: &Corners) {
    if L == PORTABLE || plane <= SMALL_PLANE {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    for u in planes.chunks_exact(plane) {
        for j in (0..c.len).step_by(PREFETCH_STEP) {
            for row in [&c.off[0], &c.off[2]] {
                // `wrapping_add`: the offset is inside the plane, and a
                // prefetch of any address is harmless anyway.
                let at = u.as_ptr().wrapping_add(row[j] as usize).cast::<i8>();
                // SAFETY: a prefetch is a hint: it reads nothing the program
                // sees and never faults, whatever the address.
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at)
                };
            }
        }
    }
}

/// Starts loading a short contiguous run of values (at most
/// [`SMALL_PLANE`]: a small plane, or a block's ∂output), one address per
/// 64-byte line, ahead of the loop that reads it: the gathers would
/// otherwise meet each line's miss in turn, and several interleaved streams
/// are more than the hardware prefetcher follows. Only timing changes.
#[inline(always)]
fn prefetch_run<const L: u8>(u: &[f32]) {
    if L == PORTABLE || u.len() > SMALL_PLANE {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    for line in u.chunks(16) {
        // SAFETY: a prefetch is a hint: it reads nothing the program sees
        // and never faults, whatever the address.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast::<i8>(),
            )
        };
    }
}

/// [`prefetch_run`] of plane `ch + 1` of `planes` (of `plane` values
/// each), if there is one: what a loop over the channels reads next.
#[inline(always)]
fn prefetch_next_plane<const L: u8>(planes: &[f32], plane: usize, ch: usize) {
    if let Some(next) = planes.get((ch + 1) * plane..(ch + 2) * plane) {
        prefetch_run::<L>(next);
    }
}

/// Eq. (3) with the weights of eq. (5) for the block's points: `out[j]`.
#[inline(always)]
fn blend<const L: u8>(u: &[f32], c: &Corners, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    match L {
        // SAFETY: `L` is `AVX512` only in the instances called from the
        // `*_avx512` functions, which run only once AVX-512 was detected.
        AVX512 => unsafe { avx512::blend(u, c, out) },
        // SAFETY: likewise, `AVX2` only under `*_avx2`.
        AVX2 => unsafe { avx2::blend(u, c, out, 0) },
        _ => blend_from(u, c, out, 0),
    }
    #[cfg(not(target_arch = "x86_64"))]
    blend_from(u, c, out, 0);
}

/// The portable blend of points `from..` (also the AVX2 build's tail).
#[inline(always)]
fn blend_from(u: &[f32], c: &Corners, out: &mut [f32], from: usize) {
    assert_eq!(out.len(), c.len);
    let last = u.len() - 1;
    for (j, o) in out.iter_mut().enumerate().skip(from) {
        *o = Point::at(c, j, last).blend(u);
    }
}

/// Eq. (6): adds each point's gradient `g[j]` into its four neighbours, point
/// after point in order (deterministic; a scatter does not vectorise).
///
/// Out of line, and the same plain code in every build: inlined into the
/// backward, its loop was compiled differently whenever the rest of that
/// function changed (a prefetch added to the several-channel loop made the
/// one-channel backward 4–13% slower, with a bound spilled to the stack).
/// One call per block costs nothing measurable.
#[inline(never)]
fn scatter(du: &mut [f32], c: &Corners, g: &[f32]) {
    assert_eq!(g.len(), c.len);
    let last = du.len() - 1;
    for (j, &gj) in g.iter().enumerate() {
        Point::at(c, j, last).scatter(du, gj);
    }
}

/// Eq. (7) for one channel: adds g · ∂V/∂x and g · ∂V/∂y (pixel units) of
/// each point into `gx`, `gy`, or with `ACC` false writes them there, as
/// 0 + g · ∂V/∂x: the same bits as adding into zeros, without zeroing first
/// (a `memset` call per block, 7% of one-channel ∂grid).
#[inline(always)]
fn grid_grad<const L: u8, const ACC: bool>(
    u: &[f32],
    c: &Corners,
    g: &[f32],
    gx: &mut [f32; BLOCK],
    gy: &mut [f32; BLOCK],
) {
    #[cfg(target_arch = "x86_64")]
    match L {
        // SAFETY: as in `blend`.
        AVX512 => unsafe { avx512::grid_grad::<ACC>(u, c, g, gx, gy) },
        // SAFETY: as in `blend`.
        AVX2 => unsafe { avx2::grid_grad::<ACC>(u, c, g, gx, gy, 0) },
        _ => grid_grad_from::<ACC>(u, c, g, gx, gy, 0),
    }
    #[cfg(not(target_arch = "x86_64"))]
    grid_grad_from::<ACC>(u, c, g, gx, gy, 0);
}

/// The portable grid gradient of points `from..` (also the AVX2 tail).
#[inline(always)]
fn grid_grad_from<const ACC: bool>(
    u: &[f32],
    c: &Corners,
    g: &[f32],
    gx: &mut [f32; BLOCK],
    gy: &mut [f32; BLOCK],
    from: usize,
) {
    assert_eq!(g.len(), c.len);
    let last = u.len() - 1;
    for j in from..g.len() {
        let (dx, dy) = Point::at(c, j, last).grad(u);
        let (x0, y0) = if ACC { (gx[j], gy[j]) } else { (0.0, 0.0) };
        gx[j] = x0 + g[j] * dx;
        gy[j] = y0 + g[j] * dy;
    }
}

/// One point of a block, read out of [`Corners`]: the portable kernels'
/// arithmetic for it, shared by the one-channel and several-channel loops
/// (the AVX2 build repeats it 8 lanes wide, in the same order).
#[derive(Clone, Copy)]
struct Point {
    /// Plane offsets of the four neighbours, clamped to the plane.
    o: [usize; 4],
    wx: [f32; 2],
    wy: [f32; 2],
    dwx: [f32; 2],
    dwy: [f32; 2],
}

impl Point {
    /// Point `j` of the block, for a plane whose last offset is `last`
    /// (offsets are always valid; `min(last)` tells the compiler so, which
    /// removes the bounds checks).
    #[inline(always)]
    fn at(c: &Corners, j: usize, last: usize) -> Point {
        Point {
            o: std::array::from_fn(|k| (c.off[k][j] as usize).min(last)),
            wx: [c.wx[0][j], c.wx[1][j]],
            wy: [c.wy[0][j], c.wy[1][j]],
            dwx: [c.dwx[0][j], c.dwx[1][j]],
            dwy: [c.dwy[0][j], c.dwy[1][j]],
        }
    }

    /// Eq. (3) with the weights of eq. (5): rows blended along x, then along y.
    #[inline(always)]
    fn blend(&self, u: &[f32]) -> f32 {
        let [o00, o01, o10, o11] = self.o;
        let r0 = u[o00] * self.wx[0] + u[o01] * self.wx[1];
        let r1 = u[o10] * self.wx[0] + u[o11] * self.wx[1];
        r0 * self.wy[0] + r1 * self.wy[1]
    }

    /// Eq. (7): (∂V/∂x, ∂V/∂y) in pixel units.
    #[inline(always)]
    fn grad(&self, u: &[f32]) -> (f32, f32) {
        let [o00, o01, o10, o11] = self.o;
        let (v00, v01, v10, v11) = (u[o00], u[o01], u[o10], u[o11]);
        // Rows blended along x (r) and differentiated along x (rd).
        let r0 = v00 * self.wx[0] + v01 * self.wx[1];
        let r1 = v10 * self.wx[0] + v11 * self.wx[1];
        let rd0 = v00 * self.dwx[0] + v01 * self.dwx[1];
        let rd1 = v10 * self.dwx[0] + v11 * self.dwx[1];
        (
            rd0 * self.wy[0] + rd1 * self.wy[1],
            r0 * self.dwy[0] + r1 * self.dwy[1],
        )
    }

    /// Eq. (6): adds the point's gradient `g` into its four neighbours.
    #[inline(always)]
    fn scatter(&self, du: &mut [f32], g: f32) {
        let [o00, o01, o10, o11] = self.o;
        let g0 = g * self.wy[0];
        du[o00] += g0 * self.wx[0];
        du[o01] += g0 * self.wx[1];
        let g1 = g * self.wy[1];
        du[o10] += g1 * self.wx[0];
        du[o11] += g1 * self.wx[1];
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2;

#[cfg(target_arch = "x86_64")]
mod avx512;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::{Mode, Padding};

    /// Random-ish planes and points, with wild and edge coordinates mixed in.
    fn case(c: usize, h: usize, w: usize, len: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let data: Vec<f32> = (0..c * h * w).map(|i| (i as f32 * 0.731).sin()).collect();
        let mut pts: Vec<f32> = (0..2 * len)
            .map(|i| (i as f32 * 0.0173).cos() * 1.3)
            .collect();
        let wild = [
            f32::NAN,
            f32::INFINITY,
            -f32::INFINITY,
            1e30,
            -1.0,
            1.0,
            0.0,
            -0.0,
        ];
        for (k, v) in wild.into_iter().enumerate() {
            pts[7 * k + 3] = v;
        }
        // Points whose neighbours include the plane's last pixel (the AVX2
        // build reads pairs of pixels, which must not run past it).
        pts[100..108].copy_from_slice(&[1.0, 1.0, 0.999, 1.0, 1.0, 0.9999, 2.0, 2.0]);
        let gout: Vec<f32> = (0..c * len).map(|i| (i as f32 * 0.377).cos()).collect();
        (data, pts, gout)
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Every build this CPU runs, with every padding and both pixel
    /// conventions.
    fn each_build_and_option(mut f: impl FnMut(Isa, SampleOptions)) {
        for isa in Isa::available() {
            for padding in [Padding::Zeros, Padding::Border, Padding::Reflection] {
                for ac in [false, true] {
                    f(
                        isa,
                        SampleOptions::new(Mode::Bilinear, padding).align_corners(ac),
                    );
                }
            }
        }
    }

    /// The kernels' `points` callback over the interleaved (x, y) of `pts`.
    fn points_of(pts: &[f32]) -> impl Fn(usize, &mut [f32], &mut [f32]) + Copy + '_ {
        |p, xs, ys| {
            for (k, (x, y)) in xs.iter_mut().zip(ys.iter_mut()).enumerate() {
                (*x, *y) = (pts[2 * (p + k)], pts[2 * (p + k) + 1]);
            }
        }
    }

    /// `backward` over all of `pts` (interleaved x, y), with ∂U added into
    /// `du` when given: returns ∂grid, interleaved.
    fn grid_of(
        isa: Isa,
        opts: SampleOptions,
        planes: Planes,
        gout: &[f32],
        pts: &[f32],
        du: Option<&mut [f32]>,
    ) -> Vec<f32> {
        let len = pts.len() / 2;
        let mut gg = vec![0.0f32; 2 * len];
        backward(
            isa,
            planes,
            opts,
            gout,
            len,
            (0, len),
            du,
            true,
            points_of(pts),
            |p, gx, gy| {
                for (k, (&x, &y)) in gx.iter().zip(gy).enumerate() {
                    (gg[2 * (p + k)], gg[2 * (p + k) + 1]) = (x, y);
                }
            },
        );
        gg
    }

    /// Runs forward and the joint backward with one build: the output
    /// channels' bits, then ∂U's, then ∂grid's.
    fn run(isa: Isa, opts: SampleOptions, c: usize, h: usize, w: usize) -> Vec<Vec<u32>> {
        let (data, _, gout) = case(c, h, w, 203);
        run_with(isa, opts, &data, &gout, c, h, w)
    }

    fn run_with(
        isa: Isa,
        opts: SampleOptions,
        data: &[f32],
        gout: &[f32],
        c: usize,
        h: usize,
        w: usize,
    ) -> Vec<Vec<u32>> {
        // A full block and a tail of 75 = 4·16 + 8 + 3 points: every lane
        // width of every build runs.
        let len = 203;
        let (_, pts, _) = case(c, h, w, len);
        let planes = Planes { data, c, h, w };
        let out = engine::parallel::written(c * len, |all| {
            let mut pieces: Vec<Filler<f32>> = all.chunks(len).collect();
            forward(isa, planes, opts, 0, &mut pieces, points_of(&pts));
        });
        let mut du = vec![0.0f32; c * h * w];
        let gg = grid_of(isa, opts, planes, gout, &pts, Some(&mut du));
        let mut all: Vec<Vec<u32>> = out.chunks(len).map(bits).collect();
        all.push(bits(&du));
        all.push(bits(&gg));
        all
    }

    /// The page's per-point functions (`sampler/bilinear.rs`) over the same
    /// case as [`run`]: the output channels' bits, then ∂U's, then ∂grid's.
    fn page(opts: SampleOptions, c: usize, h: usize, w: usize) -> Vec<Vec<u32>> {
        use crate::sampler::bilinear::{axis, gradient, sample, scatter};
        let len = 203;
        let (data, pts, gout) = case(c, h, w, len);
        let plane = h * w;
        let mut out = vec![vec![0.0f32; len]; c];
        let mut du = vec![0.0f32; c * plane];
        let mut gg = vec![0.0f32; 2 * len];
        for j in 0..len {
            let (x, y) = (axis(pts[2 * j], w, opts), axis(pts[2 * j + 1], h, opts));
            let (mut gx, mut gy) = (0.0f32, 0.0f32);
            for ch in 0..c {
                let u = &data[ch * plane..][..plane];
                out[ch][j] = sample(u, w, &x, &y);
                let g = gout[ch * len + j];
                scatter(&mut du[ch * plane..][..plane], w, &x, &y, g);
                let (dx, dy) = gradient(u, w, &x, &y);
                gx += g * dx;
                gy += g * dy;
            }
            (gg[2 * j], gg[2 * j + 1]) = (gx * x.mult, gy * y.mult);
        }
        let mut all: Vec<Vec<u32>> = out.iter().map(|o| bits(o)).collect();
        all.push(bits(&du));
        all.push(bits(&gg));
        all
    }

    /// Every build this CPU runs gives the page's bits (the scalar
    /// reference of eqs. 5–7), forward and backward, for every padding,
    /// both pixel conventions, one channel and several (up to and beyond
    /// `SUPER`), planes of 1 to 16,900 pixels, wild points included.
    #[test]
    fn every_build_gives_the_pages_bits() {
        each_build_and_option(|isa, opts| {
            for (c, h, w) in [
                (1, 9, 11),
                (3, 1, 7),
                (2, 28, 28),
                (1, 1, 1),
                (9, 5, 6),
                (1, 130, 130),
                (3, 130, 130),
            ] {
                let got = run(isa, opts, c, h, w);
                assert!(
                    page(opts, c, h, w) == got,
                    "{opts:?} c={c} {h}x{w} ({isa:?})"
                );
            }
        });
    }

    /// Several channels run channel after channel over super-blocks, one
    /// channel block by block: both must give each channel the same bits
    /// (∂grid of the pair = the sum of the two single-channel ∂grids), on a
    /// small plane and on one large enough to be prefetched.
    #[test]
    fn channels_together_equal_channels_alone() {
        let isa = Isa::detect();
        for ((h, w), padding) in [(13, 17), (130, 130)]
            .into_iter()
            .flat_map(|hw| [Padding::Zeros, Padding::Border, Padding::Reflection].map(|p| (hw, p)))
        {
            let opts = SampleOptions::new(Mode::Bilinear, padding);
            let pair = run(isa, opts, 2, h, w);
            let (data, _, gout) = case(2, h, w, 203);
            let one = |ch: usize| {
                let plane = &data[ch * h * w..][..h * w];
                let g = &gout[ch * 203..][..203];
                run_with(isa, opts, plane, g, 1, h, w)
            };
            let (a, b) = (one(0), one(1));
            assert_eq!(pair[0], a[0], "{padding:?} forward ch 0");
            assert_eq!(pair[1], b[0], "{padding:?} forward ch 1");
            let du: Vec<u32> = a[1].iter().chain(&b[1]).copied().collect();
            assert_eq!(pair[2], du, "{padding:?} du");
            // ∂grid comes scaled by d(pixel)/d(grid): (a + b)·m against
            // a·m + b·m, equal up to rounding.
            let f = |v: &[u32]| v.iter().map(|&x| f32::from_bits(x)).collect::<Vec<_>>();
            let (ga, gb, gp) = (f(&a[2]), f(&b[2]), f(&pair[3]));
            for ((x, y), p) in ga.iter().zip(&gb).zip(&gp) {
                let want = x + y;
                assert!(
                    (p - want).abs() <= 1e-5 * (1.0 + want.abs()),
                    "{padding:?} grid {p} vs {want}"
                );
            }
        }
    }

    /// Every build this CPU runs gives the portable build's bits, forward
    /// and backward, for every padding and both pixel conventions, with one
    /// channel and several, and planes of 1 to 16,900 pixels.
    #[test]
    fn builds_are_bit_identical() {
        each_build_and_option(|isa, opts| {
            // 130×130 is above SMALL_PLANE: the prefetching loops.
            let shapes = [
                (1, 9, 11),
                (3, 1, 7),
                (2, 28, 28),
                (1, 1, 1),
                (5, 1, 1),
                (9, 5, 6),
                (1, 130, 130),
                (2, 130, 130),
            ];
            for (c, h, w) in shapes {
                let want = run(Isa::Portable, opts, c, h, w);
                let got = run(isa, opts, c, h, w);
                assert!(want == got, "{opts:?} c={c} {h}x{w} ({isa:?})");
            }
        });
    }

    /// The bits of `backward`'s ∂grid, with ∂U into `du` or without it.
    fn grid_bits(
        isa: Isa,
        opts: SampleOptions,
        (c, h, w): (usize, usize, usize),
        du: Option<&mut [f32]>,
    ) -> Vec<u32> {
        let (data, pts, gout) = case(c, h, w, 203);
        let planes = Planes {
            data: &data,
            c,
            h,
            w,
        };
        bits(&grid_of(isa, opts, planes, &gout, &pts, du))
    }

    /// ∂grid alone (the one-channel loop without the scatter) gives every
    /// build the bits of the portable build's ∂grid computed with ∂U.
    #[test]
    fn grid_gradient_alone_is_bit_identical_in_every_build() {
        each_build_and_option(|isa, opts| {
            for (c, h, w) in [
                (1, 9, 11),
                (1, 1, 7),
                (1, 2, 1),
                (1, 1, 1),
                (1, 28, 28),
                (1, 130, 130),
                (2, 9, 11),
            ] {
                let want = run(Isa::Portable, opts, c, h, w);
                let got = grid_bits(isa, opts, (c, h, w), None);
                assert!(want[c + 1] == got, "{opts:?} c={c} {h}x{w} ({isa:?})");
            }
        });
    }

    /// With ∂U and without it, the several-channel ∂grid is the same (the
    /// scatter into ∂U must not disturb it).
    #[test]
    fn grid_gradient_alone_equals_grid_gradient_with_du() {
        let (c, h, w) = (3, 13, 17);
        let opts = SampleOptions::new(Mode::Bilinear, Padding::Zeros);
        for isa in Isa::available() {
            let mut du = vec![0.0f32; c * h * w];
            let with_du = grid_bits(isa, opts, (c, h, w), Some(&mut du));
            assert_eq!(grid_bits(isa, opts, (c, h, w), None), with_du, "{isa:?}");
        }
    }
}
