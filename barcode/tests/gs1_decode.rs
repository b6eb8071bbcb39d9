//! GS1 DataMatrix and GS1-128 printed by an independent encoder (zxing-cpp's writer, at 300 dpi;
//! `tests/fixtures/gs1/generate.py` made the PNGs), read by this crate's decoder and parsed as GS1
//! element strings: the AIM identifier marks GS1 and every FNC1 after the first arrives as GS.
#![allow(clippy::unwrap_used, clippy::panic)] // tests panic on broken fixtures

mod common;

use prescrypt_barcode::PrescriptionId;
use prescrypt_barcode::decode::{CodeFormat, DecodedCode, Payload};
use prescrypt_barcode::gs1::{Ai, ElementString, GS, Gs1Error, Symbology};

fn decode_fixture(name: &str) -> DecodedCode {
    let path = format!("{}/tests/fixtures/gs1/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut codes = common::decoder().decode_file(&path).unwrap();
    assert_eq!(codes.len(), 1, "{name}: {codes:?}");
    codes.remove(0)
}

/// The decoded code as a scanner transmits it (AIM identifier + data), parsed.
fn elements(code: &DecodedCode) -> Vec<(String, String)> {
    let scanned = format!("{}{}", code.aim, code.text);
    let parsed = ElementString::parse(&scanned).unwrap_or_else(|e| panic!("{scanned:?}: {e}"));
    parsed
        .elements()
        .map(|e| (e.ai.to_string(), e.value.to_owned()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, v)| (a.to_string(), v.to_string()))
        .collect()
}

#[test]
fn gs1_datamatrix_fmd_pack_gtin_expiry_batch_serial() {
    let code = decode_fixture("dm_fmd_gtin_expiry_batch_serial.png");
    assert_eq!(code.format, CodeFormat::DataMatrix);
    assert_eq!(code.aim, Symbology::DataMatrix.aim());
    assert_eq!(
        code.text,
        format!("01095011015300031727013110AB12345{GS}21SN0001XYZ")
    );
    assert_eq!(
        elements(&code),
        pairs(&[
            ("01", "09501101530003"),
            ("17", "270131"),
            ("10", "AB12345"),
            ("21", "SN0001XYZ"),
        ])
    );
}

#[test]
fn gs1_datamatrix_fmd_pack_serial_batch_expiry() {
    let code = decode_fixture("dm_fmd_serial_batch_expiry.png");
    assert_eq!(code.aim, "]d2");
    assert_eq!(
        code.text,
        format!("0105012345678900217KQ2P9X4ZC{GS}10L-88/2{GS}17281200")
    );
    let scanned = format!("{}{}", code.aim, code.text);
    let pack = ElementString::parse(&scanned).unwrap().pack().unwrap();
    assert_eq!(pack.gtin, "05012345678900");
    assert_eq!(pack.serial, Some("7KQ2P9X4ZC"));
    assert_eq!(pack.batch, Some("L-88/2"));
    assert_eq!(pack.expiry.unwrap().resolve(2026), (2028, 12, 31));
}

#[test]
fn gs1_datamatrix_with_a_national_reimbursement_number() {
    let code = decode_fixture("dm_fmd_nhrn.png");
    assert_eq!(code.aim, "]d2");
    assert_eq!(
        elements(&code),
        pairs(&[
            ("01", "05601234567892"),
            ("17", "290630"),
            ("10", "B7"),
            ("21", "100000000001"),
            ("714", "5440987"),
        ])
    );
}

#[test]
fn gs1_128_gtin_expiry_batch() {
    let code = decode_fixture("c128_gtin_expiry_batch.png");
    assert_eq!(code.format, CodeFormat::Code128);
    assert_eq!(code.aim, Symbology::Gs1_128.aim());
    assert_eq!(
        elements(&code),
        pairs(&[
            ("01", "09501101530003"),
            ("17", "270131"),
            ("10", "AB12345"),
        ])
    );
}

/// The FNC1 after the variable-length batch arrives as GS: without it the text would read
/// `…104512XA2188213`, batch `4512XA2188213` and no serial. The leading FNC1 is said by `]C1`
/// and is not in the text.
#[test]
fn gs1_128_keeps_fnc1_as_gs() {
    let code = decode_fixture("c128_gtin_batch_serial.png");
    assert_eq!(code.format, CodeFormat::Code128);
    assert_eq!(code.aim, "]C1");
    assert_eq!(code.text, format!("0105012345678900104512XA{GS}2188213"));
    assert_eq!(
        elements(&code),
        pairs(&[("01", "05012345678900"), ("10", "4512XA"), ("21", "88213"),])
    );
}

/// A symbol drawn from its module pattern (three pixels per module, 90 pixels tall, white
/// margins), as the crate's rxing encoder writes it; `\u{f1}` in `text` stands for FNC1.
fn code128_image(text: &str) -> image::GrayImage {
    let modules = prescrypt_barcode::render::code128_modules(text).unwrap();
    let (dots, bar_height, margin) = (3, 90, 20);
    let width = modules.len() as u32 * dots;
    image::GrayImage::from_fn(width, bar_height + 2 * margin, |x, y| {
        let bar = (margin..margin + bar_height).contains(&y) && modules[(x / dots) as usize];
        image::Luma([if bar { 0 } else { 255 }])
    })
}

fn decode_one(image: &image::GrayImage) -> DecodedCode {
    let mut codes = common::decoder()
        .decode_image(&image::DynamicImage::ImageLuma8(image.clone()))
        .unwrap();
    assert_eq!(codes.len(), 1, "{codes:?}");
    codes.remove(0)
}

#[test]
fn decoded_gs1_symbols_parse_through_the_gs1_rules_and_are_not_ours() {
    for name in [
        "dm_fmd_gtin_expiry_batch_serial.png",
        "c128_gtin_batch_serial.png",
    ] {
        let code = decode_fixture(name);
        assert_eq!(code.payload, Payload::Other, "{name}");
        let parsed = code.gs1().unwrap().unwrap();
        assert_eq!(parsed.pack().unwrap().gtin.len(), 14, "{name}");
        assert!(
            !code.text.starts_with(']') && !code.text.starts_with(GS),
            "{name}: the first FNC1 is in the AIM id, not the text: {:?}",
            code.text
        );
    }
}

#[test]
fn a_plain_data_matrix_is_d1_without_gs1_even_with_gs1_digits() {
    let token = common::token();
    let image = prescrypt_barcode::render::datamatrix_image(
        &token.text(),
        prescrypt_barcode::render::Dpi::LASER_300,
    )
    .unwrap();
    let code = decode_one(&image);
    assert_eq!(
        (code.format, code.aim.as_str()),
        (CodeFormat::DataMatrix, "]d1")
    );
    assert_eq!(code.payload, Payload::Token(token));
    assert!(code.gs1().is_none());
    // GS1 digits without FNC1 in first position are not GS1 data.
    let matrix =
        prescrypt_barcode::render::datamatrix_modules_of_text("0109501101530003172701311").unwrap();
    let code = decode_one(&matrix.to_image(4));
    assert_eq!(code.aim, "]d1");
    assert_eq!(code.text, "0109501101530003172701311");
    assert!(code.gs1().is_none());
}

/// An element string that is also 18 characters of the ID alphabet: AI 11 production date, AI 10
/// batch, the last character chosen so that MOD 37-2 holds (or fails).
fn id_shaped_gs1(check_holds: bool) -> String {
    let mut text = *b"1126010110ABC1234X";
    let data: &[u8; 17] = text[..17].try_into().unwrap();
    let right = prescrypt_barcode::id::check_character(data);
    text[17] = if check_holds {
        right
    } else if right == b'Z' {
        b'Y'
    } else {
        b'Z'
    };
    String::from_utf8(text.to_vec()).unwrap()
}

#[test]
fn a_gs1_128_shaped_like_an_id_is_reported_as_gs1_never_as_an_id_nor_dropped() {
    for check_holds in [true, false] {
        let text = id_shaped_gs1(check_holds);
        assert_eq!(
            PrescriptionId::parse_bytes(text.as_bytes()).is_ok(),
            check_holds
        );
        let code = decode_one(&code128_image(&format!("\u{f1}{text}")));
        assert_eq!(
            (code.aim.as_str(), code.text.as_str()),
            ("]C1", text.as_str())
        );
        assert_eq!(code.payload, Payload::Other, "{text}");
        let parsed = code.gs1().unwrap().unwrap();
        assert_eq!(parsed.batch(), Some(&text[10..]));
        // The same characters in a plain Code 128 are an ID, or a misread that is dropped.
        let plain = common::decoder()
            .decode_image(&image::DynamicImage::ImageLuma8(code128_image(&text)))
            .unwrap();
        if check_holds {
            assert_eq!(plain.len(), 1);
            assert_eq!(plain[0].aim, "]C0");
            assert!(matches!(plain[0].payload, Payload::PrescriptionId(_)));
        } else {
            assert!(plain.is_empty(), "{plain:?}");
        }
    }
}

#[test]
fn a_malformed_gs1_128_is_reported_with_the_reason() {
    // GTIN 09501101530004: the check digit should be 3.
    let code = decode_one(&code128_image("\u{f1}010950110153000417270131"));
    assert_eq!(code.aim, "]C1");
    assert_eq!(code.text, "010950110153000417270131");
    assert_eq!(
        code.gs1().unwrap().unwrap_err(),
        Gs1Error::CheckDigit {
            ai: Ai::new("01").unwrap()
        }
    );
}

#[test]
fn fnc1_after_an_application_indicator_is_c2_and_not_transmitted() {
    let code = decode_one(&code128_image("A\u{f1}BC123\u{f1}45"));
    assert_eq!(code.aim, "]C2");
    assert_eq!(code.text, format!("ABC123{GS}45"));
    assert!(code.gs1().is_none());
    assert_eq!(code.payload, Payload::Other);
}
