//! Example 1: the tape, node by node.
//!
//! Builds f(x, y) = sum( tanh(x·y + x) ), runs the reverse pass, and prints
//! every node's value and gradient next to the gradient computed by hand
//! with the chain rule. Run with `cargo run -p engine --example ex01_tape`.

use engine::{Tape, Tensor};

fn main() {
    let tape = Tape::new();
    let x = tape.leaf(Tensor::from_vec(vec![0.5, -1.0], &[2]));
    let y = tape.leaf(Tensor::from_vec(vec![2.0, 0.25], &[2]));

    // Forward: each op appends one node to the tape, in creation order.
    let p = x.mul(&y); //     p = x·y
    let s = p.add(&x); //     s = p + x
    let t = s.tanh(); //      t = tanh(s)
    let f = t.sum(); //       f = Σ t

    println!(
        "tape (creation order = topological order): {:?}\n",
        tape.op_names()
    );

    // Reverse: one walk from the last node back to the first.
    let g = f.backward_all();
    let show = |name: &str, v: &engine::Var| {
        println!(
            "{name:>2} = {:<22} ∂f/∂{name} = {:?}",
            format!("{:?}", v.value().data()),
            g.get(v).unwrap().data()
        );
    };
    show("f", &f);
    show("t", &t);
    show("s", &s);
    show("p", &p);
    show("x", &x);
    show("y", &y);

    // The same numbers by hand:
    //   ∂f/∂t = 1,  ∂f/∂s = 1 − tanh²(s),  ∂f/∂p = ∂f/∂s,
    //   ∂f/∂x = ∂f/∂p·y + ∂f/∂s  (x is used twice: the gradients add up),
    //   ∂f/∂y = ∂f/∂p·x.
    println!("\nby hand:");
    for i in 0..2 {
        let (xv, yv) = (x.value().data()[i], y.value().data()[i]);
        let ds = 1.0 - (xv * yv + xv).tanh().powi(2);
        println!(
            "  element {i}: ∂f/∂s = {ds:.6}, ∂f/∂x = {:.6}, ∂f/∂y = {:.6}",
            ds * yv + ds,
            ds * xv
        );
    }
}
