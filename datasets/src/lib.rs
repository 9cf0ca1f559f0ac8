//! datasets crate (under construction).
