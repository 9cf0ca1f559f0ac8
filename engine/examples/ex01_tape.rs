//! Example 1: the tape, node by node.
//!
//! Builds f(x, y) = sum( tanh(x·y + x) ), runs the reverse pass, and prints
//! every node's value and gradient next to the gradient computed by hand
//! with the chain rule. Then adds an op of its own to the tape
//! (`Var::custom_op`: softplus with a hand-written backward) and lets
//! `gradcheck` compare that backward with finite differences — once right,
//! once with a deliberate slip that the check catches.
//! Run with `cargo run -p engine --example ex01_tape`.

use engine::{gradcheck, GradcheckOptions, Tape, Tensor, Var};

/// softplus(x) = ln(1 + eˣ), recorded as one node. Its backward is
/// ∂L/∂x = ∂L/∂y · σ(x) (σ the logistic function); `slip` scales it, to
/// show what a wrong backward looks like to `gradcheck`.
fn softplus(x: &Var, slip: f32) -> Var {
    let xv = x.value().clone();
    let y = xv.map(|v| v.max(0.0) + (-v.abs()).exp().ln_1p());
    Var::custom_op("softplus", &[x], y, move |g, needs| {
        let sigma = xv.map(|v| slip / (1.0 + (-v).exp()));
        vec![needs[0].then(|| g.mul(&sigma))]
    })
}

fn main() {
    tape_by_hand();
    custom_op_and_gradcheck();
}

fn tape_by_hand() {
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

fn custom_op_and_gradcheck() {
    println!("\n-- a custom op, checked against finite differences --");
    let x = Tensor::from_vec(vec![-2.0, -0.3, 0.4, 1.5, 3.0], &[5]);
    let opts = GradcheckOptions::default();
    // The right backward: every directional derivative agrees.
    let report = gradcheck(|v| softplus(&v[0], 1.0), std::slice::from_ref(&x), &opts)
        .expect("the right backward passes gradcheck");
    println!("softplus with ∂y/∂x = σ(x): gradcheck passed");
    for c in &report.checks {
        println!(
            "  along {:<9} tape {:>10.6}, finite differences {:>10.6}",
            c.label, c.analytic, c.numeric
        );
    }
    // A backward 1% off: gradcheck names the direction where it disagrees.
    let e = gradcheck(|v| softplus(&v[0], 1.01), &[x], &opts)
        .expect_err("a backward 1% off fails gradcheck");
    println!("softplus with ∂y/∂x = 1.01·σ(x): caught: {e}");
}
