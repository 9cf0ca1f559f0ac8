//! stn crate (under construction).
