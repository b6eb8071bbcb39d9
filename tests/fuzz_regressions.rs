//! The `json_bodies` fuzz target's corpus and crash reproducers (`fuzz/corpus`,
//! `fuzz/regressions`) replayed through the very check the target runs (`fuzz/src/service.rs`),
//! on stable `cargo test`.

#[path = "../fuzz/src/service.rs"]
mod checks;
#[path = "../fuzz/src/replay.rs"]
mod replay;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

#[test]
fn json_bodies_inputs() {
    replay::replay(&fuzz_dir(), "json_bodies", checks::json_bodies);
}
