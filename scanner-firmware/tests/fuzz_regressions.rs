//! The fuzz targets' corpora and crash reproducers (`fuzz/corpus`, `fuzz/regressions`) replayed
//! through the very checks the targets run (`fuzz/src/firmware.rs`), on stable `cargo test`.

#[path = "../../fuzz/src/firmware.rs"]
mod checks;
#[path = "../../fuzz/src/replay.rs"]
mod replay;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

#[test]
fn host_link_decode_inputs() {
    replay::replay(&fuzz_dir(), "host_link_decode", checks::host_link_decode);
}

#[test]
fn ssi_parse_inputs() {
    replay::replay(&fuzz_dir(), "ssi_parse", checks::ssi_parse);
}

#[test]
fn hid_reports_inputs() {
    replay::replay(&fuzz_dir(), "hid_reports", checks::hid_reports);
}
