//! The sampler as an op on the engine's tape.

use super::{grid_sample, grid_sample_backward_masked, SampleOptions};
use engine::Var;

/// [`grid_sample`] recorded on the tape: gradients flow to the input (eq. 6)
/// and to the grid (eq. 7), each computed only if that input needs one (an
/// untracked image skips the scatter into ∂input).
///
/// # Panics
/// As [`grid_sample`].
pub fn grid_sample_var(input: &Var, grid: &Var, opts: SampleOptions) -> Var {
    let output = grid_sample(input.value(), grid.value(), opts);
    let (u, g) = (input.value().clone(), grid.value().clone());
    Var::custom_op("grid_sample", &[input, grid], output, move |gout, needs| {
        let (gu, gg) = grid_sample_backward_masked(&u, &g, gout, opts, needs[0], needs[1]);
        vec![gu, gg]
    })
}
