//! The counter scanner: `scanner-sim` on a pty, `pharmacy scan --serial` releases.
