//! The `rx-barcode` JSON contract, run as a real process.
#![allow(clippy::unwrap_used)] // test helpers panic on broken fixtures, like the tests

mod common;

use std::path::Path;
use std::process::Command;

use prescrypt_barcode::render::{self, Dpi, Orientation};
use serde_json::Value;

fn rx_barcode() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rx-barcode"))
}

fn write_png(path: &Path, image: &image::GrayImage) {
    std::fs::write(path, render::png_bytes(image).unwrap()).unwrap();
}

#[test]
fn decode_prints_one_json_line_per_file_in_order_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let code128 = dir.path().join("id.png");
    write_png(
        &code128,
        &render::code128_image(&common::id(), Dpi::LASER_300, Orientation::Horizontal).unwrap(),
    );
    let label = dir.path().join("label.png");
    let sheet = render::TokenSheet::new(&common::token(), Dpi::LASER_300);
    write_png(&label, &render::token_label_image(&sheet).unwrap());
    let blank = dir.path().join("blank.png");
    write_png(
        &blank,
        &image::GrayImage::from_pixel(200, 100, image::Luma([255])),
    );
    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let missing = dir.path().join("missing.png");

    let output = rx_barcode()
        .args(["decode", "--budget-ms", "120000"])
        .args([&code128, &label, &blank, &broken, &missing])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{stdout}");

    let keys =
        |value: &Value| -> Vec<String> { value.as_object().unwrap().keys().cloned().collect() };
    // The input names come back exactly as given.
    for (line, path) in lines
        .iter()
        .zip([&code128, &label, &blank, &broken, &missing])
    {
        assert_eq!(line["file"], path.to_str().unwrap());
        assert!(line["ms"].as_f64().unwrap() >= 0.0);
        assert!(line["codes"].is_array());
    }

    assert_eq!(
        lines[0]["codes"],
        serde_json::json!([{"format": "code128", "text": common::id().compact(), "aim": "]C0"}])
    );
    let mut expected_keys = vec!["codes", "file", "ms"];
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(keys(&lines[0])), expected_keys);

    let label_codes = lines[1]["codes"].as_array().unwrap();
    assert_eq!(label_codes.len(), 2);
    assert_eq!(label_codes[0]["format"], "code128");
    assert_eq!(label_codes[1]["format"], "datamatrix");
    assert_eq!(label_codes[1]["text"], common::token().text().as_str());
    assert_eq!(label_codes[1]["aim"], "]d1");
    for code in label_codes {
        assert_eq!(sorted(keys(code)), vec!["aim", "format", "text"]);
    }

    // Nothing found is not an error.
    assert_eq!(lines[2]["codes"], serde_json::json!([]));
    assert!(lines[2].get("error").is_none());

    // Unreadable files carry an error and no codes.
    expected_keys.push("error");
    for line in &lines[3..] {
        assert_eq!(
            sorted(keys(line)),
            sorted(expected_keys.iter().map(|s| s.to_string()).collect())
        );
        assert_eq!(line["codes"], serde_json::json!([]));
        assert!(!line["error"].as_str().unwrap().is_empty());
    }
}

#[test]
fn render_writes_each_format_and_the_png_decodes_back() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["token.pdf", "token.png", "token.svg"] {
        let out = dir.path().join(name);
        let status = rx_barcode()
            .args(["render", "--id", &common::id().to_string()])
            .args(["--token", common::token().text().as_str()])
            .args(["--dpi", "300", "--out"])
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success(), "{name}");
        let bytes = std::fs::read(&out).unwrap();
        match name {
            "token.pdf" => assert!(bytes.starts_with(b"%PDF-")),
            "token.svg" => assert!(bytes.starts_with(b"<svg")),
            _ => {
                let output = rx_barcode()
                    .args(["decode", "--budget-ms", "120000"])
                    .arg(&out)
                    .output()
                    .unwrap();
                let line: Value = serde_json::from_slice(&output.stdout).unwrap();
                assert_eq!(line["codes"].as_array().unwrap().len(), 2);
            }
        }
    }
}

#[test]
fn render_refuses_a_token_for_another_prescription() {
    let dir = tempfile::tempdir().unwrap();
    let output = rx_barcode()
        .args(["render", "--id", "D7AC09-A99968-4BA59C"])
        .args(["--token", common::token().text().as_str()])
        .arg("--out")
        .arg(dir.path().join("x.pdf"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is for prescription"));
}

/// GS1 pack codes from an independent encoder (`tests/fixtures/gs1`), and a GS1-128 with a wrong
/// GTIN check digit drawn by the crate's encoder (`ñ`, U+00F1, is FNC1 for rxing's writer).
#[test]
fn decode_adds_the_gs1_element_strings_of_a_gs1_code() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gs1");
    let matrix = fixtures.join("dm_fmd_gtin_expiry_batch_serial.png");
    let linear = fixtures.join("c128_gtin_batch_serial.png");
    let dir = tempfile::tempdir().unwrap();
    let malformed = dir.path().join("malformed.png");
    let modules = render::code128_modules("\u{f1}010950110153000417270131").unwrap();
    let image = image::GrayImage::from_fn(modules.len() as u32 * 3, 100, |x, y| {
        let bar = (10..90).contains(&y) && modules[(x / 3) as usize];
        image::Luma([if bar { 0 } else { 255 }])
    });
    write_png(&malformed, &image);

    let output = rx_barcode()
        .args(["decode", "--budget-ms", "120000"])
        .args([&matrix, &linear, &malformed])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(
        lines[0]["codes"],
        serde_json::json!([{
            "format": "datamatrix",
            "text": "01095011015300031727013110AB12345\u{1d}21SN0001XYZ",
            "aim": "]d2",
            "gs1": {"01": "09501101530003", "17": "270131", "10": "AB12345", "21": "SN0001XYZ"},
        }])
    );
    // The raw JSON carries GS as the escape `\u001d`, as JSON spells control characters.
    assert!(stdout.contains("AB12345\\u001d21SN0001XYZ"), "{stdout}");
    assert_eq!(
        lines[1]["codes"],
        serde_json::json!([{
            "format": "code128",
            "text": "0105012345678900104512XA\u{1d}2188213",
            "aim": "]C1",
            "gs1": {"01": "05012345678900", "10": "4512XA", "21": "88213"},
        }])
    );
    assert_eq!(
        lines[2]["codes"],
        serde_json::json!([{
            "format": "code128",
            "text": "010950110153000417270131",
            "aim": "]C1",
            "gs1_error": "AI (01): wrong check digit",
        }])
    );
}
