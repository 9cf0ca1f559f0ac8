//! The reverse-mode tape.
//!
//! A [`Tape`] is a list of nodes in creation order. A tracked [`Var`] is a value
//! plus the index of the node that made it. Because a node can only be created
//! after its inputs, creation order is a topological order: the backward pass
//! is a plain reverse walk over the list, with no graph search.
//!
//! Values that do not depend on any tracked leaf are never recorded: an
//! evaluation path (inference, data generation) built from [`Var::constant`]
//! values costs no tape memory at all.
//!
//! Broadcasting ops return their input gradients in the broadcast (output)
//! shape; the walk reduces each one back to its input's shape in exactly one
//! place ([`Tensor::sum_to_shape`] in [`Var::backward`]).

use crate::Tensor;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

/// A backward function: given ∂L/∂output and which inputs need a gradient,
/// returns ∂L/∂input for each input (`None` where not needed or zero).
pub type BackwardFn = Box<dyn Fn(&Tensor, &[bool]) -> Vec<Option<Tensor>>>;

struct Node {
    name: &'static str,
    shape: Vec<usize>,
    /// One entry per op input; `None` for an untracked (constant) input.
    parents: Vec<Option<usize>>,
    /// `None` for a leaf.
    backward: Option<BackwardFn>,
}

struct TapeInner {
    nodes: RefCell<Vec<Node>>,
}

/// A recording of tracked operations, shared by all the `Var`s made on it.
#[derive(Clone)]
pub struct Tape(Rc<TapeInner>);

impl Default for Tape {
    fn default() -> Self {
        Tape::new()
    }
}

impl fmt::Debug for Tape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tape({} nodes)", self.len())
    }
}

impl Tape {
    /// An empty tape.
    pub fn new() -> Tape {
        Tape(Rc::new(TapeInner {
            nodes: RefCell::new(Vec::new()),
        }))
    }

    /// A leaf that asks for a gradient: [`Var::backward`] fills its gradient.
    pub fn leaf(&self, value: Tensor) -> Var {
        let id = self.push(Node {
            name: "leaf",
            shape: value.shape().to_vec(),
            parents: Vec::new(),
            backward: None,
        });
        Var {
            value,
            node: Some((self.clone(), id)),
        }
    }

    /// Number of recorded nodes (leaves included).
    pub fn len(&self) -> usize {
        self.0.nodes.borrow().len()
    }

    /// True if nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The op names in creation order (for teaching and debugging).
    pub fn op_names(&self) -> Vec<&'static str> {
        self.0.nodes.borrow().iter().map(|n| n.name).collect()
    }

    fn push(&self, node: Node) -> usize {
        let mut nodes = self.0.nodes.borrow_mut();
        nodes.push(node);
        nodes.len() - 1
    }

    fn same(&self, other: &Tape) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

/// A value that may be tracked on a tape.
#[derive(Clone)]
pub struct Var {
    value: Tensor,
    node: Option<(Tape, usize)>,
}

impl fmt::Debug for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some((_, id)) => write!(f, "Var#{id}({:?})", self.value),
            None => write!(f, "Var(const {:?})", self.value),
        }
    }
}

impl Var {
    /// An untracked value: ops on constants only record nothing.
    pub fn constant(value: Tensor) -> Var {
        Var { value, node: None }
    }

    /// The value.
    pub fn value(&self) -> &Tensor {
        &self.value
    }

    /// The shape of the value.
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// True if the value depends on a leaf that asked for a gradient.
    pub fn is_tracked(&self) -> bool {
        self.node.is_some()
    }

    /// The tape this value is recorded on, if any.
    pub fn tape(&self) -> Option<&Tape> {
        self.node.as_ref().map(|(t, _)| t)
    }

    /// The node index on its tape, if tracked.
    pub fn node_id(&self) -> Option<usize> {
        self.node.as_ref().map(|(_, i)| *i)
    }

    /// The same value, no longer tracked (gradients stop here).
    pub fn detach(&self) -> Var {
        Var::constant(self.value.clone())
    }

