//! The caching buffer pool: size classes, bypass of small buffers, the cap
//! and its LRU eviction, clearing, zeroing of reused buffers, thread safety,
//! and tensor storage going back to the pool on drop.
//!
//! Mechanism tests use a `Pool` of their own (exact counters whatever else
//! runs); tests of the process-wide pool hold `GLOBAL` so they do not see
//! each other's buffers.

use engine::pool::{self, class_capacity, Pool, Stats, MIN_POOLED};
use engine::Tensor;
use std::sync::{Arc, Mutex};

/// Serialises the tests that use the process-wide pool.
static GLOBAL: Mutex<()> = Mutex::new(());

fn global_lock() -> std::sync::MutexGuard<'static, ()> {
    GLOBAL.lock().unwrap_or_else(|e| e.into_inner())
}

const BIG: usize = 1 << 30;

/// Bytes of a buffer of `n` f32s rounded to its class.
fn class_bytes(n: usize) -> usize {
    class_capacity(n) * 4
}

#[test]
fn a_request_rounds_up_to_its_class_and_a_near_size_reuses_it() {
    let p = Pool::new(BIG);
    let a: Vec<f32> = p.take_zeroed(5000);
    assert_eq!(a.len(), 5000);
    // 5000 rounds up to 4096 + 2·512.
    assert_eq!(class_capacity(5000), 5120);
    assert!(a.capacity() >= 5120);
    let ptr = a.as_ptr();
    p.give(a);
    // 5100 is in the same class: the same buffer comes back.
    let b: Vec<f32> = p.take_for_overwrite(5100);
    assert_eq!(b.len(), 5100);
    assert_eq!(b.as_ptr(), ptr);
    let s = p.stats();
    assert_eq!((s.hits, s.misses), (1, 1));
    // 5121 is in the next class: a miss although a buffer is cached.
    p.give(b);
    let c: Vec<f32> = p.take_empty(5121);
    assert!(c.is_empty() && c.capacity() >= 5632);
    let s = p.stats();
    assert_eq!((s.hits, s.misses, s.buffers_cached), (1, 2, 1));
}

#[test]
fn small_buffers_bypass_the_pool() {
    let p = Pool::new(BIG);
    let a: Vec<f32> = p.take_zeroed(MIN_POOLED - 1);
    assert_eq!(a.len(), MIN_POOLED - 1);
    p.give(a);
    p.give(vec![1.0f32; 100]);
    let s = p.stats();
    assert_eq!((s.hits, s.misses, s.returned), (0, 0, 0));
    assert_eq!((s.bytes_cached, s.buffers_cached), (0, 0));
    assert_eq!(s.bypassed, 3);
    // The smallest pooled size is pooled.
    p.give(p.take_zeroed::<f32>(MIN_POOLED));
    assert_eq!(p.stats().buffers_cached, 1);
}

#[test]
fn over_the_cap_the_least_recently_given_buffer_is_evicted() {
    // Classes 4096, 4608 and 5120: room for `a` and `c`, not all three.
    let (a_n, b_n, c_n) = (4096, 4608, 5120);
    let p = Pool::new(class_bytes(a_n) + class_bytes(c_n));
    let a: Vec<f32> = p.take_zeroed(a_n);
    let b: Vec<f32> = p.take_zeroed(b_n);
    let c: Vec<f32> = p.take_zeroed(c_n);
    p.give(a);
    p.give(b);
    // Use `a` again: now `b` is the one given back longest ago.
    let a: Vec<f32> = p.take_zeroed(a_n);
    p.give(a);
    assert_eq!(p.stats().evictions, 0);
    // `c` does not fit with both: `b` goes, not `a` (the older class order)
    // and not `c` (the newest).
    p.give(c);
    let s = p.stats();
    assert_eq!(s.evictions, 1);
    assert_eq!(s.bytes_cached, class_bytes(a_n) + class_bytes(c_n));
    let before = p.stats();
    let _a: Vec<f32> = p.take_zeroed(a_n);
    let _c: Vec<f32> = p.take_zeroed(c_n);
    let _b: Vec<f32> = p.take_zeroed(b_n);
    let s = p.stats();
    assert_eq!(s.hits - before.hits, 2, "a and c were cached");
    assert_eq!(s.misses - before.misses, 1, "b was evicted");
}

#[test]
fn a_lower_cap_evicts_at_once_and_a_buffer_above_it_is_not_kept() {
    let p = Pool::new(BIG);
    for n in [4096, 8192, 16384] {
        p.give(p.take_zeroed::<f32>(n));
    }
    assert_eq!(p.stats().buffers_cached, 3);
    // Room for the newest (16384 values) only.
    p.set_cap(16384 * 4);
    let s = p.stats();
    assert_eq!(
        (s.buffers_cached, s.evictions, s.bytes_cached),
        (1, 2, 16384 * 4)
    );
    p.give(p.take_zeroed::<f32>(32768));
    let s = p.stats();
    assert_eq!(s.rejected, 1);
    assert_eq!(s.bytes_cached, 16384 * 4);
    p.set_cap(0);
    assert_eq!(p.stats().bytes_cached, 0);
}

