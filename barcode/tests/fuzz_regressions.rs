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
fn gs1_parse_inputs() {
    replay::replay(&fuzz_dir(), "gs1_parse", checks::gs1_parse);
}

#[test]
fn image_decode_inputs() {
    let decoder = checks::image_decoder();
    replay::replay(&fuzz_dir(), "image_decode", |data| {
        checks::image_decode(&decoder, data)
    });
}

/// Fuzz finding (image_decode): a corrupt baseline JPEG trips a `debug_assert!` in zune-jpeg's
/// bit reader (`bits_left >= n`; release builds saturate instead). The pipeline's
/// `catch_unwind` around the codec must turn it into an error, never a panic reaching the
/// caller; this test runs with debug assertions on, so the assertion really fires here.
#[test]
fn zune_jpeg_debug_assertion_is_contained() {
    let data =
        std::fs::read(fuzz_dir().join("regressions/image_decode/zune-jpeg-drop-bits-debug-assert"))
            .expect("the committed reproducer");
    let result = checks::image_decoder().decode_bytes(&data[1..]);
    assert!(result.is_err(), "{result:?}");
}
