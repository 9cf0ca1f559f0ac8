//! The distorted MNIST variants: determinism, parameter ranges, geometry.

use datasets::distort::{Distortions, Drawn, RotationParams};
use datasets::{DistortedMnist, Variant};
mod common;
use common::{centroid, in_pool, train};

const GEOMETRIC: [Variant; 5] = [
    Variant::R,
    Variant::Rts,
    Variant::P,
    Variant::E,
    Variant::Tc,
];

#[test]
fn same_seed_same_samples_any_order_any_threads() {
    let m = train();
    for v in GEOMETRIC {
        let d = DistortedMnist::new(v, m, m, 7);
        let a = in_pool(1, || d.batch(3, &[5, 17, 200]));
        let b = in_pool(2, || d.batch(3, &[200, 5, 17]));
        let side = d.side();
        let img = |t: &engine::Tensor, i: usize| {
            t.data()[i * side * side..(i + 1) * side * side].to_vec()
        };
        assert_eq!(img(&a.images, 0), img(&b.images, 1), "{v:?}: sample 5");
        assert_eq!(img(&a.images, 2), img(&b.images, 0), "{v:?}: sample 200");
        assert_eq!(a.drawn[1], b.drawn[2]);
        // Another epoch or another seed draws something else.
        assert_ne!(a.drawn[0], d.batch(4, &[5]).drawn[0], "{v:?}: epoch");
        let other = DistortedMnist::new(v, m, m, 8);
        assert_ne!(a.drawn[0], other.batch(3, &[5]).drawn[0], "{v:?}: seed");
    }
}

#[test]
fn shapes_labels_and_value_range() {
    let m = train();
    for (v, side) in [
        (Variant::Mnist, 28),
        (Variant::R, 28),
        (Variant::Rts, 42),
        (Variant::P, 28),
        (Variant::E, 28),
        (Variant::Tc, 60),
    ] {
        let d = DistortedMnist::new(v, m, m, 1);
        let b = d.range(0, 10, 32);
        assert_eq!(b.images.shape(), &[32, 1, side, side], "{v:?}");
        assert_eq!(b.labels, m.labels[10..42].to_vec());
        let (lo, hi) = b
            .images
            .data()
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), &x| (l.min(x), h.max(x)));
        assert!(
            lo >= 0.0 && hi <= 1.0 + 1e-6,
            "{v:?}: values in [{lo}, {hi}]"
        );
        assert!(hi > 0.5, "{v:?}: the digit is visible");
    }
}

#[test]
fn drawn_parameters_lie_in_the_stated_ranges() {
    let m = train();
    let n = 2000;
    let idx: Vec<usize> = (0..n).collect();
    let p = Distortions::default();
    let mut max_angle: f32 = 0.0;
    for d in DistortedMnist::new(Variant::R, m, m, 3)
        .batch(0, &idx)
        .drawn
    {
        let Drawn::R(r) = d else {
            panic!("R draws rotations")
        };
        assert!(r.angle_deg.abs() <= 90.0);
        max_angle = max_angle.max(r.angle_deg.abs());
    }
    assert!(max_angle > 85.0, "the range is used: {max_angle}");
    for d in DistortedMnist::new(Variant::Rts, m, m, 3)
        .batch(0, &idx)
        .drawn
    {
        let Drawn::Rts(r) = d else { panic!() };
        assert!(r.angle_deg.abs() <= 45.0);
        assert!((0.7..=1.2).contains(&r.scale));
        let half = 14.0 * r.scale;
        for c in r.centre {
            assert!(
                c >= half - 0.5 - 1e-4 && c <= 42.0 - half - 0.5 + 1e-4,
                "centre {c}"
            );
        }
    }
    let mut sq = 0.0f64;
    let mut count = 0;
    for d in DistortedMnist::new(Variant::P, m, m, 3)
        .batch(0, &idx)
        .drawn
    {
        let Drawn::P(r) = d else { panic!() };
        assert!((0.75..=1.0).contains(&r.scale));
        for o in r.corner_offsets.iter().flatten() {
            sq += (*o as f64).powi(2);
            count += 1;
        }
    }
    let std = (sq / count as f64).sqrt();
    assert!(
        (std - p.p.corner_std_px as f64).abs() < 0.15,
        "corner std {std}"
    );
    let (mut sq, mut count) = (0.0f64, 0);
    for d in DistortedMnist::new(Variant::E, m, m, 3)
        .batch(0, &idx[..500])
        .drawn
    {
        let Drawn::E(r) = d else { panic!() };
        assert!((0.75..=1.0).contains(&r.scale));
        assert_eq!(r.offsets.len(), 16);
        for o in r.offsets.iter().flatten() {
            sq += (*o as f64).powi(2);
            count += 1;
        }
    }
    let std = (sq / count as f64).sqrt();
    assert!((std - 1.5).abs() < 0.05, "control point std {std}");
    for d in DistortedMnist::new(Variant::Tc, m, m, 3)
        .batch(0, &idx[..500])
        .drawn
    {
        let Drawn::Tc(r) = d else { panic!() };
        assert!(r.position.iter().all(|&p| p <= 32));
        assert_eq!(r.distractors.len(), 6);
        for x in &r.distractors {
            assert!(x.source < m.len());
            assert!(x.from.iter().all(|&p| p <= 22) && x.to.iter().all(|&p| p <= 54));
        }
    }
}

