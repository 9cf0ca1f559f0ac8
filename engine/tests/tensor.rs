//! Tensor construction, shape ops, broadcasting, reductions and products
//! against hand-computed values.

use engine::rng::seeded;
use engine::{ShapeError, Tensor};

fn t(v: &[f32], s: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), s)
}

#[test]
fn constructors() {
    assert_eq!(Tensor::zeros(&[2, 3]).data(), &[0.0; 6]);
    assert_eq!(Tensor::ones(&[2]).data(), &[1.0, 1.0]);
    assert_eq!(Tensor::full(&[1, 2], 7.5).data(), &[7.5, 7.5]);
    assert_eq!(Tensor::arange(4).data(), &[0.0, 1.0, 2.0, 3.0]);
    assert_eq!(
        Tensor::linspace(-1.0, 1.0, 5).data(),
        &[-1.0, -0.5, 0.0, 0.5, 1.0]
    );
    assert_eq!(Tensor::scalar(3.0).shape(), &[] as &[usize]);
    assert_eq!(
        Tensor::try_from_vec(vec![1.0; 5], &[2, 3]),
        Err(ShapeError::LengthMismatch {
            shape: vec![2, 3],
            len: 5
        })
    );
    assert!(matches!(
        Tensor::try_from_vec(vec![], &[usize::MAX, 3]),
        Err(ShapeError::Overflow { .. })
    ));
}

#[test]
#[should_panic(expected = "shape [2, 3] holds 6 values but 5 were given")]
fn from_vec_checks_length() {
    Tensor::from_vec(vec![0.0; 5], &[2, 3]);
}

#[test]
fn seeded_random_tensors_repeat_and_have_the_right_moments() {
    let a = Tensor::normal(&[10000], 1.0, 2.0, &mut seeded(3));
    let b = Tensor::normal(&[10000], 1.0, 2.0, &mut seeded(3));
    assert_eq!(a, b);
    let mean = a.mean_all();
    let var = a.affine(1.0, -mean).powi(2).mean_all();
    assert!((mean - 1.0).abs() < 0.06, "mean {mean}");
    assert!((var.sqrt() - 2.0).abs() < 0.06, "std {}", var.sqrt());
    let u = Tensor::uniform(&[10000], -1.0, 3.0, &mut seeded(4));
    assert!(u.data().iter().all(|&v| (-1.0..3.0).contains(&v)));
    assert!((u.mean_all() - 1.0).abs() < 0.05);
}

#[test]
fn clone_shares_storage_and_writes_copy() {
    let a = Tensor::arange(3);
    let mut b = a.clone();
    assert!(a.shares_storage(&b));
    b.data_mut()[0] = 9.0;
    assert_eq!(a.data(), &[0.0, 1.0, 2.0]);
    assert_eq!(b.data(), &[9.0, 1.0, 2.0]);
}