#[test]
fn clear_empties_the_cache() {
    let p = Pool::new(BIG);
    for n in [5000, 5000, 70_000] {
        let v: Vec<f32> = p.take_zeroed(n);
        p.give(v);
    }
    let s = p.stats();
    assert!(s.buffers_cached >= 2 && s.bytes_cached > 0);
    p.clear();
    let s = p.stats();
    assert_eq!((s.buffers_cached, s.bytes_cached), (0, 0));
    let misses = s.misses;
    let _v: Vec<f32> = p.take_zeroed(5000);
    assert_eq!(p.stats().misses, misses + 1);
}

#[test]
fn take_zeroed_is_all_zeros_on_a_reused_dirty_buffer() {
    let p = Pool::new(BIG);
    let mut v: Vec<f32> = p.take_for_overwrite(6000);
    if cfg!(debug_assertions) {
        assert!(v.iter().all(|x| x.is_nan()), "debug builds poison with NaN");
    }
    v.fill(3.5);
    let ptr = v.as_ptr();
    p.give(v);
    // 5900 and 6000 share a class: the dirty buffer is reused.
    let z: Vec<f32> = p.take_zeroed(5900);
    assert_eq!(z.as_ptr(), ptr);
    assert_eq!(z.len(), 5900);
    assert!(z.iter().all(|&x| x == 0.0));
    // Overwrite past the old length: the gap is filled (length right).
    let mut short = z;
    short.truncate(4700);
    p.give(short);
    let w: Vec<f32> = p.take_for_overwrite(6100);
    assert_eq!((w.len(), w.as_ptr()), (6100, ptr));
    p.give(w);
    let e: Vec<f32> = p.take_empty(6000);
    assert!(e.is_empty() && e.capacity() >= 6000);
    // fill_cached dirties every cached value, past the old length too.
    p.give(e);
    p.fill_cached(-1.0);
    let d: Vec<f32> = p.take_for_overwrite(6144);
    if !cfg!(debug_assertions) {
        assert!(d.iter().all(|&x| x == -1.0));
    }
    p.give(d);
    let z: Vec<f32> = p.take_zeroed(6144);
    assert!(z.iter().all(|&x| x == 0.0));
}

#[test]
fn threads_take_and_give_concurrently_with_consistent_counters() {
    let p = Arc::new(Pool::new(BIG));
    let (threads, rounds) = (8, 500);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                for r in 0..rounds {
                    // Four classes, visited in a thread-dependent order.
                    let n = [4096, 5000, 9000, 20_000][(t + r) % 4];
                    let mut v: Vec<f32> = p.take_zeroed(n);
                    assert!(v.iter().all(|&x| x == 0.0), "a buffer was not zeroed");
                    let mark = (t * rounds + r) as f32;
                    v.fill(mark);
                    std::thread::yield_now();
                    // No other thread wrote into it meanwhile.
                    assert!(v.iter().all(|&x| x == mark), "a buffer was shared");
                    p.give(v);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a worker panicked");
    }
    let s: Stats = p.stats();
    let takes = (threads * rounds) as u64;
    assert_eq!(s.hits + s.misses, takes);
    assert_eq!(s.returned, takes);
    assert_eq!((s.evictions, s.rejected), (0, 0));
    // Every buffer ever allocated is back in the cache, none handed out.
    assert_eq!(s.buffers_cached as u64, s.misses);
    assert_eq!(s.bytes_live, 0);
    assert!(s.misses <= (threads * 4) as u64, "{} misses", s.misses);
    assert!(s.peak_bytes_live > 0 && s.bytes_cached >= s.peak_bytes_live);
}

#[test]
fn a_tensor_gives_its_buffer_back_on_drop_for_the_next_tensor_of_its_class() {
    let _g = global_lock();
    pool::clear();
    let t = Tensor::zeros(&[3, 2000]);
    let ptr = t.data().as_ptr();
    let shared = t.clone();
    let s0 = pool::stats();
    drop(t);
    assert_eq!(
        pool::stats().returned,
        s0.returned,
        "a clone still holds it"
    );
    drop(shared);
    let s1 = pool::stats();
    assert_eq!(s1.returned, s0.returned + 1);
    assert_eq!(s1.buffers_cached, s0.buffers_cached + 1);
    // 5900 values share the class of 6000: the same buffer, refilled.
    let u = Tensor::full(&[5900], 2.0);
    assert_eq!(u.data().as_ptr(), ptr);
    assert!(u.data().iter().all(|&v| v == 2.0));
    assert_eq!(pool::stats().hits, s1.hits + 1);
    // A copy on write takes its copy from the pool too and leaves `u` intact.
    let mut w = u.clone();
    w.data_mut()[0] = 5.0;
    assert_ne!(w.data().as_ptr(), ptr);
    assert_eq!((u.data()[0], w.data()[0]), (2.0, 5.0));
}

#[test]
fn with_a_zero_cap_the_global_pool_keeps_nothing() {
    let _g = global_lock();
    let cap = pool::stats().cap;
    pool::set_cap(0);
    let s0 = pool::stats();
    drop(Tensor::zeros(&[10_000]));
    let s1 = pool::stats();
    assert_eq!(s1.rejected, s0.rejected + 1);
    assert_eq!(s1.bytes_cached, 0);
    pool::set_cap(cap);
    drop(Tensor::zeros(&[10_000]));
    assert_eq!(pool::stats().bytes_cached, class_bytes(10_000));
}
