//! gradcheck must reject a backward that is wrong by 1% or has a sign error,
//! and accept the correct one.

use engine::{gradcheck, GradcheckError, GradcheckOptions, Tensor, Var};

/// y = x², with the backward scaled by `factor`.
fn square_with_backward(x: &Var, factor: f32) -> Var {
    let v = x.value().clone();
    Var::custom_op("bad_square", &[x], v.mul(&v), move |g, _| {
        vec![Some(g.mul(&v).scale(2.0 * factor))]
    })
}

/// y = a·b with the gradient of `b` wrong by `factor`.
fn mul_wrong_rhs(a: &Var, b: &Var, factor: f32) -> Var {
    let (av, bv) = (a.value().clone(), b.value().clone());
    Var::custom_op("bad_mul", &[a, b], av.mul(&bv), move |g, _| {
        vec![Some(g.mul(&bv)), Some(g.mul(&av).scale(factor))]
    })
}

fn input(n: usize, offset: f32) -> Tensor {
    Tensor::from_vec(
        (0..n).map(|i| offset + 0.37 * (i as f32).sin()).collect(),
        &[n],
    )
}

#[test]
fn correct_backward_passes() {
    let opts = GradcheckOptions::default();
    gradcheck(
        |x| square_with_backward(&x[0], 1.0),
        &[input(20, 0.5)],
        &opts,
    )
    .unwrap();
    gradcheck(
        |x| mul_wrong_rhs(&x[0], &x[1], 1.0),
        &[input(20, 0.5), input(20, -0.8)],
        &opts,
    )
    .unwrap();
}

#[test]
fn one_percent_scale_error_is_rejected() {
    let opts = GradcheckOptions::default();
    for factor in [1.01, 0.99] {
        let r = gradcheck(
            |x| square_with_backward(&x[0], factor),
            &[input(20, 0.5)],
            &opts,
        );
        assert!(
            matches!(r, Err(GradcheckError::Mismatch(_))),
            "factor {factor}: {r:?}"
        );
    }
    // Only one of two inputs is wrong, by 1%.
    let r = gradcheck(
        |x| mul_wrong_rhs(&x[0], &x[1], 1.01),
        &[input(200, 0.5), input(200, -0.8)],
        &opts,
    );
    assert!(matches!(r, Err(GradcheckError::Mismatch(_))), "{r:?}");
}

#[test]
fn sign_error_is_rejected() {
    let opts = GradcheckOptions::default();
    let r = gradcheck(
        |x| square_with_backward(&x[0], -1.0),
        &[input(20, 0.5)],
        &opts,
    );
    assert!(matches!(r, Err(GradcheckError::Mismatch(_))), "{r:?}");
    let r = gradcheck(
        |x| mul_wrong_rhs(&x[0], &x[1], -1.0),
        &[input(50, 0.5), input(50, -0.8)],
        &opts,
    );
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("finite differences"), "{msg}");
}

#[test]
fn untracked_output_is_an_error() {
    let r = gradcheck(
        |_| Var::constant(Tensor::ones(&[2])),
        &[input(3, 0.0)],
        &GradcheckOptions::default(),
    );
    assert!(matches!(r, Err(GradcheckError::NotTracked)));
}
