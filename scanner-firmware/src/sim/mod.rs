//! The host simulator behind `scanner-sim`: simulated hardware for the firmware core.

pub mod devices;
pub mod optics;
pub mod runner;