#[test]
fn shape_ops_move_values() {
    let a = Tensor::arange(6).reshape(&[2, 3]);
    assert_eq!(a.transpose(0, 1).data(), &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    let b = Tensor::arange(24).reshape(&[2, 3, 4]);
    let p = b.permute(&[2, 0, 1]);
    assert_eq!(p.shape(), &[4, 2, 3]);
    assert_eq!(p.at(&[3, 1, 2]), b.at(&[1, 2, 3]));
    assert_eq!(b.narrow(1, 1, 2).shape(), &[2, 2, 4]);
    assert_eq!(
        b.narrow(2, 3, 1).data(),
        &[3.0, 7.0, 11.0, 15.0, 19.0, 23.0]
    );
    let c = Tensor::concat(&[&a, &Tensor::full(&[2, 1], -1.0)], 1);
    assert_eq!(c.data(), &[0.0, 1.0, 2.0, -1.0, 3.0, 4.0, 5.0, -1.0]);
    let s = Tensor::stack(&[&Tensor::arange(2), &Tensor::ones(&[2])], 1);
    assert_eq!(s.shape(), &[2, 2]);
    assert_eq!(s.data(), &[0.0, 1.0, 1.0, 1.0]);
}

#[test]
#[should_panic(expected = "reshape: cannot reshape [2, 3]")]
fn reshape_checks_size() {
    Tensor::zeros(&[2, 3]).reshape(&[4]);
}

#[test]
fn broadcasting_arithmetic() {
    let a = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let row = t(&[10.0, 20.0, 30.0], &[3]);
    let col = t(&[100.0, 200.0], &[2, 1]);
    assert_eq!(a.add(&row).data(), &[11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
    assert_eq!(
        a.sub(&col).data(),
        &[-99.0, -98.0, -97.0, -196.0, -195.0, -194.0]
    );
    assert_eq!(row.add(&col).shape(), &[2, 3]);
    assert_eq!(
        a.mul(&Tensor::scalar(2.0)).data(),
        &[2.0, 4.0, 6.0, 8.0, 10.0, 12.0]
    );
    assert_eq!(a.div(&row).at(&[1, 2]), 0.2);
    // Gradient reduction is the inverse of broadcasting.
    assert_eq!(a.sum_to_shape(&[3]).data(), &[5.0, 7.0, 9.0]);
    assert_eq!(a.sum_to_shape(&[2, 1]).data(), &[6.0, 15.0]);
    assert_eq!(a.sum_to_shape(&[]).data(), &[21.0]);
}

#[test]
#[should_panic(expected = "add: shapes [2, 3] and [2] do not broadcast")]
fn incompatible_shapes_name_the_op() {
    Tensor::zeros(&[2, 3]).add(&Tensor::zeros(&[2]));
}

#[test]
fn unary_functions() {
    let a = t(&[-2.0, 0.0, 0.5], &[3]);
    assert_eq!(a.relu().data(), &[0.0, 0.0, 0.5]);
    assert_eq!(a.abs().data(), &[2.0, 0.0, 0.5]);
    assert!((a.sigmoid().data()[0] - 0.119_202_92).abs() < 1e-7);
    assert_eq!(Tensor::full(&[1], -1000.0).sigmoid().data(), &[0.0]);
    assert!((a.tanh().data()[2] - 0.462_117_16).abs() < 1e-7);
    assert_eq!(t(&[4.0], &[1]).sqrt().data(), &[2.0]);
    assert_eq!(Tensor::zeros(&[1]).exp().data(), &[1.0]);
    assert_eq!(Tensor::ones(&[1]).log().data(), &[0.0]);
}

#[test]
fn reductions() {
    let a = t(&[1.0, 5.0, 3.0, 4.0, 2.0, 6.0], &[2, 3]);
    assert_eq!(a.sum_all(), 21.0);
    assert_eq!(a.mean_all(), 3.5);
    assert_eq!(a.max_all(), 6.0);
    assert_eq!(a.sum_axis(0, false).data(), &[5.0, 7.0, 9.0]);
    assert_eq!(a.sum_axis(1, true).shape(), &[2, 1]);
    assert_eq!(a.sum_axis(1, true).data(), &[9.0, 12.0]);
    assert_eq!(a.mean_axis(1, false).data(), &[3.0, 4.0]);
    assert_eq!(a.max_axis(1, false).data(), &[5.0, 6.0]);
    assert_eq!(a.argmax_axis(1), vec![1, 2]);
    assert_eq!(a.argmax_axis(0), vec![1, 0, 1]);
    // Ties: the first index wins.
    assert_eq!(t(&[2.0, 7.0, 7.0], &[3]).argmax_axis(0), vec![1]);
}

#[test]
fn softmax_values() {
    let a = t(&[1.0, 2.0, 3.0, 1000.0, 1000.0, 1000.0], &[2, 3]);
    let s = a.softmax(1);
    let e: Vec<f32> = [1.0f32, 2.0, 3.0].iter().map(|v| v.exp()).collect();
    let z: f32 = e.iter().sum();
    for (j, ej) in e.iter().enumerate() {
        assert!((s.at(&[0, j]) - ej / z).abs() < 1e-7);
        assert!(
            (s.at(&[1, j]) - 1.0 / 3.0).abs() < 1e-7,
            "stable for large inputs"
        );
    }
    let ls = a.log_softmax(1);
    assert!((ls.at(&[0, 2]) - (e[2] / z).ln()).abs() < 1e-6);
    assert!(ls.all_finite());
}

#[test]
fn matmul_matches_hand_and_safe_reference() {
    let a = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let b = t(&[7.0, 8.0, 9.0, 10.0, 11.0, 12.0], &[3, 2]);
    assert_eq!(a.matmul(&b).data(), &[58.0, 64.0, 139.0, 154.0]);
    // Batched: two copies give two copies of the result.
    let ab = Tensor::stack(&[&a, &a.scale(2.0)], 0);
    let bb = Tensor::stack(&[&b, &b], 0);
    assert_eq!(
        ab.matmul(&bb).data(),
        &[58.0, 64.0, 139.0, 154.0, 116.0, 128.0, 278.0, 308.0]
    );
    // Larger, transposed operands against the safe reference kernel.
    let mut rng = seeded(9);
    let (m, k, n) = (150, 70, 90);
    let x = Tensor::normal(&[k, m], 0.0, 1.0, &mut rng);
    let y = Tensor::normal(&[n, k], 0.0, 1.0, &mut rng);
    let mut fast = vec![0.0; m * n];
    engine::gemm(m, k, n, x.data(), true, y.data(), true, &mut fast, false);
    let mut slow = vec![0.0; m * n];
    engine::ops::matmul::gemm_safe(
        m,
        0,
        m,
        k,
        n,
        x.data(),
        true,
        y.data(),
        true,
        &mut slow,
        false,
    );
    let err = fast
        .iter()
        .zip(&slow)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(err < 1e-4, "max error {err}");
}

#[test]
#[should_panic(expected = "matmul: shapes [2, 3] and [2, 3] do not multiply")]
fn matmul_checks_shapes() {
    Tensor::zeros(&[2, 3]).matmul(&Tensor::zeros(&[2, 3]));
}
