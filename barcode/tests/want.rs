//! `Want`: the pipeline stops as soon as it has what the caller asked for, in the library and
//! through `rx-barcode decode --want`.
#![allow(clippy::unwrap_used)] // test helpers panic on broken fixtures, like the tests

mod common;

use std::process::Command;

use prescrypt_barcode::decode::{CodeFormat, DecodeOptions, Decoder, Payload, Want};
use prescrypt_barcode::render::{self, Dpi};
use serde_json::Value;

fn label() -> image::GrayImage {
    let sheet = render::TokenSheet::new(&common::token(), Dpi::LASER_300);
    render::token_label_image(&sheet).unwrap()
}

fn decoder(want: Want) -> Decoder {
    Decoder::new(DecodeOptions {
        want,
        ..*common::decoder().options()
    })
}

fn formats(want: Want) -> Vec<CodeFormat> {
    decoder(want)
        .decode_luma(&label())
        .into_iter()
        .map(|code| code.format)
        .collect()
}

#[test]
fn each_want_stops_at_what_it_asks_for() {
    assert_eq!(
        formats(Want::All),
        vec![CodeFormat::Code128, CodeFormat::DataMatrix]
    );
    assert_eq!(formats(Want::Token), vec![CodeFormat::DataMatrix]);
    assert_eq!(formats(Want::Id), vec![CodeFormat::Code128]);
    assert_eq!(formats(Want::Any).len(), 1);
}

/// The counter asks for the token; a label with only the ID still yields the ID (fallback).
#[test]
fn token_wanted_falls_back_to_the_id() {
    let bars = render::code128_image(
        &common::id(),
        Dpi::LASER_300,
        render::Orientation::Horizontal,
    )
    .unwrap();
    let codes = decoder(Want::Token).decode_luma(&bars);
    assert_eq!(codes.len(), 1, "{codes:?}");
    assert!(matches!(codes[0].payload, Payload::PrescriptionId(id) if id == common::id()));
}

#[test]
fn the_library_default_is_the_counters_need() {
    assert_eq!(DecodeOptions::default().want, Want::Token);
    for want in [Want::Token, Want::Id, Want::Any, Want::All] {
        assert_eq!(Want::from_name(want.name()), Some(want));
    }
    assert_eq!(Want::from_name("both"), None);
}

#[test]
fn the_cli_takes_want_and_refuses_unknown_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("label.png");
    std::fs::write(&path, render::png_bytes(&label()).unwrap()).unwrap();
    let run = |want: &str| {
        Command::new(env!("CARGO_BIN_EXE_rx-barcode"))
            .args(["decode", "--budget-ms", "120000", "--want", want])
            .arg(&path)
            .output()
            .unwrap()
    };
    let formats_of = |want: &str| -> Vec<String> {
        let output = run(want);
        assert!(output.status.success(), "{output:?}");
        let line: Value = serde_json::from_slice(&output.stdout).unwrap();
        line["codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|code| code["format"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(formats_of("all"), ["code128", "datamatrix"]);
    assert_eq!(formats_of("token"), ["datamatrix"]);
    assert_eq!(formats_of("id"), ["code128"]);
    let refused = run("both");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("expected token, id, any or all"),
        "{refused:?}"
    );
}