    /// Records an op with a hand-written backward.
    ///
    /// `output` is the op's forward value, computed by the caller from the
    /// inputs' values. `backward(g, needs)` receives ∂L/∂output and, for each
    /// input, whether it needs a gradient; it returns one entry per input.
    /// A returned gradient may have the broadcast (output) shape: the tape
    /// reduces it to the input's shape.
    ///
    /// If no input is tracked, nothing is recorded and `backward` is dropped.
    ///
    /// # Panics
    /// If tracked inputs come from different tapes.
    pub fn custom_op(
        name: &'static str,
        inputs: &[&Var],
        output: Tensor,
        backward: impl Fn(&Tensor, &[bool]) -> Vec<Option<Tensor>> + 'static,
    ) -> Var {
        let mut tape: Option<&Tape> = None;
        for v in inputs {
            if let Some((t, _)) = &v.node {
                match tape {
                    None => tape = Some(t),
                    Some(t0) => {
                        assert!(t0.same(t), "{name}: inputs are recorded on different tapes")
                    }
                }
            }
        }
        let Some(tape) = tape else {
            return Var::constant(output);
        };
        let id = tape.push(Node {
            name,
            shape: output.shape().to_vec(),
            parents: inputs.iter().map(|v| v.node_id()).collect(),
            backward: Some(Box::new(backward)),
        });
        Var {
            value: output,
            node: Some((tape.clone(), id)),
        }
    }

    /// Reverse pass from this scalar: the gradient of every leaf it depends on.
    ///
    /// A value used several times receives the sum of its gradients.
    ///
    /// # Panics
    /// If the value is not a single element or is not tracked.
    pub fn backward(&self) -> Grads {
        assert!(
            self.value.numel() == 1,
            "backward: the output must be a scalar, got shape {:?}",
            self.shape()
        );
        self.backward_with(Tensor::ones(self.shape()))
    }

    /// Reverse pass seeded with ∂L/∂self = `seed` (same shape as the value).
    pub fn backward_with(&self, seed: Tensor) -> Grads {
        self.reverse(seed, false)
    }

    /// Like [`Var::backward`], but keeps the gradient of every node, not just
    /// of the leaves, so [`Grads::get`] answers for intermediate values too.
    /// Meant for teaching and debugging: it holds every gradient in memory.
    pub fn backward_all(&self) -> Grads {
        assert!(
            self.value.numel() == 1,
            "backward_all: the output must be a scalar, got shape {:?}",
            self.shape()
        );
        self.reverse(Tensor::ones(self.shape()), true)
    }

    fn reverse(&self, seed: Tensor, keep_all: bool) -> Grads {
        let (tape, root) = self
            .node
            .as_ref()
            .expect("backward: the value is not tracked (no leaf asked for a gradient)");
        assert_eq!(
            seed.shape(),
            self.shape(),
            "backward_with: seed shape {:?} vs value shape {:?}",
            seed.shape(),
            self.shape()
        );
        let nodes = tape.0.nodes.borrow();
        let mut grads: Vec<Option<Tensor>> = vec![None; root + 1];
        grads[*root] = Some(seed);
        let mut leaves = HashMap::new();
        for i in (0..=*root).rev() {
            let Some(g) = grads[i].take() else { continue };
            let node = &nodes[i];
            let Some(backward) = &node.backward else {
                leaves.insert(i, g);
                continue;
            };
            if keep_all {
                leaves.insert(i, g.clone());
            }
            let needs: Vec<bool> = node.parents.iter().map(Option::is_some).collect();
            let parent_grads = backward(&g, &needs);
            assert_eq!(
                parent_grads.len(),
                node.parents.len(),
                "{}: backward returned {} gradients for {} inputs",
                node.name,
                parent_grads.len(),
                node.parents.len()
            );
            for (parent, pg) in node.parents.iter().zip(parent_grads) {
                let (Some(p), Some(pg)) = (parent, pg) else {
                    continue;
                };
                // The one place where broadcast gradients are reduced.
                let pg = pg.sum_to_shape(&nodes[*p].shape);
                accumulate(&mut grads[*p], pg);
            }
        }
        Grads {
            tape: tape.clone(),
            leaves,
        }
    }
}

fn accumulate(slot: &mut Option<Tensor>, g: Tensor) {
    match slot {
        None => *slot = Some(g),
        Some(acc) => {
            for (a, b) in acc.data_mut().iter_mut().zip(g.data()) {
                *a += b;
            }
        }
    }
}

/// The leaf gradients of one backward pass.
pub struct Grads {
    tape: Tape,
    leaves: HashMap<usize, Tensor>,
}

impl Grads {
    /// ∂L/∂leaf (or ∂L/∂value of any node after [`Var::backward_all`]), or
    /// `None` if the output does not depend on it.
    ///
    /// # Panics
    /// If `leaf` is recorded on another tape.
    pub fn get(&self, leaf: &Var) -> Option<&Tensor> {
        let (tape, id) = leaf.node.as_ref()?;
        assert!(
            tape.same(&self.tape),
            "Grads::get: the variable belongs to another tape"
        );
        self.leaves.get(id)
    }

    /// ∂L/∂leaf, or zeros of the leaf's shape if the output does not depend on it.
    pub fn get_or_zeros(&self, leaf: &Var) -> Tensor {
        self.get(leaf)
            .cloned()
            .unwrap_or_else(|| Tensor::zeros(leaf.shape()))
    }
}
