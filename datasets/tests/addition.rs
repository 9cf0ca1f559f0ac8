//! MNIST addition: determinism from (seed, epoch, index), the label is the
//! sum of the two digits, each channel holds its own digit where it was drawn.

use datasets::distort::Drawn;
use datasets::{DistortedMnist, Variant, TEST_EPOCH};
mod common;
use common::{centroid, in_pool, train};

fn pair(d: &Drawn) -> &datasets::distort::addition::Drawn {
    match d {
        Drawn::Addition(a) => a,
        other => panic!("addition draws pairs, got {other:?}"),
    }
}

/// Pixels of sample `i`, channel `c` of an N×2×S×S batch.
fn channel(t: &engine::Tensor, i: usize, c: usize) -> &[f32] {
    let s = t.shape()[2];
    let px = s * s;
    &t.data()[(2 * i + c) * px..(2 * i + c + 1) * px]
}

#[test]
fn shape_classes_and_name() {
    let v = Variant::parse("addition").unwrap();
    assert_eq!(v, Variant::Addition);
    assert_eq!(Variant::parse("ADD").unwrap(), Variant::Addition);
    assert_eq!((v.channels(), v.classes(), v.name()), (2, 19, "addition"));
    assert_eq!(Variant::Rts.channels(), 1);
    assert_eq!(Variant::Rts.classes(), 10);
    let m = train();
    let b = DistortedMnist::new(v, m, m, 1).range(0, 10, 16);
    assert_eq!(b.images.shape(), &[16, 2, 42, 42]);
    let hi = b.images.data().iter().copied().fold(f32::MIN, f32::max);
    let lo = b.images.data().iter().copied().fold(f32::MAX, f32::min);
    assert!(lo >= 0.0 && hi <= 1.0 + 1e-6 && hi > 0.5, "[{lo}, {hi}]");
}

#[test]
fn same_seed_epoch_and_index_give_the_same_pair_in_any_order_and_thread_count() {
    let m = train();
    let d = DistortedMnist::new(Variant::Addition, m, m, 7);
    let a = in_pool(1, || d.batch(3, &[5, 17, 200]));
    let b = in_pool(2, || d.batch(3, &[200, 5, 17]));
    for c in 0..2 {
        assert_eq!(channel(&a.images, 0, c), channel(&b.images, 1, c));
        assert_eq!(channel(&a.images, 2, c), channel(&b.images, 0, c));
    }
    assert_eq!(a.drawn[1], b.drawn[2]);
    assert_eq!(a.labels[0], b.labels[1]);
    // Another epoch or another seed pairs and distorts differently.
    let other_epoch = d.batch(4, &[5]);
    assert_ne!(pair(&a.drawn[0]), pair(&other_epoch.drawn[0]));
    let other_seed = DistortedMnist::new(Variant::Addition, m, m, 8).batch(3, &[5]);
    assert_ne!(pair(&a.drawn[0]), pair(&other_seed.drawn[0]));
    // A test set (fixed seed and epoch) is the same every time it is drawn.
    let t1 = DistortedMnist::new(Variant::Addition, m, m, 2015).batch(TEST_EPOCH, &[0, 1, 2]);
    let t2 = DistortedMnist::new(Variant::Addition, m, m, 2015).batch(TEST_EPOCH, &[0, 1, 2]);
    assert_eq!(t1.images.data(), t2.images.data());
    assert_eq!(t1.labels, t2.labels);
}

#[test]
fn the_label_is_the_sum_of_the_two_digits_and_partners_cover_the_split() {
    let m = train();
    let n = m.len();
    let idx: Vec<usize> = (0..n).collect();
    let b = DistortedMnist::new(Variant::Addition, m, m, 3).batch(0, &idx);
    let mut partners = std::collections::BTreeSet::new();
    let mut sums = [0usize; 19];
    let mut same = 0;
    for (i, (d, &label)) in b.drawn.iter().zip(&b.labels).enumerate() {
        let p = pair(d);
        assert!(p.partner < n, "partner {} out of the split", p.partner);
        assert_eq!(label, m.label(i) + m.label(p.partner), "sample {i}");
        partners.insert(p.partner);
        sums[label as usize] += 1;
        same += usize::from(m.label(i) == m.label(p.partner));
        for r in [&p.first, &p.second] {
            assert!(r.angle_deg.abs() <= 45.0 && (0.7..=1.2).contains(&r.scale));
        }
    }
    // Uniform partners: about 1 − 1/e of the split is hit at least once.
    assert!(
        partners.len() > n / 2,
        "{} distinct partners",
        partners.len()
    );
    // Every sum occurs; the two digits are independent (P(equal) ≈ 0.1).
    assert!(sums.iter().all(|&c| c > 0), "{sums:?}");
    assert!((n / 20..n / 6).contains(&same), "{same} equal pairs of {n}");
}

#[test]
fn each_channel_holds_its_own_digit_where_it_was_drawn() {
    let m = train();
    let idx: Vec<usize> = (0..64).collect();
    let b = DistortedMnist::new(Variant::Addition, m, m, 11).batch(2, &idx);
    for (i, d) in b.drawn.iter().enumerate() {
        let p = pair(d);
        for (c, digit, r) in [(0, i, &p.first), (1, p.partner, &p.second)] {
            let (cx, cy, mass) = centroid(channel(&b.images, i, c), 42);
            // The source digit's own centre of mass, moved by the drawn
            // rotation, scale and placement (MNIST digits are centred by
            // mass at about 13.5, within a pixel or two).
            let src: Vec<f32> = m.image(digit).iter().map(|&v| v as f32 / 255.0).collect();
            let (sx, sy, smass) = centroid(&src, 28);
            let (dx, dy) = (sx - 13.5, sy - 13.5);
            let (sn, cs) = r.angle_deg.to_radians().sin_cos();
            let want_x = r.centre[0] + r.scale * (cs * dx + sn * dy);
            let want_y = r.centre[1] + r.scale * (-sn * dx + cs * dy);
            assert!(
                (cx - want_x).abs() < 1.0 && (cy - want_y).abs() < 1.0,
                "sample {i} channel {c}: ink at ({cx}, {cy}), drawn at ({want_x}, {want_y})"
            );
            // Scaling by s multiplies the ink by s².
            let ratio = mass / (smass * r.scale * r.scale);
            assert!(
                (0.9..1.1).contains(&ratio),
                "sample {i} channel {c}: {ratio}"
            );
        }
    }
}
