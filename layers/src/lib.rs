//! layers crate (under construction).
