//! Tape semantics: leaves, accumulation, constants, creation order.

use engine::{Tape, Tensor, Var};

#[test]
fn gradients_of_a_small_expression() {
    // f = (x·y + x)² summed, at x = [1, 2], y = [3, 4].
    let tape = Tape::new();
    let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0], &[2]));
    let y = tape.leaf(Tensor::from_vec(vec![3.0, 4.0], &[2]));
    let u = &(&x * &y) + &x;
    let f = u.mul(&u).sum();
    assert_eq!(f.value().item(), 16.0 + 100.0);
    let g = f.backward();
    // ∂f/∂x = 2u(y + 1), ∂f/∂y = 2u·x
    assert_eq!(g.get(&x).unwrap().data(), &[32.0, 100.0]);
    assert_eq!(g.get(&y).unwrap().data(), &[8.0, 40.0]);
}

#[test]
fn a_value_used_twice_accumulates_both_gradients() {
    let tape = Tape::new();
    let x = tape.leaf(Tensor::from_vec(vec![3.0], &[1]));
    let f = x.add(&x).add(&x.scale(4.0)).sum(); // 6x
    assert_eq!(f.backward().get(&x).unwrap().data(), &[6.0]);
}

#[test]
fn constants_record_nothing_and_get_no_gradient() {
    let tape = Tape::new();
    let c = Var::constant(Tensor::ones(&[3]));
    let d = c.exp().mul(&c).sum();
    assert!(!d.is_tracked());
    assert!(
        tape.is_empty(),
        "an evaluation path must not touch the tape"
    );
    let x = tape.leaf(Tensor::ones(&[3]));
    let before = tape.len();
    let f = x.mul(&c).sum();
    assert_eq!(tape.len(), before + 2);
    let g = f.backward();
    assert!(g.get(&c).is_none());
    assert_eq!(g.get(&x).unwrap().data(), &[1.0, 1.0, 1.0]);
}

#[test]
fn unused_leaf_has_no_gradient_and_creation_order_is_recorded() {
    let tape = Tape::new();
    let x = tape.leaf(Tensor::ones(&[2]));
    let unused = tape.leaf(Tensor::ones(&[2]));
    let f = x.relu().sum();
    assert_eq!(tape.op_names(), vec!["leaf", "leaf", "relu", "sum"]);
    let g = f.backward();
    assert!(g.get(&unused).is_none());
    assert_eq!(g.get_or_zeros(&unused).data(), &[0.0, 0.0]);
}

#[test]
fn broadcast_gradient_is_reduced_to_the_input_shape() {
    let tape = Tape::new();
    let x = tape.leaf(Tensor::ones(&[2, 3]));
    let b = tape.leaf(Tensor::ones(&[3]));
    let f = x.add(&b).sum();
    let g = f.backward();
    assert_eq!(g.get(&b).unwrap().shape(), &[3]);
    assert_eq!(g.get(&b).unwrap().data(), &[2.0, 2.0, 2.0]);
}

#[test]
#[should_panic(expected = "backward: the output must be a scalar")]
fn backward_needs_a_scalar() {
    let tape = Tape::new();
    tape.leaf(Tensor::ones(&[2])).exp().backward();
}

#[test]
#[should_panic(expected = "inputs are recorded on different tapes")]
fn mixing_tapes_is_refused() {
    let (t1, t2) = (Tape::new(), Tape::new());
    let _ = t1
        .leaf(Tensor::ones(&[1]))
        .add(&t2.leaf(Tensor::ones(&[1])));
}

#[test]
fn backward_all_keeps_intermediate_gradients() {
    let tape = Tape::new();
    let x = tape.leaf(Tensor::from_vec(vec![2.0], &[1]));
    let u = x.mul(&x); // u = x², ∂f/∂u = 3
    let f = u.scale(3.0).sum();
    let g = f.backward_all();
    assert_eq!(g.get(&u).unwrap().data(), &[3.0]);
    assert_eq!(g.get(&x).unwrap().data(), &[12.0]);
    // A plain backward keeps only the leaves.
    assert!(f.backward().get(&u).is_none());
}
