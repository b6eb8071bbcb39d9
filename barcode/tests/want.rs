//! `Want`: the pipeline stops as soon as it has what the caller asked for, in the library and
//! through `rx-barcode decode --want`.
#![allow(clippy::unwrap_used)] // test helpers panic on broken fixtures, like the tests

mod common;

use std::process::Command;

use prescrypt_barcode::decode::{CodeFormat, DecodeOptions, Decoder, Payload, Stage, Want};
use prescrypt_barcode::render::{self, Dpi};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
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

/// The steps that look at the whole image once; every other step is an escalation that the
/// cheap structure test may rule out.
fn first_look(stage: Stage) -> bool {
    matches!(stage, Stage::Whole | Stage::WholeGlobal | Stage::Striped)
}

/// A Data Matrix whose text claims to be a token but is malformed is refused; being
/// error-corrected, it is what is printed, so the 2-D search ends there instead of running every
/// 2-D escalation to find the same symbol again (issue 19: negatives ran every step). With no
/// stripes anywhere, the Code 128 escalations are ruled out too.
#[test]
fn a_refused_2d_symbol_ends_the_2d_search() {
    let text = common::token().text().as_str().to_owned();
    let malformed = format!("RX{}", text[2..].to_lowercase());
    let symbol = render::datamatrix_modules_of_text(&malformed)
        .unwrap()
        .to_image(6);
    let (codes, steps) = decoder(Want::Any).decode_luma_traced(&symbol);
    assert_eq!(codes, vec![], "{steps:?}");
    let matrix_steps: Vec<_> = steps
        .iter()
        .filter(|step| step.format != CodeFormat::Code128)
        .map(|step| (step.stage, step.format))
        .collect();
    assert_eq!(
        matrix_steps,
        vec![(Stage::WholeGlobal, CodeFormat::DataMatrix)],
        "{steps:?}"
    );
    for step in &steps {
        assert!(first_look(step.stage) || step.skipped, "{steps:?}");
    }
}

/// An image with nothing a decoder could find (sensor noise: no region of contrast above its
/// surroundings, no stripes) gets the first look at the whole image and nothing more.
#[test]
fn an_image_without_structure_skips_every_escalation() {
    let mut rng = StdRng::seed_from_u64(21);
    let noise = image::GrayImage::from_fn(800, 600, |_, _| image::Luma([rng.r#gen::<u8>()]));
    let (codes, steps) = decoder(Want::Any).decode_luma_traced(&noise);
    assert_eq!(codes, vec![]);
    assert!(steps.iter().any(|step| step.skipped), "{steps:?}");
    for step in &steps {
        assert!(first_look(step.stage) || step.skipped, "{steps:?}");
    }
}
