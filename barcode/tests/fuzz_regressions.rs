//! The fuzz targets' corpora and crash reproducers (`fuzz/corpus`, `fuzz/regressions`) replayed
//! through the very checks the targets run (`fuzz/src/barcode.rs`), on stable `cargo test`.

#[path = "../../fuzz/src/barcode.rs"]
mod checks;
#[path = "../../fuzz/src/replay.rs"]
mod replay;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

#[test]
fn token_parse_inputs() {
    replay::replay(&fuzz_dir(), "token_parse", checks::token_parse);
}

#[test]
fn prescription_id_parse_inputs() {
    replay::replay(
        &fuzz_dir(),
        "prescription_id_parse",
        checks::prescription_id_parse,
    );
}

#[test]
fn image_decode_inputs() {
    let decoder = checks::image_decoder();
    replay::replay(&fuzz_dir(), "image_decode", |data| {
        checks::image_decode(&decoder, data)
    });
}