#[test]
fn zero_rotation_reproduces_the_digit() {
    let m = train();
    let params = Distortions {
        r: RotationParams { max_degrees: 0.0 },
        ..Distortions::default()
    };
    let d = DistortedMnist::new(Variant::R, m, m, 1).with_params(params);
    let b = d.range(0, 0, 4);
    let plain = DistortedMnist::new(Variant::Mnist, m, m, 1).range(0, 0, 4);
    let err = b.images.max_abs_diff(&plain.images);
    assert!(err < 1e-5, "identity warp changed the digit by {err}");
}

#[test]
fn rts_puts_the_digit_where_drawn() {
    let m = train();
    let b = DistortedMnist::new(Variant::Rts, m, m, 5).range(0, 0, 64);
    for i in 0..64 {
        let img = &b.images.data()[i * 42 * 42..(i + 1) * 42 * 42];
        let (cx, cy, _) = centroid(img, 42);
        let Drawn::Rts(r) = &b.drawn[i] else { panic!() };
        // The digit's ink centroid is within a few pixels of the image centre,
        // moved by the drawn rotation and scale: a loose bound suffices.
        assert!(
            (cx - r.centre[0]).abs() < 8.0 && (cy - r.centre[1]).abs() < 8.0,
            "sample {i}: centroid ({cx}, {cy}), drawn centre {:?}",
            r.centre
        );
    }
}

#[test]
fn tc_pastes_the_digit_and_crops_exactly() {
    let m = train();
    let b = DistortedMnist::new(Variant::Tc, m, m, 5).range(0, 0, 32);
    for i in 0..32 {
        let img = &b.images.data()[i * 3600..(i + 1) * 3600];
        let Drawn::Tc(t) = &b.drawn[i] else { panic!() };
        let mut covered = vec![false; 3600];
        for (y, row) in covered.chunks_mut(60).enumerate() {
            for (x, c) in row.iter_mut().enumerate() {
                let inside = |p: [usize; 2], w: usize| {
                    x >= p[0] && x < p[0] + w && y >= p[1] && y < p[1] + w
                };
                let digit = inside(t.position, 28);
                *c = digit || t.distractors.iter().any(|d| inside(d.to, t.crop));
                let v = img[y * 60 + x];
                if digit {
                    let src =
                        m.image(i)[(y - t.position[1]) * 28 + x - t.position[0]] as f32 / 255.0;
                    assert!(
                        v >= src - 1e-6 && v <= 1.0,
                        "sample {i} ({x},{y}): {v} < digit {src}"
                    );
                }
            }
        }
        for (v, c) in img.iter().zip(&covered) {
            assert!(
                *c || *v == 0.0,
                "sample {i}: ink outside the digit and the crops"
            );
        }
    }
}

#[test]
fn no_distortion_loses_the_digit() {
    // Every sample keeps visible ink: in particular P never folds the digit
    // out of the picture (its corner noise is redrawn until the view is convex).
    let m = train();
    for v in [
        Variant::R,
        Variant::Rts,
        Variant::P,
        Variant::E,
        Variant::Tc,
    ] {
        let d = DistortedMnist::new(v, m, m, 11);
        let b = d.range(0, 0, m.len());
        let px = d.side() * d.side();
        let blank = b
            .images
            .data()
            .chunks(px)
            .filter(|img| img.iter().fold(0.0f32, |a, &x| a.max(x)) < 0.3)
            .count();
        assert_eq!(
            blank,
            0,
            "{v:?}: {blank} of {} images lost the digit",
            m.len()
        );
    }
}
