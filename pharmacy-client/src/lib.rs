//! Prescrypt pharmacy client (see the crate README).
